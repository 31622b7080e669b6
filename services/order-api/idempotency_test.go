package main

import (
	"net/http"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency/idempotencytest"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

// TestAnIdempotencyKeyHoldsAcrossReplicasAndRestarts runs two order-api applications on one
// PostgreSQL database, as two replicas: an order placed through one binds its key, so the other
// refuses a different order under that key with 422 and answers the same order with the same
// order_id; a replica started afterwards (a restart) knows the key too.
func TestAnIdempotencyKeyHoldsAcrossReplicasAndRestarts(t *testing.T) {
	validator := validatortest.Start(t, &validatortest.Validator{})
	first := startService(t, validator)
	second := startService(t, validator) // the same database: see postgresURL
	bindOrdersQueue(t, first.cfg)
	bindOrdersQueue(t, second.cfg)
	const (
		body  = `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 2}]}`
		other = `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 3}]}`
		key   = "replicas-1"
	)
	orderID, err := orders.OrderID("c-42", key)
	require.NoError(t, err)

	ready := second.get(t, "/readyz")
	require.Equal(t, http.StatusOK, ready.status, ready.body)
	assert.Contains(t, ready.body, `"postgres":"ok"`, "readiness includes the store")

	placed := first.placeOrder(t, body, key, "")
	require.Equal(t, http.StatusAccepted, placed.status, placed.body)
	assert.Contains(t, placed.body, orderID)

	reused := second.placeOrder(t, other, key, "")
	require.Equal(t, http.StatusUnprocessableEntity, reused.status, reused.body)
	assert.Equal(t, "application/problem+json", reused.header.Get("Content-Type"))
	assert.Contains(t, reused.body, `"type":"https://github.com/backend-prep/backend-prep/blob/main/services/order-api/README.md#idempotency-key-reused"`)

	replay := second.placeOrder(t, body, key, "")
	require.Equal(t, http.StatusAccepted, replay.status, replay.body)
	assert.Contains(t, replay.body, orderID, "the same order, the same order_id, on the other replica")

	restarted := startService(t, validator)
	again := restarted.placeOrder(t, other, key, "")
	assert.Equal(t, http.StatusUnprocessableEntity, again.status, "a new process sees the key: %s", again.body)

	metrics := second.get(t, "/metrics").body
	assert.Contains(t, metrics, `orders_rejected_total{reason="idempotency_key_reused"} 1`)
}

// bindOrdersQueue binds an exclusive queue to the application's exchange, so that its
// mandatory publishes are routed (the notifier's role).
func bindOrdersQueue(t *testing.T, cfg config.Config) {
	t.Helper()
	conn, err := amqp.Dial(brokertest.RabbitMQURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, ordersv1.RoutingKey, cfg.RabbitMQExchange, false, nil))
}

// postgresURLs holds the database of each running test.
var postgresURLs sync.Map // *testing.T → string

// postgresURL is the idempotency store of the order-api instances a test starts: a schema of
// the test's own, shared by every instance it starts, as replicas share their database.
func postgresURL(t *testing.T) string {
	t.Helper()
	if url, ok := postgresURLs.Load(t); ok {
		return url.(string)
	}
	url := idempotencytest.URL(t)
	postgresURLs.Store(t, url)
	t.Cleanup(func() { postgresURLs.Delete(t) })
	return url
}
