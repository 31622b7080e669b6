package consume

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a record is malformed, the values of the "reason" label of
// analytics_events_malformed_total.
const (
	ReasonEventType = "event_type" // the event-type header is missing or names another event
	ReasonDecode    = "decode"     // the body is not a protojson OrderPlaced
	ReasonKey       = "key"        // the record key is not the order_id, so deduplication by partition would not be exact
	ReasonInvalid   = "invalid"    // the order cannot be counted (see stats.Order.Validate)
)

var reasons = []string{ReasonEventType, ReasonDecode, ReasonKey, ReasonInvalid}

// Metrics are the consumer's Prometheus metrics.
type Metrics struct {
	processed      prometheus.Counter
	duplicates     prometheus.Counter
	malformed      *prometheus.CounterVec
	lag            *prometheus.GaugeVec
	rebuilding     prometheus.Gauge
	rebuildSeconds prometheus.Histogram
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_events_processed_total",
			Help: "Records read from the orders topic, whatever their outcome. Replays after a partition assignment count again.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_events_duplicate_total",
			Help: "OrderPlaced events skipped because their partition had already counted their order_id.",
		}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_events_malformed_total",
			Help: "Records skipped because they could not be counted, by reason: event_type, decode, key, invalid.",
		}, []string{"reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "analytics_consumer_lag",
			Help: "Records of an owned partition the consumer group has not committed yet.",
		}, []string{"topic", "partition"}),
		rebuilding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "analytics_partitions_rebuilding",
			Help: "Owned partitions still being replayed from the beginning of the log; their stats are incomplete.",
		}),
		rebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "analytics_partition_rebuild_duration_seconds",
			Help:    "Time from a partition's assignment until its replay reached the end of the log as it was then.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50ms … about 7 minutes
		}),
	}
	for _, c := range []prometheus.Collector{m.processed, m.duplicates, m.malformed, m.lag, m.rebuilding, m.rebuildSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("consume: register metrics: %w", err)
		}
	}
	// Every reason is exported from the start, so a dashboard shows 0 rather than no data.
	for _, r := range reasons {
		m.malformed.WithLabelValues(r)
	}
	return m, nil
}
