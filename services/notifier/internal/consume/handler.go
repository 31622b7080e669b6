package consume

import (
	"context"

	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// NewHandler is the handler of OrderPlaced deliveries: notify the customer, once per order.
// Around that small function, outermost first:
//
//   - LogContext: the message's IDs on every log line about it;
//   - RetryOrDeadLetter: a failure is retried after the delay or dead-lettered;
//   - Recover: a panic is a failed attempt, not a lost process;
//   - Decode: the delivery becomes a checked OrderPlaced, or fails as malformed;
//   - Dedupe: an order already notified is acknowledged without sending again.
func NewHandler(s Settings, pub Publisher, n *notify.Notifier, store *notify.Store, m *Metrics, log *zap.Logger) rabbitmq.Handler {
	log = log.Named("consume")
	notifyOrder := func(ctx context.Context, msg Message) error {
		return n.Notify(ctx, msg.Order, msg.Attempt)
	}
	return Chain(
		Decode(Dedupe(store, m, log)(notifyOrder)),
		LogContext(),
		RetryOrDeadLetter(s, pub, m, log),
		Recover(log),
	)
}
