package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

func TestEncodeCarriesTheContractHeaders(t *testing.T) {
	e := orders.Event{
		ID: "0190f5c2-9d43-7b1e-8c5a-1f2e3d4c5b6a",
		OrderPlaced: &ordersv1.OrderPlaced{
			OrderId:    "6fd14198-8280-5975-b4e4-3cb950292771",
			CustomerId: "c-42",
			Items:      []*ordersv1.PricedItem{{Sku: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
			TotalCents: 2598,
			Currency:   "EUR",
			PlacedAt:   timestamppb.New(time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)),
		},
	}

	enc, err := encode(e)

	require.NoError(t, err)
	assert.Equal(t, [][2]string{
		{"content-type", "application/json"},
		{"event-type", "orders.v1.OrderPlaced"},
		{"event-id", e.ID},
	}, enc.headers)
	var body map[string]any
	require.NoError(t, json.Unmarshal(enc.body, &body))
	assert.Equal(t, map[string]any{
		"order_id":    "6fd14198-8280-5975-b4e4-3cb950292771",
		"customer_id": "c-42",
		"items":       []any{map[string]any{"sku": "BOOK-001", "quantity": float64(2), "unit_price_cents": "1299", "line_total_cents": "2598"}},
		"total_cents": "2598",
		"currency":    "EUR",
		"placed_at":   "2025-01-31T12:00:00Z",
	}, body, "protojson with proto field names; no idempotency_key when there was none")
}

func TestExchangeIsADurableTopicExchange(t *testing.T) {
	topology := Exchange("orders")
	require.NoError(t, topology.Validate())
	assert.Equal(t, []rabbitmq.Exchange{{Name: "orders", Kind: rabbitmq.ExchangeTopic, Durable: true}}, topology.Exchanges)
	assert.Empty(t, topology.Queues, "consumers own their queues")
	assert.Empty(t, topology.Bindings)
}
