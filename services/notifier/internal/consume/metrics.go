package consume

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Dead-letter reasons, the value of HeaderReason and of the reason label.
const (
	// ReasonMalformed: the message cannot be read as an OrderPlaced event; never retried.
	ReasonMalformed = "malformed"
	// ReasonAttemptsExhausted: every attempt failed.
	ReasonAttemptsExhausted = "attempts-exhausted"
)

// Metrics count what the handler chain decides.
type Metrics struct {
	Retried      prometheus.Counter
	DeadLettered *prometheus.CounterVec
	Duplicates   prometheus.Counter
}

// NewMetrics registers the consumer metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notifier_notifications_retried_total",
			Help: "Messages sent to the retry queue after a failed attempt.",
		}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifier_notifications_dead_lettered_total",
			Help: "Messages given up on and published to the dead-letter queue, by reason.",
		}, []string{"reason"}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notifier_notifications_duplicate_total",
			Help: "Deliveries of an order already notified, acknowledged without sending again.",
		}),
	}
	// Both reasons show up as 0 from the start, so that rate() and alerts see them.
	m.DeadLettered.WithLabelValues(ReasonMalformed)
	m.DeadLettered.WithLabelValues(ReasonAttemptsExhausted)
	for _, c := range []prometheus.Collector{m.Retried, m.DeadLettered, m.Duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register consumer metrics: %w", err)
		}
	}
	return m, nil
}
