package orders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Health is implemented by a Validator or a Publisher whose client tracks its connection. Down
// returns why the dependency is known to be unreachable right now, or nil when it is up, slow,
// or not known to be down. It must not block: Place asks every dependency before each order.
//
// The clients learn it from their connections, not from failed orders: librdkafka's
// all-brokers-down error, the RabbitMQ connection's close notification, the gRPC channel's
// TRANSIENT_FAILURE. So a dependency that is merely slow is never reported down, and one that
// is back is reported up as soon as its client reconnected, without an order as a probe.
type Health interface {
	Down() error
}

// ErrDependencyDown marks an order refused at once, before anything was sent anywhere, because
// a dependency was known to be down. It comes wrapped with ErrValidatorUnavailable or
// ErrNotPublished, which say how to answer.
var ErrDependencyDown = errors.New("known to be down")

// dependency is a Validator or Publisher that implements Health, under the name it has in
// errors, logs and metrics.
type dependency struct {
	name   string
	health Health
	// wrap is the error an order refused because of it carries.
	wrap error
}

func dependenciesOf(v Validator, publishers []Publisher) []dependency {
	var deps []dependency
	if h, ok := v.(Health); ok {
		deps = append(deps, dependency{name: "validator", health: h, wrap: ErrValidatorUnavailable})
	}
	for _, p := range publishers {
		if h, ok := p.(Health); ok {
			deps = append(deps, dependency{name: p.Name(), health: h, wrap: ErrNotPublished})
		}
	}
	return deps
}

// down returns the error of the first dependency known to be down, nil when none is.
func (s *Service) down() error {
	for _, d := range s.deps {
		if err := d.health.Down(); err != nil {
			return fmt.Errorf("%w: %s %w: %w", d.wrap, d.name, ErrDependencyDown, err)
		}
	}
	return nil
}

// Collector returns the gauge order_dependency_down{dependency}: 1 while the dependency is known
// to be down, so that orders are answered 503 at once, else 0. It is read when scraped.
func (s *Service) Collector() prometheus.Collector {
	return &healthCollector{deps: s.deps, desc: prometheus.NewDesc(
		"order_dependency_down",
		"1 while order-api knows the dependency (validator, kafka, rabbitmq) is unreachable and answers orders with 503 at once, else 0.",
		[]string{"dependency"}, nil,
	)}
}

type healthCollector struct {
	deps []dependency
	desc *prometheus.Desc
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.deps {
		v := 0.0
		if d.health.Down() != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, d.name)
	}
}

// watchInterval is how often Watch looks at the dependencies' state: it only logs, so a late
// line costs nothing, and the state itself is asked for every order.
const watchInterval = 100 * time.Millisecond

// Watch logs every change of a dependency's state, once — "down" with the reason, "back" with
// how long it was down — until ctx ends. The caller owns the goroutine it runs in.
func (s *Service) Watch(ctx context.Context, log *zap.Logger) {
	downSince := make([]time.Time, len(s.deps)) // zero while up
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		for i, d := range s.deps {
			err := d.health.Down()
			switch {
			case err != nil && downSince[i].IsZero():
				downSince[i] = time.Now()
				log.Warn("dependency down: orders are answered 503 at once until it is back",
					zap.String("dependency", d.name), zap.Error(err))
			case err == nil && !downSince[i].IsZero():
				log.Info("dependency back: orders are placed again",
					zap.String("dependency", d.name), zap.Duration("down_for", time.Since(downSince[i])))
				downSince[i] = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watcher runs Watch from start to stop of the application.
type watcher struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start runs Watch until stop; it outlives ctx, the start hook's, on purpose.
func (w *watcher) start(ctx context.Context, s *Service, log *zap.Logger) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	w.done.Go(func() { s.Watch(ctx, log) })
}

func (w *watcher) stop() {
	w.cancel()
	w.done.Wait()
}
