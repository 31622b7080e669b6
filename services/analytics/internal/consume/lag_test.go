package consume_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/services/analytics/internal/consume"
)

// fakeLag stands in for kafka.Consumer.Lag: it answers with whatever the test set last.
type fakeLag struct {
	mu    sync.Mutex
	lags  []kafka.PartitionLag
	err   error
	calls int
}

func (f *fakeLag) set(err error, lags ...kafka.PartitionLag) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lags, f.err = lags, err
}

func (f *fakeLag) read(ctx context.Context) ([]kafka.PartitionLag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("a lag reading must carry a deadline")
	}
	return f.lags, f.err
}

func (f *fakeLag) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// startMonitor runs a LagMonitor over f's handler until the end of the test.
func startMonitor(t *testing.T, f fixture, lag *fakeLag, interval time.Duration) {
	t.Helper()
	m := consume.NewLagMonitor(lag.read, f.handler, f.metrics, interval, zaptest.NewLogger(t))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, m.Stop(ctx), "stops promptly")
	})
}

const eventually = 5 * time.Second

func TestLagMonitor_KeepsTheGaugeOfOwnedPartitions(t *testing.T) {
	f := newFixture(t)
	lag := &fakeLag{}
	lag.set(nil, lag0(0, 10, 4), lag0(1, 3, 0))
	startMonitor(t, f, lag, 20*time.Millisecond)

	gauge := func(partition string) float64 {
		return f.metric(t, "analytics_consumer_lag", "topic", topic, "partition", partition)
	}
	require.Eventually(t, func() bool { return gauge("0") == 4 && gauge("1") == 0 && lag.count() > 0 }, eventually, 10*time.Millisecond)

	// Partition 1 moved to another replica: its series goes, rather than showing a stale lag.
	lag.set(nil, lag0(0, 12, 1))
	require.Eventually(t, func() bool { return gauge("0") == 1 && !f.hasSeries(t, "analytics_consumer_lag", "partition", "1") },
		eventually, 10*time.Millisecond)

	// A failed reading keeps the last values.
	lag.set(errors.New("broker unreachable"))
	calls := lag.count()
	require.Eventually(t, func() bool { return lag.count() > calls+1 }, eventually, 10*time.Millisecond)
	assert.InDelta(t, 1, gauge("0"), 0)
}

func TestLagMonitor_ReadsAtOnceAfterAnAssignment(t *testing.T) {
	f := newFixture(t)
	lag := &fakeLag{}
	startMonitor(t, f, lag, time.Hour)
	require.Never(t, func() bool { return lag.count() > 0 }, 200*time.Millisecond, 10*time.Millisecond,
		"nothing to read before the interval")

	// The first reading after the assignment does not see it yet (the consumer assigns right
	// after Assigned returns), so the monitor reads again soon instead of in an hour.
	f.assign(t, 0)
	require.Eventually(t, func() bool { return lag.count() > 0 }, eventually, 10*time.Millisecond)
	lag.set(nil, lag0(0, 0, 0))
	require.Eventually(t, func() bool { return f.handler.Ready(context.Background()) == nil }, eventually, 10*time.Millisecond,
		"an empty partition is rebuilt as soon as its high watermark is known")
}

// lag0 is a lag reading of a partition the group has committed up to high-lagged.
func lag0(partition int32, high, lagged int64) kafka.PartitionLag {
	return lag(partition, high-lagged, high, lagged)
}

func (f fixture) hasSeries(t *testing.T, name string, labels ...string) bool {
	t.Helper()
	families, err := f.reg.Gather()
	require.NoError(t, err)
	for _, fam := range families {
		if fam.GetName() == name {
			for _, m := range fam.GetMetric() {
				if hasLabels(m, labels) {
					return true
				}
			}
		}
	}
	return false
}
