package ordersv1_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// sampleOrder returns an accepted order of two lines, placed at 14:30:05.25 in UTC+2 — not UTC,
// so that the tests see the conversion.
func sampleOrder(t *testing.T) *ordersv1.OrderPlaced {
	t.Helper()
	placedAt := time.Date(2025, time.January, 31, 14, 30, 5, 250_000_000, time.FixedZone("UTC+2", 2*60*60))
	return &ordersv1.OrderPlaced{
		OrderId:    "ord-7f3a",
		CustomerId: "c-42",
		Items: []*ordersv1.PricedItem{
			{Sku: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
			{Sku: "PEN-002", Quantity: 1, UnitPriceCents: 350, LineTotalCents: 350},
		},
		TotalCents: 2948,
		Currency:   "USD",
		PlacedAt:   timestamppb.New(placedAt),
	}
}

func TestMarshalOrderPlacedSpeaksTheContractJSON(t *testing.T) {
	withKey := sampleOrder(t)
	withKey.IdempotencyKey = "retry-me-1"

	tests := []struct {
		name  string
		event *ordersv1.OrderPlaced
		want  string
	}{
		{
			name:  "proto field names, int64 amounts as strings, placed_at in RFC 3339 UTC, empty idempotency key omitted",
			event: sampleOrder(t),
			want: `{
				"order_id": "ord-7f3a",
				"customer_id": "c-42",
				"items": [
					{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": "1299", "line_total_cents": "2598"},
					{"sku": "PEN-002", "quantity": 1, "unit_price_cents": "350", "line_total_cents": "350"}
				],
				"total_cents": "2948",
				"currency": "USD",
				"placed_at": "2025-01-31T12:30:05.250Z"
			}`,
		},
		{
			name:  "idempotency key present when the client sent one",
			event: withKey,
			want: `{
				"order_id": "ord-7f3a",
				"customer_id": "c-42",
				"items": [
					{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": "1299", "line_total_cents": "2598"},
					{"sku": "PEN-002", "quantity": 1, "unit_price_cents": "350", "line_total_cents": "350"}
				],
				"total_cents": "2948",
				"currency": "USD",
				"placed_at": "2025-01-31T12:30:05.250Z",
				"idempotency_key": "retry-me-1"
			}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := ordersv1.MarshalOrderPlaced(tt.event)
			require.NoError(t, err)

			assert.JSONEq(t, tt.want, string(body))
		})
	}
}

func TestOrderPlacedRoundTripsThroughJSON(t *testing.T) {
	sent := sampleOrder(t)
	sent.IdempotencyKey = "retry-me-1"

	body, err := ordersv1.MarshalOrderPlaced(sent)
	require.NoError(t, err)
	received, err := ordersv1.UnmarshalOrderPlaced(body)
	require.NoError(t, err)

	assert.True(t, proto.Equal(sent, received), "sent %v\nreceived %v", sent, received)
	assert.Equal(t, time.Date(2025, time.January, 31, 12, 30, 5, 250_000_000, time.UTC), received.GetPlacedAt().AsTime())
}

func TestUnmarshalOrderPlaced(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{
			name: "accepts the body documented in events.proto",
			body: `{"order_id": "ord-1", "customer_id": "c-42",
				"items": [{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": "1299", "line_total_cents": "2598"}],
				"total_cents": "2598", "currency": "USD", "placed_at": "2025-01-31T12:00:00Z"}`,
		},
		{
			name: "accepts int64 amounts written as JSON numbers",
			body: `{"order_id": "ord-1", "total_cents": 2598}`,
		},
		{
			name: "ignores a top-level field added by a newer producer",
			body: `{"order_id": "ord-1", "status": "accepted"}`,
		},
		{
			name: "ignores a field added to an item by a newer producer",
			body: `{"order_id": "ord-1", "items": [{"sku": "BOOK-001", "discount_cents": "100"}]}`,
		},
		{
			name:    "rejects an amount that is not a number",
			body:    `{"order_id": "ord-1", "total_cents": "lots"}`,
			wantErr: true,
		},
		{
			name:    "rejects placed_at that is not RFC 3339",
			body:    `{"order_id": "ord-1", "placed_at": "31/01/2025 12:00"}`,
			wantErr: true,
		},
		{
			name:    "rejects a body that is not JSON",
			body:    `order_id=ord-1`,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event, err := ordersv1.UnmarshalOrderPlaced([]byte(tt.body))

			if tt.wantErr {
				assert.Error(t, err)
				assert.Nil(t, event)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "ord-1", event.GetOrderId())
		})
	}
}

// The names below are spelled by clients (grpcurl, docs) and by the other end of each broker:
// renaming one is a contract change, never a refactoring.
func TestContractNames(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"gRPC service", ordersv1.OrderValidation_ServiceDesc.ServiceName, "orders.v1.OrderValidation"},
		{"ValidateOrder method", ordersv1.OrderValidation_ValidateOrder_FullMethodName, "/orders.v1.OrderValidation/ValidateOrder"},
		{"ListProducts method", ordersv1.OrderValidation_ListProducts_FullMethodName, "/orders.v1.OrderValidation/ListProducts"},
		{"event type is the message's full name", ordersv1.EventTypeOrderPlaced,
			string((&ordersv1.OrderPlaced{}).ProtoReflect().Descriptor().FullName())},
		{"Kafka topic", ordersv1.Topic, "orders.v1"},
		{"RabbitMQ exchange", ordersv1.Exchange, "orders"},
		{"RabbitMQ routing key", ordersv1.RoutingKey, "order.placed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got)
		})
	}
}
