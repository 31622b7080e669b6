package orders_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// state is a dependency's Health, switched by the test.
type state struct {
	mu  sync.Mutex
	err error
}

func (s *state) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *state) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// trackedValidator is a Validator whose client tracks its connection.
type trackedValidator struct {
	orders.Validator
	*state
	calls int
}

func (v *trackedValidator) Validate(ctx context.Context, o orders.Order) (orders.PricedOrder, error) {
	v.calls++
	return v.Validator.Validate(ctx, o)
}

// trackedPublisher is a Publisher whose client tracks its connection.
type trackedPublisher struct {
	*publisher
	*state
}

type dependencies struct {
	validator       *trackedValidator
	kafka, rabbitmq *trackedPublisher
	service         *orders.Service
}

func newTracked(t *testing.T) *dependencies {
	t.Helper()
	d := &dependencies{
		validator: &trackedValidator{Validator: pricing(t), state: &state{}},
		kafka:     &trackedPublisher{publisher: &publisher{name: "kafka"}, state: &state{}},
		rabbitmq:  &trackedPublisher{publisher: &publisher{name: "rabbitmq"}, state: &state{}},
	}
	d.service = newService(t, d.validator, time.Minute, d.kafka, d.rabbitmq)
	return d
}

var order = orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}}

func TestPlaceFailsAtOnceWhileADependencyIsKnownDown(t *testing.T) {
	tests := []struct {
		name string
		down func(d *dependencies) *state
		want error
	}{
		{"validator", func(d *dependencies) *state { return d.validator.state }, orders.ErrValidatorUnavailable},
		{"kafka", func(d *dependencies) *state { return d.kafka.state }, orders.ErrNotPublished},
		{"rabbitmq", func(d *dependencies) *state { return d.rabbitmq.state }, orders.ErrNotPublished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTracked(t)
			dep := tt.down(d)
			dep.set(errors.New("connection refused"))

			_, err := d.service.Place(context.Background(), orders.Request{Order: order})

			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, orders.ErrDependencyDown)
			assert.ErrorContains(t, err, tt.name+" known to be down: connection refused")
			assert.Zero(t, d.validator.calls, "the validator is not asked")
			assert.Empty(t, d.kafka.published(), "nothing is sent to any broker")
			assert.Empty(t, d.rabbitmq.published())

			// Rules are still checked first: a broken order is a 422, whatever is down.
			_, err = d.service.Place(context.Background(), orders.Request{Order: orders.Order{CustomerID: "c-42"}})
			var rejected *orders.RejectedError
			require.ErrorAs(t, err, &rejected)

			dep.set(nil)
			_, err = d.service.Place(context.Background(), orders.Request{Order: order})
			require.NoError(t, err, "placed again once the dependency is back")
			assert.Len(t, d.kafka.published(), 1)
			assert.Len(t, d.rabbitmq.published(), 1)
		})
	}
}

func TestDependencyGauge(t *testing.T) {
	d := newTracked(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(d.service.Collector()))
	gauge := func() map[string]float64 {
		families, err := reg.Gather()
		require.NoError(t, err)
		require.Len(t, families, 1)
		assert.Equal(t, "order_dependency_down", families[0].GetName())
		values := map[string]float64{}
		for _, m := range families[0].GetMetric() {
			values[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		return values
	}

	assert.Equal(t, map[string]float64{"validator": 0, "kafka": 0, "rabbitmq": 0}, gauge())
	d.rabbitmq.set(errors.New("connection lost"))
	assert.Equal(t, map[string]float64{"validator": 0, "kafka": 0, "rabbitmq": 1}, gauge(), "read when scraped")
	d.rabbitmq.set(nil)
	assert.Equal(t, map[string]float64{"validator": 0, "kafka": 0, "rabbitmq": 0}, gauge())
}

func TestWatchLogsEachTransitionOnce(t *testing.T) {
	d := newTracked(t)
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.service.Watch(ctx, zap.New(core))
	}()
	t.Cleanup(func() { cancel(); <-done })

	d.kafka.set(errors.New("all brokers down"))
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("dependency down").Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(350 * time.Millisecond) // several rounds of Watch while kafka stays down
	d.kafka.set(nil)
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("dependency back").Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(350 * time.Millisecond)

	require.Equal(t, 2, logs.Len(), "one line per transition, not one per round: %v", logs.All())
	down := logs.All()[0]
	assert.Equal(t, zapcore.WarnLevel, down.Level)
	assert.Equal(t, "kafka", down.ContextMap()["dependency"])
	assert.Equal(t, "all brokers down", down.ContextMap()["error"])
	assert.Contains(t, logs.All()[1].ContextMap(), "down_for")
}
