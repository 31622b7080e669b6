package consume

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// Dedupe makes handling idempotent by order_id: an order the store remembers as notified is
// acknowledged without calling the handler again. Deliveries of the same order that arrive
// together (a publisher's retry, a redelivery) are handled one at a time, so the second sees
// what the first did.
//
// The store is the bound: an order notified so long ago that the store forgot it, or before a
// restart of a process without a journal (notify.OpenStore), would be notified again.
func Dedupe(store *notify.Store, m *Metrics, log *zap.Logger) func(OrderHandler) OrderHandler {
	d := &deduper{inFlight: map[string]chan struct{}{}}
	return func(next OrderHandler) OrderHandler {
		return func(ctx context.Context, msg Message) error {
			release, err := d.claim(ctx, msg.Order.ID)
			if err != nil {
				return err
			}
			defer release()
			if _, sent := store.Get(msg.Order.ID); sent {
				m.Duplicates.Inc()
				logging.FromContext(ctx, log).Info("order already notified, acknowledging the duplicate",
					zap.String("order_id", msg.Order.ID))
				return nil
			}
			return next(ctx, msg)
		}
	}
}

type deduper struct {
	mu       sync.Mutex
	inFlight map[string]chan struct{} // closed when the order's handler returned
}

// claim waits until no other delivery of orderID is being handled, then marks it as handled
// here until release is called.
func (d *deduper) claim(ctx context.Context, orderID string) (release func(), err error) {
	for {
		d.mu.Lock()
		busy, ok := d.inFlight[orderID]
		if !ok {
			done := make(chan struct{})
			d.inFlight[orderID] = done
			d.mu.Unlock()
			return func() {
				d.mu.Lock()
				delete(d.inFlight, orderID)
				d.mu.Unlock()
				close(done)
			}, nil
		}
		d.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
