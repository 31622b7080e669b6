package notify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

func TestSimulatedSenderFailsAtItsRate(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		random   float64
		wantFail bool
	}{
		{"rate 0 never fails", 0, 0, false},
		{"rate 1 always fails", 1, 0.999999, true},
		{"draw below the rate fails", 0.5, 0.49, true},
		{"draw at the rate succeeds", 0.5, 0.5, false},
		{"draw above the rate succeeds", 0.5, 0.51, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := notify.NewSimulatedSender(zaptest.NewLogger(t), tt.rate, func() float64 { return tt.random })
			require.NoError(t, err)

			err = s.Send(context.Background(), notify.Order{ID: "o-1", CustomerID: "c-42", TotalCents: 2598, Currency: "EUR"})

			if tt.wantFail {
				assert.ErrorIs(t, err, notify.ErrUnavailable)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestSimulatedSenderRejectsARateOutsideZeroToOne(t *testing.T) {
	for _, rate := range []float64{-0.1, 1.1} {
		_, err := notify.NewSimulatedSender(zaptest.NewLogger(t), rate, nil)
		assert.Error(t, err, "rate %v", rate)
	}
}

func TestStoreForgetsTheOldestBeyondItsLimit(t *testing.T) {
	store, err := notify.NewStore(2)
	require.NoError(t, err)

	for _, id := range []string{"o-1", "o-2", "o-3"} {
		require.NoError(t, store.Add(notify.Notification{OrderID: id, CustomerID: "c-42", Attempts: 1}))
		// Lookups do not keep an entry alive: the store forgets in the order of sending.
		_, _ = store.Get("o-1")
	}

	assert.Equal(t, 2, store.Len())
	_, ok := store.Get("o-1")
	assert.False(t, ok, "the oldest notification is forgotten")
	for _, id := range []string{"o-2", "o-3"} {
		n, ok := store.Get(id)
		require.True(t, ok, id)
		assert.Equal(t, id, n.OrderID)
	}
}

func TestNewStoreNeedsAPositiveLimit(t *testing.T) {
	_, err := notify.NewStore(0)
	assert.Error(t, err)
}

// senderFunc adapts a function to notify.Sender.
type senderFunc func(ctx context.Context, o notify.Order) error

func (f senderFunc) Send(ctx context.Context, o notify.Order) error { return f(ctx, o) }

func TestNotifierRecordsOnlyWhatWasSent(t *testing.T) {
	order := notify.Order{ID: "o-1", CustomerID: "c-42", TotalCents: 2598, Currency: "EUR"}
	tests := []struct {
		name       string
		sendErr    error
		wantStored bool
	}{
		{"sent: recorded with its attempt, in UTC", nil, true},
		{"failed: nothing recorded, the error says which order", notify.ErrUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := notify.NewStore(10)
			require.NoError(t, err)
			metrics, err := notify.NewMetrics(prometheus.NewRegistry())
			require.NoError(t, err)
			n := notify.NewNotifier(senderFunc(func(context.Context, notify.Order) error { return tt.sendErr }),
				store, metrics, zaptest.NewLogger(t))
			before := time.Now()

			err = n.Notify(context.Background(), order, 3)

			got, stored := store.Get(order.ID)
			require.Equal(t, tt.wantStored, stored)
			if !tt.wantStored {
				require.ErrorIs(t, err, tt.sendErr)
				assert.Contains(t, err.Error(), `order "o-1"`)
				assert.Equal(t, 1.0, testutil.ToFloat64(metrics.SendFailures))
				assert.Equal(t, 0.0, testutil.ToFloat64(metrics.Sent))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "o-1", got.OrderID)
			assert.Equal(t, "c-42", got.CustomerID)
			assert.Equal(t, 3, got.Attempts)
			assert.Equal(t, time.UTC, got.SentAt.Location())
			assert.False(t, got.SentAt.Before(before.Truncate(time.Millisecond)), "sent at %s, test began %s", got.SentAt, before)
			assert.Equal(t, 1.0, testutil.ToFloat64(metrics.Sent))
		})
	}
}

func TestSimulatedSenderHonoursACancelledContext(t *testing.T) {
	s, err := notify.NewSimulatedSender(zaptest.NewLogger(t), 0, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err = s.Send(ctx, notify.Order{ID: "o-1"})

	assert.True(t, errors.Is(err, context.Canceled), fmt.Sprint(err))
}
