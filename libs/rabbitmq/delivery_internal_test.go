package rabbitmq

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
)

func TestNewDeliveryReadsBrokerHeaders(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		headers   amqp.Table
		wantCount int64
		want      []Death
	}{
		{name: "first delivery has no history", headers: nil},
		{
			name:      "quorum queue delivery count",
			headers:   amqp.Table{"x-delivery-count": int64(3)},
			wantCount: 3,
		},
		{
			name: "x-death entries, most recent first",
			headers: amqp.Table{"x-death": []any{
				amqp.Table{"queue": "orders.retry", "reason": "expired", "exchange": "orders.dlx",
					"routing-keys": []any{"order.placed"}, "count": int64(2), "time": at},
				amqp.Table{"queue": "orders", "reason": "rejected", "count": int32(2)},
			}},
			want: []Death{
				{Queue: "orders.retry", Reason: "expired", Exchange: "orders.dlx", RoutingKeys: []string{"order.placed"}, Count: 2, Time: at},
				{Queue: "orders", Reason: "rejected", Count: 2},
			},
		},
		{
			name:    "malformed entries are skipped",
			headers: amqp.Table{"x-death": []any{"not a table", amqp.Table{"queue": "q", "count": "many"}}},
			want:    []Death{{Queue: "q"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDelivery(amqp.Delivery{Headers: tt.headers, DeliveryMode: amqp.Persistent})
			assert.True(t, d.Persistent)
			assert.Equal(t, tt.wantCount, d.DeliveryCount)
			assert.Equal(t, tt.want, d.Deaths)
		})
	}
}

func TestDeathCountAddsUpAllReasonsForAQueue(t *testing.T) {
	d := Delivery{Deaths: []Death{
		{Queue: "orders", Reason: "rejected", Count: 2},
		{Queue: "orders.retry", Reason: "expired", Count: 2},
		{Queue: "orders", Reason: "delivery_limit", Count: 1},
	}}
	assert.Equal(t, int64(3), d.DeathCount("orders"))
	assert.Equal(t, int64(2), d.DeathCount("orders.retry"))
	assert.Zero(t, d.DeathCount("elsewhere"))
}
