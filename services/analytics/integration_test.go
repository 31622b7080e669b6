package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
)

// catalog prices the SKUs of the test orders, in cents.
var catalog = map[string]int64{"BOOK-001": 1999, "MUG-002": 899, "PEN-003": 150}

// eventLog publishes OrderPlaced events to a topic the way order-api does, and keeps the truth: the
// totals of the distinct orders published so far.
type eventLog struct {
	t        *testing.T
	topic    string
	producer *kafka.Producer
	first    map[string]*ordersv1.OrderPlaced // the first event of each order, which is what counts
	records  int
}

func newLog(t *testing.T, topic string) *eventLog {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = brokertest.KafkaBootstrap(t)
	p, err := kafka.NewProducer(cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Close(ctx))
	})
	return &eventLog{t: t, topic: topic, producer: p, first: make(map[string]*ordersv1.OrderPlaced)}
}

// orders publishes orders o-from … o-(to-1) of the test's deterministic assortment. Publishing
// a range again replays the same orders, as a client retrying with an Idempotency-Key would
// cause.
func (l *eventLog) orders(from, to int) {
	l.t.Helper()
	for i := from; i < to; i++ {
		e := &ordersv1.OrderPlaced{OrderId: fmt.Sprintf("o-%04d", i), CustomerId: "c-42", Currency: "EUR"}
		skus := []string{"BOOK-001", "MUG-002", "PEN-003"}
		for j, sku := range skus[:1+i%len(skus)] {
			qty := int32(1 + (i+j)%4)
			line := &ordersv1.PricedItem{Sku: sku, Quantity: qty, UnitPriceCents: catalog[sku], LineTotalCents: int64(qty) * catalog[sku]}
			e.Items = append(e.Items, line)
			e.TotalCents += line.LineTotalCents
		}
		body, err := ordersv1.MarshalOrderPlaced(e)
		require.NoError(l.t, err)
		l.publish(e.OrderId, body, ordersv1.EventTypeOrderPlaced)
		if _, seen := l.first[e.OrderId]; !seen {
			l.first[e.OrderId] = e
		}
	}
}

// malformed publishes a record that is not JSON and one of another event type.
func (l *eventLog) malformed() {
	l.t.Helper()
	l.publish("o-garbage", []byte("{this is not json"), ordersv1.EventTypeOrderPlaced)
	l.publish("o-other", []byte(`{"order_id":"o-other"}`), "orders.v1.OrderShipped")
}

func (l *eventLog) publish(key string, body []byte, eventType string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(l.t, l.producer.Publish(ctx, kafka.Message{
		Topic: l.topic, Key: []byte(key), Value: body,
		Headers: []kafka.Header{
			{Key: ordersv1.HeaderContentType, Value: []byte(ordersv1.ContentType)},
			{Key: ordersv1.HeaderEventType, Value: []byte(eventType)},
			{Key: ordersv1.HeaderEventID, Value: []byte(fmt.Sprintf("ev-%d", l.records))},
		},
	}))
	l.records++
}

// truth is what GET /v1/stats must answer when one replica owns every partition.
func (l *eventLog) truth() httpapi.Response {
	want := httpapi.Response{BySKU: map[string]httpapi.SKUResponse{}, Partitions: []int32{0, 1, 2}}
	for _, e := range l.first {
		want.Orders++
		want.RevenueCents += e.TotalCents
		for _, it := range e.Items {
			s := want.BySKU[it.Sku]
			s.Quantity += int64(it.Quantity)
			s.RevenueCents += it.LineTotalCents
			want.BySKU[it.Sku] = s
		}
	}
	return want
}

// totals drops what is not a total (updated_at) for comparisons.
func totals(r httpapi.Response) httpapi.Response {
	r.UpdatedAt = ""
	return r
}

// sum adds up the answers of several replicas, as a client of all of them would.
func sum(rs ...httpapi.Response) httpapi.Response {
	out := httpapi.Response{BySKU: map[string]httpapi.SKUResponse{}, Partitions: []int32{}}
	for _, r := range rs {
		out.Orders += r.Orders
		out.RevenueCents += r.RevenueCents
		for sku, s := range r.BySKU {
			o := out.BySKU[sku]
			o.Quantity += s.Quantity
			o.RevenueCents += s.RevenueCents
			out.BySKU[sku] = o
		}
		out.Partitions = append(out.Partitions, r.Partitions...)
	}
	slices.Sort(out.Partitions)
	return out
}

// requireTotals waits until in answers want and is ready (no partition being rebuilt).
func requireTotals(t *testing.T, in *instance, want httpapi.Response) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, totals(in.stats(c)))
		assert.True(c, in.ready(c), "ready")
	}, waitFor, 100*time.Millisecond)
}

func TestAnalytics_CountsTheDistinctOrdersOfTheLog(t *testing.T) {
	t.Parallel()
	topic := newTopic(t)
	events := newLog(t, topic)
	events.orders(0, 60)
	events.orders(10, 30) // replays
	events.malformed()
	events.orders(55, 80) // more replays, then new orders

	a := start(t, testConfig(t, topic, brokertest.UniqueName(t, "analytics")))
	want := events.truth()
	require.EqualValues(t, 80, want.Orders)
	requireTotals(t, a, want)

	assert.EqualValues(t, events.records, a.metric(t, "analytics_events_processed_total"))
	assert.EqualValues(t, 20+5, a.metric(t, "analytics_events_duplicate_total"))
	assert.EqualValues(t, 2, a.metric(t, "analytics_events_malformed_total"), "skipped, not blocking the partition")

	// Offsets are committed as records are handled, so the group's lag drains to zero.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, a.series(c, "analytics_consumer_lag"), 3)
		assert.Zero(c, a.metric(c, "analytics_consumer_lag"))
	}, waitFor, 100*time.Millisecond)

	// Orders published while it runs are counted as they come, duplicates still once.
	events.orders(70, 100)
	requireTotals(t, a, events.truth())
}

func TestAnalytics_RestartRebuildsTheSameTotalsFromTheLog(t *testing.T) {
	t.Parallel()
	topic, group := newTopic(t), brokertest.UniqueName(t, "analytics")
	events := newLog(t, topic)
	events.orders(0, 50)
	events.orders(0, 10)
	events.malformed()

	first := start(t, testConfig(t, topic, group))
	requireTotals(t, first, events.truth())
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, first.series(c, "analytics_consumer_lag"), 3)
		assert.Zero(c, first.metric(c, "analytics_consumer_lag"))
	}, waitFor, 100*time.Millisecond, "everything committed before the restart")
	first.stop()

	// The group has committed every offset, yet the new replica reads the whole log again:
	// resuming after the committed offsets would give zeros, adding to old numbers would double.
	second := start(t, testConfig(t, topic, group))
	requireTotals(t, second, events.truth())
	assert.EqualValues(t, events.records, second.metric(t, "analytics_events_processed_total"), "the whole log was read")
	assert.EqualValues(t, 10, second.metric(t, "analytics_events_duplicate_total"))

	// The replay did not move the committed offsets backwards: the lag stays at zero.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, second.series(c, "analytics_consumer_lag"), 3)
		assert.Zero(c, second.metric(c, "analytics_consumer_lag"))
	}, waitFor, 100*time.Millisecond)

	// Orders from before the restart are still recognised as duplicates.
	events.orders(40, 70)
	requireTotals(t, second, events.truth())
}

func TestAnalytics_ReplicasSplitThePartitionsAndTakeOver(t *testing.T) {
	t.Parallel()
	topic, group := newTopic(t), brokertest.UniqueName(t, "analytics")
	events := newLog(t, topic)
	events.orders(0, 90)
	events.orders(20, 40)

	a := start(t, testConfig(t, topic, group))
	requireTotals(t, a, events.truth())

	b := start(t, testConfig(t, topic, group))
	split := func(want httpapi.Response) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			sa, sb := a.stats(c), b.stats(c)
			assert.NotEmpty(c, sa.Partitions, "a keeps some partitions")
			assert.NotEmpty(c, sb.Partitions, "b got some partitions")
			assert.Equal(c, want, sum(totals(sa), totals(sb)), "both together count every order once")
			assert.True(c, a.ready(c) && b.ready(c), "both ready")
		}, waitFor, 100*time.Millisecond)
	}
	split(events.truth())

	// New orders land on both replicas' partitions; the sum stays exact.
	events.orders(80, 130)
	split(events.truth())

	// b leaves the group: a takes its partitions back and rebuilds them from the log.
	b.stop()
	requireTotals(t, a, events.truth())
}
