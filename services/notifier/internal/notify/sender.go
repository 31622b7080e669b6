package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// Sender delivers a notification about an order to its customer. An error is transient: the
// same notification may be sent again later.
type Sender interface {
	Send(ctx context.Context, o Order) error
}

// ErrUnavailable is the transient failure a SimulatedSender produces on purpose.
var ErrUnavailable = errors.New("notification channel unavailable (simulated)")

// SimulatedSender stands in for an e-mail or SMS gateway: it logs the message it would send.
// It fails with ErrUnavailable at its failure rate, so that the retry path can be watched.
type SimulatedSender struct {
	log         *zap.Logger
	failureRate float64
	random      func() float64
}

// NewSimulatedSender returns a sender that fails when random() < failureRate. random returns
// numbers in [0, 1); nil uses math/rand/v2. A rate of 0 never fails, 1 always does.
func NewSimulatedSender(log *zap.Logger, failureRate float64, random func() float64) (*SimulatedSender, error) {
	if failureRate < 0 || failureRate > 1 {
		return nil, fmt.Errorf("notify: failure rate %v is outside [0, 1]", failureRate)
	}
	if random == nil {
		random = rand.Float64
	}
	return &SimulatedSender{log: log.Named("sender"), failureRate: failureRate, random: random}, nil
}

// Send logs the notification, or fails with ErrUnavailable.
func (s *SimulatedSender) Send(ctx context.Context, o Order) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.random() < s.failureRate {
		return ErrUnavailable
	}
	logging.FromContext(ctx, s.log).Debug("sending notification",
		zap.String("to", o.CustomerID),
		zap.String("text", fmt.Sprintf("Your order %s was placed: %s %s.", o.ID, formatCents(o.TotalCents), o.Currency)))
	return nil
}

// formatCents writes integer cents as units and cents, e.g. 2598 as "25.98".
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}
