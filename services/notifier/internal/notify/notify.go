// Package notify is what the notifier does with a placed order: it "sends" the customer a
// notification (simulated: logged, and failing at random when asked to, so that retries can be
// watched) and remembers the notifications it sent recently (in memory, optionally journaled to
// a file), so that a redelivered order is recognised and GET /v1/notifications/{order_id} can
// answer.
package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// Order is what a notification is about.
type Order struct {
	ID         string
	CustomerID string
	TotalCents int64
	Currency   string
}

// Notification is the record of a notification that was sent.
type Notification struct {
	OrderID    string
	CustomerID string
	// Attempts is the attempt that succeeded: 1 when the first try went through.
	Attempts int
	// SentAt is when it was sent, in UTC.
	SentAt time.Time
}

// Settings are the notifier's own knobs.
type Settings struct {
	// RecentLimit bounds how many notifications are remembered.
	RecentLimit int
	// FailureRate is the probability, from 0 to 1, that a send fails transiently.
	FailureRate float64
	// JournalPath is a file that keeps the recent notifications across restarts; empty keeps
	// them in memory only.
	JournalPath string
}

// Metrics count what the Notifier does.
type Metrics struct {
	Sent         prometheus.Counter
	SendFailures prometheus.Counter
}

// NewMetrics registers the notification metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notifier_notifications_sent_total",
			Help: "Notifications sent, one per order (duplicates are not sent again).",
		}),
		SendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notifier_send_failures_total",
			Help: "Attempts to send a notification that failed; each is retried or dead-lettered.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Sent, m.SendFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register notification metrics: %w", err)
		}
	}
	return m, nil
}

// Notifier sends notifications and records the ones sent in a Store.
type Notifier struct {
	sender  Sender
	store   *Store
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time
}

// NewNotifier returns a Notifier that sends through sender and records in store.
func NewNotifier(sender Sender, store *Store, m *Metrics, log *zap.Logger) *Notifier {
	return &Notifier{sender: sender, store: store, metrics: m, log: log.Named("notify"), now: time.Now}
}

// Notify sends the notification for o; attempt is the how-manyth try this is, recorded with
// it. An error means nothing was recorded and another attempt may succeed.
func (n *Notifier) Notify(ctx context.Context, o Order, attempt int) error {
	if err := n.sender.Send(ctx, o); err != nil {
		n.metrics.SendFailures.Inc()
		return fmt.Errorf("notify customer %q of order %q: %w", o.CustomerID, o.ID, err)
	}
	sent := Notification{OrderID: o.ID, CustomerID: o.CustomerID, Attempts: attempt, SentAt: n.now().UTC()}
	log := logging.FromContext(ctx, n.log)
	if err := n.store.Add(sent); err != nil {
		// Sent is sent: failing now would only send it again. A restart may forget it.
		log.Warn("notification sent but not written to the journal", zap.String("order_id", o.ID), zap.Error(err))
	}
	n.metrics.Sent.Inc()
	log.Info("notification sent",
		zap.String("order_id", o.ID), zap.String("customer_id", o.CustomerID),
		zap.Int64("total_cents", o.TotalCents), zap.String("currency", o.Currency),
		zap.Int("attempt", attempt))
	return nil
}
