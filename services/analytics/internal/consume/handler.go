// Package consume feeds the OrderPlaced events of the orders topic into the stats: it decodes
// records, skips the malformed ones, and turns the consumer group's partition assignments into
// resets and drops of the per-partition stats.
//
// The stats are a pure function of the log. When this replica gains a partition, Handler.Assigned
// resets the partition's stats and starts it from the beginning of the log, so that the replay
// rebuilds them; when it loses one, Handler.Revoked forgets it. The consumer group still commits
// offsets as records are handled (libs/kafka does not commit backwards during a replay), so the
// group's lag stays observable; the committed offsets just do not decide where reading starts.
package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// Handler adapts the consumer of the orders topic to the stats. Handle, Assigned and Revoked run
// on the consumer's goroutine; ObserveLag and Ready may be called from any goroutine.
type Handler struct {
	stats   *stats.Stats
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time

	assigned chan struct{} // signalled on every assignment; see Assignments

	mu         sync.Mutex
	rebuilding map[int32]*rebuild
}

// rebuild is the progress of one partition's replay from the beginning of the log.
type rebuild struct {
	started time.Time
	next    int64 // offset after the last record handled; -1 before the first
	target  int64 // the partition's high watermark seen after the assignment; -1 until seen
	empty   bool  // nothing to read when target was seen: no record retained below it
	records int64
}

func (r *rebuild) done() bool {
	return r.target >= 0 && (r.empty || r.next >= r.target)
}

// NewHandler returns a handler that counts orders in s; now tells the time of rebuilds.
func NewHandler(s *stats.Stats, m *Metrics, log *zap.Logger, now func() time.Time) *Handler {
	return &Handler{
		stats:      s,
		metrics:    m,
		log:        log.Named("consume"),
		now:        now,
		assigned:   make(chan struct{}, 1),
		rebuilding: make(map[int32]*rebuild),
	}
}

// Handle counts the order of one record. A malformed record is logged, counted in
// analytics_events_malformed_total and skipped (accepted): Kafka has no dead-letter queue, and
// retrying a record that can never be read would block its partition forever.
func (h *Handler) Handle(ctx context.Context, msg *kafka.Message) error {
	h.metrics.processed.Inc()
	order, reason, err := decode(msg)
	if err == nil {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String(ordersv1.SpanAttributeOrderID, order.ID))
		var counted bool
		counted, err = h.stats.Add(msg.Partition, order)
		switch {
		case errors.Is(err, stats.ErrInvalidOrder):
			reason = ReasonInvalid
		case err != nil:
			// Not owned: the consumer delivered a record of a partition it never assigned. Not
			// accepting it keeps the offset uncommitted for whoever owns the partition.
			return fmt.Errorf("consume: partition %d offset %d: %w", msg.Partition, msg.Offset, err)
		case !counted:
			h.metrics.duplicates.Inc()
		}
	}
	if err != nil {
		h.metrics.malformed.WithLabelValues(reason).Inc()
		logging.FromContext(ctx, h.log).Warn("malformed record skipped",
			zap.String("topic", msg.Topic), zap.Int32("partition", msg.Partition), zap.Int64("offset", msg.Offset),
			zap.ByteString("key", msg.Key), zap.String("reason", reason), zap.Error(err))
	}
	h.advance(msg.Partition, msg.Offset)
	return nil
}

// decode reads the order of a record, or says why it cannot: the reason label and the error.
func decode(msg *kafka.Message) (stats.Order, string, error) {
	eventType, _ := msg.Header(ordersv1.HeaderEventType)
	if string(eventType) != ordersv1.EventTypeOrderPlaced {
		return stats.Order{}, ReasonEventType, fmt.Errorf("%s header is %q, want %q",
			ordersv1.HeaderEventType, eventType, ordersv1.EventTypeOrderPlaced)
	}
	event, err := ordersv1.UnmarshalOrderPlaced(msg.Value)
	if err != nil {
		return stats.Order{}, ReasonDecode, err
	}
	if string(msg.Key) != event.GetOrderId() {
		return stats.Order{}, ReasonKey, fmt.Errorf("record key %q is not the order_id %q", msg.Key, event.GetOrderId())
	}
	order := stats.Order{ID: event.GetOrderId(), TotalCents: event.GetTotalCents()}
	for _, item := range event.GetItems() {
		order.Lines = append(order.Lines, stats.Line{
			SKU:        item.GetSku(),
			Quantity:   int64(item.GetQuantity()),
			TotalCents: item.GetLineTotalCents(),
		})
	}
	return order, "", nil
}

// Assigned starts the partitions this replica gained from scratch: their stats are reset and
// their records are read again from the beginning of the log. It is called at the end of every
// rebalance, also when the replica gained nothing: from the first call on, the replica knows
// which partitions are its own.
func (h *Handler) Assigned(_ context.Context, partitions []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
	h.stats.Join()
	if len(partitions) == 0 {
		return nil, nil
	}
	now := h.now()
	h.mu.Lock()
	for _, tp := range partitions {
		h.stats.Reset(tp.Partition)
		h.rebuilding[tp.Partition] = &rebuild{started: now, next: -1, target: -1}
	}
	h.metrics.rebuilding.Set(float64(len(h.rebuilding)))
	h.mu.Unlock()
	h.log.Info("rebuilding partitions from the beginning of the log", zap.Int32s("partitions", numbers(partitions)))

	select {
	case h.assigned <- struct{}{}:
	default: // a signal is already pending
	}
	return kafka.StartAll(partitions, kafka.OffsetBeginning), nil
}

// Revoked forgets the partitions this replica lost; their new owner rebuilds them.
func (h *Handler) Revoked(_ context.Context, partitions []kafka.TopicPartition) {
	h.mu.Lock()
	for _, tp := range partitions {
		h.stats.Drop(tp.Partition)
		delete(h.rebuilding, tp.Partition)
	}
	h.metrics.rebuilding.Set(float64(len(h.rebuilding)))
	h.mu.Unlock()
	h.log.Info("dropped the stats of revoked partitions", zap.Int32s("partitions", numbers(partitions)))
}

// Lost forgets the partitions the group took away without this replica giving them up (it
// missed its session timeout): until the group assigns it partitions again, it does not know
// what it owns, and serves nothing.
func (h *Handler) Lost(ctx context.Context, partitions []kafka.TopicPartition) {
	h.stats.Leave()
	h.Revoked(ctx, partitions)
}

// Assignments is signalled after partitions were assigned, so that the lag monitor reads their
// high watermarks without waiting for its next round.
func (h *Handler) Assignments() <-chan struct{} { return h.assigned }

// ObserveLag learns, from the first lag reading after a partition's assignment, where its
// rebuild ends: at the partition's high watermark then. It reports whether a rebuild still waits
// for such a reading (the partition's assignment may not have been in effect yet).
func (h *Handler) ObserveLag(lags []kafka.PartitionLag) (waiting bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range lags {
		r, ok := h.rebuilding[l.Partition]
		if !ok || r.target >= 0 {
			continue
		}
		r.target = l.HighWatermark
		// Retention may have deleted every record (the low watermark caught up with the high
		// one), whatever the group committed before: then there is nothing to replay.
		r.empty = l.LowWatermark >= l.HighWatermark
		h.finishIfDone(l.Partition, r)
	}
	for _, r := range h.rebuilding {
		if r.target < 0 {
			return true
		}
	}
	return false
}

// advance records that the record at offset was handled; h.mu must not be held.
func (h *Handler) advance(partition int32, offset int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.rebuilding[partition]
	if !ok {
		return
	}
	r.next = offset + 1
	r.records++
	h.finishIfDone(partition, r)
}

// finishIfDone ends the rebuild of partition once it reached its target; h.mu must be held.
func (h *Handler) finishIfDone(partition int32, r *rebuild) {
	if !r.done() {
		return
	}
	took := h.now().Sub(r.started)
	delete(h.rebuilding, partition)
	h.stats.Rebuilt(partition)
	h.metrics.rebuilding.Set(float64(len(h.rebuilding)))
	h.metrics.rebuildSeconds.Observe(took.Seconds())
	h.log.Info("partition rebuilt", zap.Int32("partition", partition),
		zap.Int64("records", r.records), zap.Int64("high_watermark", r.target), zap.Duration("took", took))
}

// Rebuilding returns the owned partitions whose stats are still being rebuilt, ascending.
func (h *Handler) Rebuilding() []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	parts := make([]int32, 0, len(h.rebuilding))
	for p := range h.rebuilding {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts
}

// Ready fails while the stats are not the right answer: before the replica is in its consumer
// group (it does not know its partitions yet), and while a partition is being rebuilt, until
// every partition it owns was replayed up to where the log ended when it was assigned. A
// replica the group gave no partition (more replicas than partitions) is ready.
func (h *Handler) Ready(context.Context) error { return h.stats.Complete() }

func numbers(partitions []kafka.TopicPartition) []int32 {
	out := make([]int32, len(partitions))
	for i, tp := range partitions {
		out[i] = tp.Partition
	}
	return out
}
