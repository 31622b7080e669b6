package consume_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/services/analytics/internal/consume"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

const topic = "orders.v1"

// fixture is a Handler over fresh stats and metrics on a registry of its own.
type fixture struct {
	handler *consume.Handler
	stats   *stats.Stats
	metrics *consume.Metrics
	reg     *prometheus.Registry
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := consume.NewMetrics(reg)
	require.NoError(t, err)
	s := stats.New(time.Now)
	return fixture{handler: consume.NewHandler(s, m, zaptest.NewLogger(t), time.Now), stats: s, metrics: m, reg: reg}
}

func (f fixture) assign(t *testing.T, partitions ...int32) map[kafka.TopicPartition]kafka.Offset {
	t.Helper()
	starts, err := f.handler.Assigned(context.Background(), topicPartitions(partitions...))
	require.NoError(t, err)
	return starts
}

func (f fixture) revoke(partitions ...int32) {
	f.handler.Revoked(context.Background(), topicPartitions(partitions...))
}

// metric returns the value of the counter or gauge name with the given label pairs, or of the
// sample count for a histogram; 0 when the series does not exist.
func (f fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	require.NoError(t, err)
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue()
				case m.Gauge != nil:
					return m.GetGauge().GetValue()
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func topicPartitions(partitions ...int32) []kafka.TopicPartition {
	out := make([]kafka.TopicPartition, len(partitions))
	for i, p := range partitions {
		out[i] = kafka.TopicPartition{Topic: topic, Partition: p}
	}
	return out
}

// placed is an OrderPlaced event of one line of BOOK-001 at 1999 cents per unit.
func placed(id string, quantity int32) *ordersv1.OrderPlaced {
	return &ordersv1.OrderPlaced{
		OrderId:    id,
		CustomerId: "c-42",
		Items: []*ordersv1.PricedItem{{
			Sku: "BOOK-001", Quantity: quantity, UnitPriceCents: 1999, LineTotalCents: int64(quantity) * 1999,
		}},
		TotalCents: int64(quantity) * 1999,
		Currency:   "EUR",
	}
}

// record is the Kafka record order-api publishes for e.
func record(t *testing.T, partition int32, offset int64, e *ordersv1.OrderPlaced) *kafka.Message {
	t.Helper()
	body, err := ordersv1.MarshalOrderPlaced(e)
	require.NoError(t, err)
	return &kafka.Message{
		Topic: topic, Partition: partition, Offset: offset,
		Key:   []byte(e.GetOrderId()),
		Value: body,
		Headers: []kafka.Header{
			{Key: ordersv1.HeaderContentType, Value: []byte(ordersv1.ContentType)},
			{Key: ordersv1.HeaderEventType, Value: []byte(ordersv1.EventTypeOrderPlaced)},
			{Key: ordersv1.HeaderEventID, Value: []byte("ev-" + e.GetOrderId())},
		},
	}
}

func withHeader(msg *kafka.Message, key, value string) *kafka.Message {
	for i, h := range msg.Headers {
		if h.Key == key {
			msg.Headers[i].Value = []byte(value)
			return msg
		}
	}
	msg.Headers = append(msg.Headers, kafka.Header{Key: key, Value: []byte(value)})
	return msg
}

func withoutHeader(msg *kafka.Message, key string) *kafka.Message {
	kept := msg.Headers[:0]
	for _, h := range msg.Headers {
		if h.Key != key {
			kept = append(kept, h)
		}
	}
	msg.Headers = kept
	return msg
}

func TestHandler_Handle(t *testing.T) {
	type want struct {
		orders, quantity int64
		duplicates       float64
		malformed        map[string]float64
	}
	tests := []struct {
		name    string
		records func(t *testing.T) []*kafka.Message
		want    want
	}{
		{
			name: "orders are counted",
			records: func(t *testing.T) []*kafka.Message {
				return []*kafka.Message{record(t, 0, 0, placed("o-1", 2)), record(t, 0, 1, placed("o-2", 1))}
			},
			want: want{orders: 2, quantity: 3},
		},
		{
			name: "a replayed order is counted once",
			records: func(t *testing.T) []*kafka.Message {
				return []*kafka.Message{record(t, 0, 0, placed("o-1", 2)), record(t, 0, 1, placed("o-1", 2))}
			},
			want: want{orders: 1, quantity: 2, duplicates: 1},
		},
		{
			name: "a body that is not JSON is skipped",
			records: func(t *testing.T) []*kafka.Message {
				bad := record(t, 0, 0, placed("o-1", 1))
				bad.Value = []byte("{not json")
				return []*kafka.Message{bad, record(t, 0, 1, placed("o-2", 1))}
			},
			want: want{orders: 1, quantity: 1, malformed: map[string]float64{consume.ReasonDecode: 1}},
		},
		{
			name: "a field added by a newer producer is ignored, the order counted",
			records: func(t *testing.T) []*kafka.Message {
				newer := record(t, 0, 0, placed("o-1", 1))
				newer.Value = append(bytes.TrimSuffix(newer.Value, []byte("}")), []byte(`,"added_later":true}`)...)
				return []*kafka.Message{newer}
			},
			want: want{orders: 1, quantity: 1},
		},
		{
			name: "mistyped JSON is skipped",
			records: func(t *testing.T) []*kafka.Message {
				bad := record(t, 0, 0, placed("o-1", 1))
				bad.Value = []byte(`{"order_id":"o-1","total_cents":"a lot"}`)
				return []*kafka.Message{bad}
			},
			want: want{malformed: map[string]float64{consume.ReasonDecode: 1}},
		},
		{
			name: "another event type is skipped",
			records: func(t *testing.T) []*kafka.Message {
				return []*kafka.Message{withHeader(record(t, 0, 0, placed("o-1", 1)), ordersv1.HeaderEventType, "orders.v1.OrderCancelled")}
			},
			want: want{malformed: map[string]float64{consume.ReasonEventType: 1}},
		},
		{
			name: "a record without event type is skipped",
			records: func(t *testing.T) []*kafka.Message {
				return []*kafka.Message{withoutHeader(record(t, 0, 0, placed("o-1", 1)), ordersv1.HeaderEventType)}
			},
			want: want{malformed: map[string]float64{consume.ReasonEventType: 1}},
		},
		{
			name: "a record not keyed by its order_id is skipped",
			records: func(t *testing.T) []*kafka.Message {
				bad := record(t, 0, 0, placed("o-1", 1))
				bad.Key = []byte("customer-c-42")
				return []*kafka.Message{bad}
			},
			want: want{malformed: map[string]float64{consume.ReasonKey: 1}},
		},
		{
			name: "an order whose total is not the sum of its lines is skipped",
			records: func(t *testing.T) []*kafka.Message {
				e := placed("o-1", 1)
				e.TotalCents = 1
				return []*kafka.Message{record(t, 0, 0, e)}
			},
			want: want{malformed: map[string]float64{consume.ReasonInvalid: 1}},
		},
		{
			name: "an order without items is skipped",
			records: func(t *testing.T) []*kafka.Message {
				e := placed("o-1", 1)
				e.Items, e.TotalCents = nil, 0
				return []*kafka.Message{record(t, 0, 0, e)}
			},
			want: want{malformed: map[string]float64{consume.ReasonInvalid: 1}},
		},
		{
			name: "a malformed record does not hide a later good one",
			records: func(t *testing.T) []*kafka.Message {
				bad := record(t, 0, 1, placed("o-2", 1))
				bad.Value = nil
				return []*kafka.Message{
					record(t, 0, 0, placed("o-1", 1)),
					bad,
					withHeader(record(t, 0, 2, placed("o-3", 1)), ordersv1.HeaderEventType, "x"),
					record(t, 0, 3, placed("o-4", 5)),
				}
			},
			want: want{orders: 2, quantity: 6, malformed: map[string]float64{consume.ReasonDecode: 1, consume.ReasonEventType: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.assign(t, 0)
			records := tt.records(t)
			for _, msg := range records {
				// Every record is accepted, malformed or not: refusing one would block its partition.
				require.NoError(t, f.handler.Handle(context.Background(), msg))
			}

			snap := f.stats.Snapshot()
			assert.Equal(t, tt.want.orders, snap.Orders, "orders")
			assert.Equal(t, tt.want.quantity*1999, snap.RevenueCents, "revenue_cents")
			assert.Equal(t, tt.want.quantity, snap.BySKU["BOOK-001"].Quantity, "BOOK-001 quantity")
			assert.InDelta(t, float64(len(records)), f.metric(t, "analytics_events_processed_total"), 0, "processed")
			assert.InDelta(t, tt.want.duplicates, f.metric(t, "analytics_events_duplicate_total"), 0, "duplicates")
			for _, reason := range []string{consume.ReasonEventType, consume.ReasonDecode, consume.ReasonKey, consume.ReasonInvalid} {
				assert.InDelta(t, tt.want.malformed[reason], f.metric(t, "analytics_events_malformed_total", "reason", reason), 0,
					"malformed, reason %s", reason)
			}
		})
	}
}

func TestHandler_RefusesRecordsOfPartitionsNotOwned(t *testing.T) {
	f := newFixture(t)
	f.assign(t, 0)
	err := f.handler.Handle(context.Background(), record(t, 1, 0, placed("o-1", 1)))
	require.ErrorIs(t, err, stats.ErrNotOwned, "not accepted, so the offset is not committed")
	assert.Zero(t, f.stats.Snapshot().Orders)
}

func TestHandler_AssignedRebuildsFromTheBeginning(t *testing.T) {
	f := newFixture(t)
	starts := f.assign(t, 0, 2)
	assert.Equal(t, map[kafka.TopicPartition]kafka.Offset{
		{Topic: topic, Partition: 0}: kafka.OffsetBeginning,
		{Topic: topic, Partition: 2}: kafka.OffsetBeginning,
	}, starts)
	assert.Equal(t, []int32{0, 2}, f.stats.Snapshot().Partitions)

	require.NoError(t, f.handler.Handle(context.Background(), record(t, 0, 0, placed("o-1", 1))))
	require.NoError(t, f.handler.Handle(context.Background(), record(t, 2, 0, placed("o-2", 1))))
	require.EqualValues(t, 2, f.stats.Snapshot().Orders)

	// Assigned again (lost and regained): its old numbers must go, the replay brings them back.
	f.assign(t, 0)
	assert.EqualValues(t, 1, f.stats.Snapshot().Orders)
	require.NoError(t, f.handler.Handle(context.Background(), record(t, 0, 0, placed("o-1", 1))))
	assert.EqualValues(t, 2, f.stats.Snapshot().Orders, "the replay counts o-1 again, once")
	assert.Zero(t, f.metric(t, "analytics_events_duplicate_total"), "a replay is not a duplicate")
}

func TestHandler_RevokedDropsThePartition(t *testing.T) {
	f := newFixture(t)
	f.assign(t, 0, 1)
	require.NoError(t, f.handler.Handle(context.Background(), record(t, 0, 0, placed("o-1", 1))))
	require.NoError(t, f.handler.Handle(context.Background(), record(t, 1, 0, placed("o-2", 3))))

	f.revoke(1)
	snap := f.stats.Snapshot()
	assert.Equal(t, []int32{0}, snap.Partitions)
	assert.EqualValues(t, 1, snap.Orders)
	assert.EqualValues(t, 1999, snap.RevenueCents)
}

// lag is a lag reading of one partition of topic whose log starts at offset 0.
func lag(partition int32, committed, high, lagged int64) kafka.PartitionLag {
	return kafka.PartitionLag{
		TopicPartition: kafka.TopicPartition{Topic: topic, Partition: partition},
		Committed:      committed, HighWatermark: high, Lag: lagged,
	}
}

// retained is lag with the oldest retained offset low.
func retained(partition int32, low, committed, high, lagged int64) kafka.PartitionLag {
	l := lag(partition, committed, high, lagged)
	l.LowWatermark = low
	return l
}

func TestHandler_ReadyOnceEveryRebuildReachedTheEndOfTheLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	assert.EqualError(t, f.handler.Ready(ctx), "joining the consumer group: no partition assignment yet",
		"not in the group yet: it does not know which partitions are its own")

	f.assign(t)
	require.NoError(t, f.handler.Ready(ctx), "in the group, nothing owned (more replicas than partitions), nothing to rebuild")

	f.assign(t, 0, 1, 2)
	assert.EqualError(t, f.handler.Ready(ctx), "rebuilding partitions [0 1 2] from the beginning of the log")
	assert.InDelta(t, 3, f.metric(t, "analytics_partitions_rebuilding"), 0)

	select {
	case <-f.handler.Assignments():
	default:
		t.Fatal("an assignment is signalled, so that the lag is read at once")
	}

	// Partition 2's assignment is not in effect yet, so the reading does not mention it.
	waiting := f.handler.ObserveLag([]kafka.PartitionLag{
		lag(0, 2, 2, 0),  // committed up to the end before: the replay still has to read 0 and 1
		lag(1, -1, 0, 0), // empty: nothing to rebuild
	})
	assert.True(t, waiting, "partition 2 still waits for a reading")
	assert.Equal(t, []int32{0, 2}, f.handler.Rebuilding())

	waiting = f.handler.ObserveLag([]kafka.PartitionLag{lag(0, 2, 5, 3), retained(2, 7, -1, 7, 0)})
	assert.False(t, waiting)
	assert.Equal(t, []int32{0}, f.handler.Rebuilding(),
		"partition 2 holds only expired records: nothing to read; partition 0 keeps its first target")

	require.NoError(t, f.handler.Handle(ctx, record(t, 0, 0, placed("o-1", 1))))
	assert.Error(t, f.handler.Ready(ctx))
	require.NoError(t, f.handler.Handle(ctx, record(t, 0, 1, placed("o-2", 1))))
	assert.NoError(t, f.handler.Ready(ctx), "partition 0 reached its high watermark at assignment")
	assert.InDelta(t, 0, f.metric(t, "analytics_partitions_rebuilding"), 0)
	assert.InDelta(t, 3, f.metric(t, "analytics_partition_rebuild_duration_seconds"), 0, "one rebuild observed per partition")
}

func TestHandler_MalformedRecordsAdvanceTheRebuild(t *testing.T) {
	f := newFixture(t)
	f.assign(t, 0)
	f.handler.ObserveLag([]kafka.PartitionLag{lag(0, -1, 1, 1)})
	bad := record(t, 0, 0, placed("o-1", 1))
	bad.Value = []byte("garbage")
	require.NoError(t, f.handler.Handle(context.Background(), bad))
	assert.NoError(t, f.handler.Ready(context.Background()))
}

func TestHandler_RevokedEndsTheRebuild(t *testing.T) {
	f := newFixture(t)
	f.assign(t, 0, 1)
	f.revoke(1)
	assert.Equal(t, []int32{0}, f.handler.Rebuilding())
	assert.InDelta(t, 1, f.metric(t, "analytics_partitions_rebuilding"), 0)
}

func TestHandler_APartitionEmptiedByRetentionIsRebuiltAtOnce(t *testing.T) {
	// Retention deleted every record: the low watermark caught up with the high one. Nothing
	// will ever be delivered, so waiting for the replay to reach the high watermark would wait
	// forever, whatever the group committed before.
	tests := []struct {
		name    string
		reading kafka.PartitionLag
	}{
		{"committed up to the end", retained(0, 40, 40, 40, 0)},
		{"committed offset below the log start", retained(0, 40, 12, 40, 0)},
		{"nothing committed", retained(0, 40, -1, 40, 0)},
		{"never written", retained(0, 0, -1, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.assign(t, 0)
			require.Error(t, f.handler.Ready(context.Background()))
			assert.False(t, f.handler.ObserveLag([]kafka.PartitionLag{tt.reading}))
			assert.NoError(t, f.handler.Ready(context.Background()))
			assert.Empty(t, f.handler.Rebuilding())
		})
	}

	t.Run("records left after the log start are still replayed", func(t *testing.T) {
		f := newFixture(t)
		f.assign(t, 0)
		f.handler.ObserveLag([]kafka.PartitionLag{retained(0, 40, 12, 42, 2)})
		require.Error(t, f.handler.Ready(context.Background()))
		require.NoError(t, f.handler.Handle(context.Background(), record(t, 0, 40, placed("o-1", 1))))
		require.Error(t, f.handler.Ready(context.Background()))
		require.NoError(t, f.handler.Handle(context.Background(), record(t, 0, 41, placed("o-2", 1))))
		assert.NoError(t, f.handler.Ready(context.Background()))
	})
}

func TestHandler_ARebalanceThatGivesPartitionsMakesItUnreadyUntilTheyAreRebuilt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.assign(t, 0)
	f.handler.ObserveLag([]kafka.PartitionLag{lag(0, -1, 0, 0)})
	require.NoError(t, f.handler.Ready(ctx))

	// Another replica left: this one gains partition 2, keeps 0.
	f.assign(t, 2)
	assert.EqualError(t, f.handler.Ready(ctx), "rebuilding partitions [2] from the beginning of the log")
	f.handler.ObserveLag([]kafka.PartitionLag{lag(0, -1, 0, 0), lag(2, -1, 1, 1)})
	require.NoError(t, f.handler.Handle(ctx, record(t, 2, 0, placed("o-1", 1))))
	require.NoError(t, f.handler.Ready(ctx))

	// A rebalance that takes partition 2 away and gives nothing leaves it ready with 0.
	f.revoke(2)
	f.assign(t)
	require.NoError(t, f.handler.Ready(ctx))
	assert.Equal(t, []int32{0}, f.stats.Snapshot().Partitions)
}

func TestHandler_LostPartitionsLeaveTheGroupUntilTheNextAssignment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.assign(t, 0, 1)
	f.handler.ObserveLag([]kafka.PartitionLag{lag(0, -1, 0, 0), lag(1, -1, 0, 0)})
	require.NoError(t, f.handler.Ready(ctx))

	f.handler.Lost(ctx, topicPartitions(0, 1))
	assert.EqualError(t, f.handler.Ready(ctx), "joining the consumer group: no partition assignment yet")
	assert.Empty(t, f.stats.Snapshot().Partitions)

	f.assign(t, 1)
	assert.EqualError(t, f.handler.Ready(ctx), "rebuilding partitions [1] from the beginning of the log")
}
