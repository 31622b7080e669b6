package consume

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/kafka"
)

// LagTimeout bounds one lag reading (a committed-offsets request plus one watermark request per
// owned partition).
const LagTimeout = 5 * time.Second

// soon is how quickly the monitor reads again while a rebuild waits for its first reading.
const soon = 250 * time.Millisecond

// LagMonitor keeps the analytics_consumer_lag gauge up to date in a goroutine of its own, from
// Start until Stop, and hands every reading to the Handler so rebuilds learn where they end.
type LagMonitor struct {
	lag      func(context.Context) ([]kafka.PartitionLag, error)
	handler  *Handler
	gauge    *prometheus.GaugeVec
	interval time.Duration
	log      *zap.Logger

	shown map[kafka.TopicPartition]bool // gauge series set by the last reading; run's alone

	cancel context.CancelFunc
	done   chan struct{}
}

// NewLagMonitor returns a monitor that reads lag (kafka.Consumer.Lag) every interval and right
// after each assignment h reports.
func NewLagMonitor(lag func(context.Context) ([]kafka.PartitionLag, error), h *Handler, m *Metrics, interval time.Duration, log *zap.Logger) *LagMonitor {
	return &LagMonitor{
		lag:      lag,
		handler:  h,
		gauge:    m.lag,
		interval: interval,
		log:      log.Named("lag"),
		shown:    make(map[kafka.TopicPartition]bool),
	}
}

// Start starts the monitor's goroutine; it does not block. The goroutine outlives ctx, which
// bounds only the start, and runs until Stop.
func (m *LagMonitor) Start(ctx context.Context) error {
	if m.done != nil {
		return errors.New("consume: lag monitor already started")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.done = make(chan struct{})
	go m.run(ctx)
	return nil
}

// Stop ends the goroutine and waits for it, at most until ctx is done.
func (m *LagMonitor) Stop(ctx context.Context) error {
	if m.done == nil {
		return nil
	}
	m.cancel()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consume: stop lag monitor: %w", ctx.Err())
	}
}

func (m *LagMonitor) run(ctx context.Context) {
	defer close(m.done)
	timer := time.NewTimer(m.interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.handler.Assignments():
		}
		next := m.interval
		if m.refresh(ctx) {
			next = min(next, soon)
		}
		timer.Reset(next)
	}
}

// refresh reads the lag once and reports whether a rebuild still waits for a reading.
func (m *LagMonitor) refresh(ctx context.Context) (again bool) {
	readCtx, cancel := context.WithTimeout(ctx, LagTimeout)
	defer cancel()
	lags, err := m.lag(readCtx)
	if err != nil {
		if ctx.Err() == nil { // not stopping
			m.log.Warn("read consumer lag", zap.Error(err))
		}
		// The gauge keeps its last values; a broker that does not answer is retried at the
		// usual pace rather than hammered.
		return false
	}
	seen := make(map[kafka.TopicPartition]bool, len(lags))
	for _, l := range lags {
		m.gauge.WithLabelValues(l.Topic, strconv.Itoa(int(l.Partition))).Set(float64(l.Lag))
		seen[l.TopicPartition] = true
	}
	// Partitions another replica owns now are its to report.
	for tp := range m.shown {
		if !seen[tp] {
			m.gauge.DeleteLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition)))
		}
	}
	m.shown = seen
	return m.handler.ObserveLag(lags)
}
