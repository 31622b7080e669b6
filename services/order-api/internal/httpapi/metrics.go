package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count orders by outcome. Together with http_requests_total they tell apart clients
// sending bad orders (rejected) from order-api failing good ones (failed).
type metrics struct {
	accepted prometheus.Counter
	rejected *prometheus.CounterVec
	failed   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_accepted_total",
			Help: "Orders answered with 202: validated, priced and confirmed by every broker.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_rejected_total",
			Help: "Orders answered with 4xx, by reason: malformed, too_large, unsupported_media_type, invalid, idempotency_key_reused, idempotency_key_in_flight.",
		}, []string{"reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_failed_total",
			Help: "Orders answered with 5xx, by reason: validator_unavailable, broker_unavailable, idempotency_store_unavailable, internal.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.accepted, m.rejected, m.failed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return m, nil
}
