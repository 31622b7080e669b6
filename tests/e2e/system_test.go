// Package e2e_test runs the four real service binaries as processes against real RabbitMQ and
// Kafka brokers and checks the system's promises from the outside: over HTTP, as a client would.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// system is one isolated copy of the system: its own topic, exchange, queues and consumer group
// on the shared brokers, and its own ports.
type system struct {
	*stack.Stack
}

func newSystem(t *testing.T) *system {
	t.Helper()
	s := stack.New(t, brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t), brokertest.PostgresURL(t))
	suffix := stack.UniqueSuffix()
	topic := "e2e.orders." + suffix
	exchange := "e2e.orders." + suffix
	maps.Copy(s.Env["order-api"], map[string]string{
		"KAFKA_TOPIC":       topic,
		"RABBITMQ_EXCHANGE": exchange,
	})
	maps.Copy(s.Env["notifier"], map[string]string{
		"RABBITMQ_EXCHANGE":     exchange,
		"NOTIFIER_QUEUE":        "e2e.notifier." + suffix,
		"NOTIFIER_RETRY_DELAY":  "500ms",
		"NOTIFIER_FAILURE_RATE": "0.1", // some sends fail and go through the retry path
		"NOTIFIER_JOURNAL_PATH": filepath.Join(t.TempDir(), "notifications.jsonl"),
	})
	maps.Copy(s.Env["analytics"], map[string]string{
		"KAFKA_TOPIC":        topic,
		"ANALYTICS_GROUP_ID": "e2e.analytics." + suffix,
		// A SIGKILLed member keeps its partitions until its session times out: keep that short
		// so the restarted replica gets them back quickly.
		"KAFKA_SESSION_TIMEOUT":    "6s",
		"KAFKA_HEARTBEAT_INTERVAL": "1s",
	})
	return &system{Stack: s}
}

// notified reports whether the notifier answers for orderID: its record of sent notifications,
// which its journal carries across crashes.
func (s *system) notified(orderID string) bool {
	status, _, err := stack.Get(s.Admin["notifier"], "/v1/notifications/"+orderID)
	return err == nil && status == http.StatusOK
}

// order is what the test posts and what it expects back.
type order struct {
	CustomerID string `json:"customer_id"`
	Items      []item `json:"items"`
}

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type accepted struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	TotalCents int64  `json:"total_cents"`
	Currency   string `json:"currency"`
	Items      []struct {
		SKU            string `json:"sku"`
		Quantity       int64  `json:"quantity"`
		UnitPriceCents int64  `json:"unit_price_cents"`
		LineTotalCents int64  `json:"line_total_cents"`
	} `json:"items"`
}

type skuStats struct {
	Quantity     int64 `json:"quantity"`
	RevenueCents int64 `json:"revenue_cents"`
}

type stats struct {
	Orders       int64               `json:"orders"`
	RevenueCents int64               `json:"revenue_cents"`
	BySKU        map[string]skuStats `json:"by_sku"`
	Partitions   []int               `json:"partitions"`
	UpdatedAt    time.Time           `json:"updated_at"`
}

// reply is order-api's answer to one POST.
type reply struct {
	status int
	body   []byte
	header http.Header
	took   time.Duration
}

// post sends one order.
func (s *system) post(body []byte, idempotencyKey string) (reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.APIAddr+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	began := time.Now()
	res, err := stack.Client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, body: b, header: res.Header, took: time.Since(began)}, err
}

func (s *system) stats(t *testing.T) stats {
	t.Helper()
	status, body, err := stack.Get(s.StatsAddr, "/v1/stats")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, string(body))
	var st stats
	require.NoError(t, json.Unmarshal(body, &st), string(body))
	return st
}

// ledger is the truth the test keeps: every order that got a 202, by order_id.
type ledger struct {
	mu        sync.Mutex
	orders    map[string]accepted
	latencies []time.Duration
	rejected  map[int]int // status -> count, for invalid orders
}

func (l *ledger) expected() stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := stats{BySKU: map[string]skuStats{}}
	for _, o := range l.orders {
		want.Orders++
		want.RevenueCents += o.TotalCents
		for _, it := range o.Items {
			s := want.BySKU[it.SKU]
			s.Quantity += it.Quantity
			s.RevenueCents += it.LineTotalCents
			want.BySKU[it.SKU] = s
		}
	}
	return want
}

// accepted counts the 202 answers so far.
func (l *ledger) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.latencies)
}

func (l *ledger) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.orders))
	for id := range l.orders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// waitForStats polls analytics until its totals equal want, or fails with the last difference.
func (s *system) waitForStats(t *testing.T, want stats, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got stats
	for time.Now().Before(deadline) {
		got = s.stats(t)
		if got.Orders == want.Orders && got.RevenueCents == want.RevenueCents && equalSKUs(got.BySKU, want.BySKU) {
			require.Equal(t, []int{0, 1, 2}, got.Partitions, "a single analytics replica owns every partition")
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("analytics totals never matched the accepted orders:\nwant orders=%d revenue=%d by_sku=%v\ngot  orders=%d revenue=%d by_sku=%v",
		want.Orders, want.RevenueCents, want.BySKU, got.Orders, got.RevenueCents, got.BySKU)
}

func equalSKUs(a, b map[string]skuStats) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSystem is the end-to-end promise: every order that got a 202 is counted exactly once by
// analytics and notified, invalid orders leave no trace, and crashing the consumers mid-stream
// loses nothing and double-counts nothing.
func TestSystem(t *testing.T) {
	s := newSystem(t)
	s.StartAll()

	l := &ledger{orders: map[string]accepted{}, rejected: map[int]int{}}
	skus := []string{"BOOK-001", "BOOK-002", "ELEC-001", "KTCH-001"}

	// Three waves of orders; the consumers are killed with SIGKILL a third of the way into the
	// second wave, and restarted while it goes on.
	const perWave = 120
	var (
		crash     sync.Once
		crashed   = make(chan struct{})
		atCrash   int
		wave2Done = make(chan struct{})
	)
	post := func(wave, n int) {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					if wave == 2 && i == n/3 {
						crash.Do(func() {
							s.Procs["notifier"].Kill(t)
							s.Procs["analytics"].Kill(t)
							atCrash = l.accepted()
							close(crashed)
						})
					}
					s.placeMixed(t, l, skus, wave, i)
				}
			}()
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}

	began := time.Now()
	post(1, perWave)
	go func() {
		defer close(wave2Done)
		post(2, perWave)
	}()
	<-crashed
	s.Start("notifier")
	s.Start("analytics")
	<-wave2Done
	require.Greater(t, l.accepted(), atCrash, "orders were accepted while the consumers were down")

	post(3, perWave)
	elapsed := time.Since(began)

	want := l.expected()
	require.Positive(t, want.Orders)
	require.Positive(t, l.rejected[http.StatusUnprocessableEntity], "invalid orders were rejected")
	require.Positive(t, l.rejected[http.StatusBadRequest], "malformed orders were rejected")
	s.waitForStats(t, want, 90*time.Second)
	for sku := range want.BySKU {
		require.Contains(t, skus, sku)
	}

	s.requireAllNotified(t, l.ids(), 90*time.Second)

	// Crash both consumers again: after restart, the same totals — rebuilt, not doubled — and
	// the notifier still answers for every order.
	s.Procs["notifier"].Kill(t)
	s.Procs["analytics"].Kill(t)
	s.Start("analytics")
	s.Start("notifier")
	s.waitForStats(t, want, 90*time.Second)
	s.requireAllNotified(t, l.ids(), 10*time.Second)

	report(t, l, elapsed)
}

// requireAllNotified waits until the notifier answers 200 for every order.
func (s *system) requireAllNotified(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for !s.notified(id) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		require.True(t, s.notified(id), "order %s got 202 but the notifier has no notification for it", id)
	}
}

// placeMixed posts one order of a wave: mostly valid orders, some replays of the same
// Idempotency-Key, and some invalid ones.
func (s *system) placeMixed(t *testing.T, l *ledger, skus []string, wave, i int) {
	customer := fmt.Sprintf("c-%d", i%7)
	key := fmt.Sprintf("w%d-o%d", wave, i)
	switch i % 10 {
	case 9: // unknown SKU: the validator rejects it
		body := mustJSON(order{CustomerID: customer, Items: []item{{SKU: "NOPE-404", Quantity: 1}}})
		s.expectRejected(t, l, body, http.StatusUnprocessableEntity)
		return
	case 8: // malformed JSON
		s.expectRejected(t, l, []byte(`{"customer_id": "c-1", "items": [`), http.StatusBadRequest)
		return
	}
	o := order{CustomerID: customer, Items: []item{
		{SKU: skus[i%len(skus)], Quantity: 1 + i%3},
		{SKU: skus[(i+1)%len(skus)], Quantity: 1},
	}}
	body := mustJSON(o)
	replays := 1
	if i%5 == 0 {
		replays = 3 // the same request retried: one order, whatever the number of 202s
	}
	var first string
	for range replays {
		r, err := s.post(body, key)
		if err != nil {
			t.Errorf("post: %v", err)
			return
		}
		if r.status != http.StatusAccepted {
			t.Errorf("valid order %s: got %d %s", key, r.status, r.body)
			return
		}
		var a accepted
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Errorf("202 body: %v: %s", err, r.body)
			return
		}
		if first == "" {
			first = a.OrderID
		} else if a.OrderID != first {
			t.Errorf("replay of %s got order_id %s, first was %s", key, a.OrderID, first)
		}
		l.mu.Lock()
		l.orders[a.OrderID] = a
		l.latencies = append(l.latencies, r.took)
		l.mu.Unlock()
	}
}

func (s *system) expectRejected(t *testing.T, l *ledger, body []byte, want int) {
	r, err := s.post(body, "")
	if err != nil {
		t.Errorf("post: %v", err)
		return
	}
	if r.status != want {
		t.Errorf("invalid order: got %d %s, want %d", r.status, r.body, want)
		return
	}
	l.mu.Lock()
	l.rejected[r.status]++
	l.mu.Unlock()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// report prints throughput and latency of the accepted requests: informational, not asserted.
func report(t *testing.T, l *ledger, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lat := slices.Clone(l.latencies)
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	var b strings.Builder
	fmt.Fprintf(&b, "e2e: %d requests accepted (%d distinct orders) in %s: %.0f req/s; latency p50=%s p99=%s max=%s",
		len(lat), len(l.orders), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(),
		p(0.50).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	t.Log(b.String())
}

// TestEveryServiceStopsCleanlyOnSIGTERM: each binary, once ready, drains and exits 0 on SIGTERM,
// the signal Kubernetes sends before it kills a pod.
func TestEveryServiceStopsCleanlyOnSIGTERM(t *testing.T) {
	s := newSystem(t)
	s.StartAll()
	for _, name := range slices.Backward(stack.Services) {
		began := time.Now()
		code := s.Procs[name].Terminate(t, 20*time.Second)
		require.Equal(t, 0, code, "%s exit code after SIGTERM:\n%s", name, s.Procs[name].Tail(20))
		t.Logf("%s stopped in %s", name, time.Since(began).Round(time.Millisecond))
	}
}

// TestValidatorOutage: with the validator down, order-api answers 503 with Retry-After within
// its deadline, and recovers by itself once the validator is back.
func TestValidatorOutage(t *testing.T) {
	s := newSystem(t)
	s.Env["order-api"]["VALIDATOR_TIMEOUT"] = "1s"
	s.StartAll()
	body := mustJSON(order{CustomerID: "c-42", Items: []item{{SKU: "BOOK-001", Quantity: 2}}})

	r, err := s.post(body, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))

	require.Equal(t, 0, s.Procs["validator"].Terminate(t, 20*time.Second))
	r, err = s.post(body, "outage-1")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
	require.Less(t, r.took, 3*time.Second, "503 within the validator deadline")
	require.NotEmpty(t, r.header.Get("Retry-After"), "a 503 says when to retry")
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	var problem map[string]any
	require.NoError(t, json.Unmarshal(r.body, &problem), string(r.body))
	require.EqualValues(t, http.StatusServiceUnavailable, problem["status"])

	// The same request, retried as Retry-After says, succeeds once the validator is back.
	s.Start("validator")
	deadline := time.Now().Add(30 * time.Second)
	for r.status != http.StatusAccepted && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		r, err = s.post(body, "outage-1")
		require.NoError(t, err)
	}
	require.Equal(t, http.StatusAccepted, r.status, "order-api did not recover: %s", r.body)
}
