package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency/idempotencytest"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// orderID reads the order_id of a 202.
func orderID(t *testing.T, resp *http.Response) string {
	t.Helper()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var body struct {
		OrderID string `json:"order_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return body.OrderID
}

func TestAKeyReusedForAnotherOrderIsRefused(t *testing.T) {
	a := newAPI(t, apiOptions{})
	want, err := orders.OrderID("c-42", "k-reuse")
	require.NoError(t, err)

	first := a.serve(orderRequest(validBody, "Idempotency-Key", "k-reuse"))
	defer first.Body.Close()
	assert.Equal(t, want, orderID(t, first))

	// The same order, spelled differently: whitespace, member order, escapes, 2.0 for 2.
	for _, body := range []string{
		`{"items":[{"quantity":2.0,"sku":"BOOK\u002d001"}],"customer_id":"c-42"}`,
		"\n" + validBody + "\n",
	} {
		again := a.serve(orderRequest(body, "Idempotency-Key", "k-reuse"))
		defer again.Body.Close()
		assert.Equal(t, want, orderID(t, again), "the same order under the same key is the same order: %s", body)
	}
	published := len(a.kafka.published())
	assert.Equal(t, 3, published, "a replay is published again; consumers deduplicate by order_id")

	for name, body := range map[string]string{
		"another quantity": withItem(`{"sku": "BOOK-001", "quantity": 3}`),
		"another item":     withItem(`{"sku": "MUG-001", "quantity": 2}`),
		"one more item":    `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 2}, {"sku": "MUG-001", "quantity": 1}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			asked := a.validator.Calls()
			resp := a.serve(orderRequest(body, "Idempotency-Key", "k-reuse"))
			defer resp.Body.Close()

			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
			p := readProblem(t, resp)
			assert.Equal(t, typeKeyReused, p.Type)
			assert.Equal(t, http.StatusUnprocessableEntity, p.Status)
			assert.Contains(t, p.Detail, "this Idempotency-Key was already used for a different order")
			assert.Empty(t, p.Violations)
			assert.Empty(t, resp.Header.Get("Retry-After"), "it does not get better by waiting")
			assert.Equal(t, asked, a.validator.Calls(), "a refused order is not validated")
			assert.Len(t, a.kafka.published(), published, "nor published")
			assert.Len(t, a.rabbitmq.published(), published)
		})
	}

	// Another customer's key of the same name is another key.
	other := a.serve(orderRequest(withCustomer(`"c-43"`), "Idempotency-Key", "k-reuse"))
	defer other.Body.Close()
	assert.Equal(t, http.StatusAccepted, other.StatusCode)
}

func TestTwoReplicasShareTheKeys(t *testing.T) {
	url := idempotencytest.URL(t)
	first := newAPI(t, apiOptions{keys: openStore(t, url)})
	second := newAPI(t, apiOptions{keys: openStore(t, url)})

	placed := first.serve(orderRequest(validBody, "Idempotency-Key", "k-replicas"))
	defer placed.Body.Close()
	id := orderID(t, placed)

	reused := second.serve(orderRequest(withItem(`{"sku": "BOOK-001", "quantity": 5}`), "Idempotency-Key", "k-replicas"))
	defer reused.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, reused.StatusCode)
	assert.Equal(t, typeKeyReused, readProblem(t, reused).Type)
	assert.Empty(t, second.kafka.published())

	replay := second.serve(orderRequest(validBody, "Idempotency-Key", "k-replicas"))
	defer replay.Body.Close()
	assert.Equal(t, id, orderID(t, replay), "any replica answers a replay with the same order_id")
}

func TestAnOrderThatWasNotPlacedLeavesItsKeyFree(t *testing.T) {
	a := newAPI(t, apiOptions{})

	unknown := a.serve(orderRequest(withItem(`{"sku": "NOPE-001", "quantity": 1}`), "Idempotency-Key", "k-fix"))
	defer unknown.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, unknown.StatusCode)
	assert.Equal(t, typeInvalid, readProblem(t, unknown).Type)

	broken := a.serve(orderRequest(withItem(`{"sku": "BOOK-001", "quantity": 0}`), "Idempotency-Key", "k-fix"))
	defer broken.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, broken.StatusCode)
	assert.Equal(t, typeInvalid, readProblem(t, broken).Type)

	fixed := a.serve(orderRequest(validBody, "Idempotency-Key", "k-fix"))
	defer fixed.Body.Close()
	assert.Equal(t, http.StatusAccepted, fixed.StatusCode, "the corrected order may use the key: nothing was placed under it")
}

func TestARetryAfterA503KeepsTheKeyBound(t *testing.T) {
	url := idempotencytest.URL(t)
	failing := newAPI(t, apiOptions{keys: openStore(t, url), kafka: &broker{name: "kafka", fail: assert.AnError}})
	resp := failing.serve(orderRequest(validBody, "Idempotency-Key", "k-503"))
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	healthy := newAPI(t, apiOptions{keys: openStore(t, url)})
	other := healthy.serve(orderRequest(withItem(`{"sku": "MUG-001", "quantity": 1}`), "Idempotency-Key", "k-503"))
	defer other.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, other.StatusCode, "the event may be on RabbitMQ: the key belongs to that order")
	assert.Equal(t, typeKeyReused, readProblem(t, other).Type)

	retry := healthy.serve(orderRequest(validBody, "Idempotency-Key", "k-503"))
	defer retry.Body.Close()
	want, err := orders.OrderID("c-42", "k-503")
	require.NoError(t, err)
	assert.Equal(t, want, orderID(t, retry), "the retry places the order")
}

func TestARetryWhileTheFirstAttemptRunsIsAConflict(t *testing.T) {
	url := idempotencytest.URL(t)
	keys := openStore(t, url)
	slow := newAPI(t, apiOptions{keys: keys, rabbitmq: &broker{name: "rabbitmq", hang: true}, publishTimeout: 3 * time.Second})

	firstDone := make(chan int, 1)
	go func() {
		resp := slow.serve(orderRequest(validBody, "Idempotency-Key", "k-slow"))
		_ = resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	require.Eventually(t, func() bool {
		r, ok, err := keys.Get(context.Background(), "c-42", "k-slow")
		return err == nil && ok && r.State == idempotency.StateProcessing
	}, 5*time.Second, 20*time.Millisecond, "the first attempt holds the key")

	other := newAPI(t, apiOptions{keys: openStore(t, url)})
	resp := other.serve(orderRequest(validBody, "Idempotency-Key", "k-slow"))
	defer resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get("Retry-After"))
	p := readProblem(t, resp)
	assert.Equal(t, typeKeyInFlight, p.Type)
	assert.Equal(t, http.StatusConflict, p.Status)
	assert.Contains(t, p.Detail, "is still being processed")
	assert.Empty(t, other.kafka.published(), "the retry did not place the order a second time")

	different := other.serve(orderRequest(withItem(`{"sku": "MUG-001", "quantity": 1}`), "Idempotency-Key", "k-slow"))
	defer different.Body.Close()
	assert.Equal(t, http.StatusUnprocessableEntity, different.StatusCode, "another order is refused even while the first runs")

	select {
	case status := <-firstDone:
		assert.Equal(t, http.StatusServiceUnavailable, status, "RabbitMQ never confirmed the first attempt")
	case <-time.After(15 * time.Second):
		t.Fatal("the first attempt did not end")
	}
	again := other.serve(orderRequest(validBody, "Idempotency-Key", "k-slow"))
	defer again.Body.Close()
	assert.Equal(t, http.StatusAccepted, again.StatusCode, "once it ended, the retry goes through")
}

func TestAStoreOutageRefusesOrdersWithAKeyOnly(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody:secret@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	down, err := idempotency.New(pool, idempotency.Options{Retention: time.Hour, Lease: time.Minute, QueryTimeout: shortDeadline})
	require.NoError(t, err)
	a := newAPI(t, apiOptions{keys: down})

	start := time.Now()
	resp := a.serve(orderRequest(validBody, "Idempotency-Key", "k-down"))
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Less(t, time.Since(start), shortDeadline+slack, "within the store's deadline")
	assert.Equal(t, "3", resp.Header.Get("Retry-After"))
	p := readProblem(t, resp)
	assert.Equal(t, typeUnavailable, p.Type)
	assert.Contains(t, p.Detail, "Idempotency-Key could not be recorded right now, so the order was not placed")
	assert.Zero(t, a.validator.Calls(), "never placed without its record")
	assert.Empty(t, a.kafka.published())

	invalid := a.serve(orderRequest(withItem(`{"sku": "BOOK-001", "quantity": 0}`), "Idempotency-Key", "k-down"))
	defer invalid.Body.Close()
	assert.Equal(t, http.StatusUnprocessableEntity, invalid.StatusCode, "bad input is a 4xx whatever the store does")

	noKey := a.serve(orderRequest(validBody))
	defer noKey.Body.Close()
	assert.Equal(t, http.StatusAccepted, noKey.StatusCode, "without a key the store is not needed")
}
