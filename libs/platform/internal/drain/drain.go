// Package drain splits a stop deadline between a server's graceful drain and the stop hooks that
// run after it.
//
// fx gives all OnStop hooks one shared deadline and skips the remaining hooks once it has passed.
// A server that drained until the very end would leave no time for what stops after it — flushing
// a producer, closing broker connections — so servers drain within a share of the time left and
// then force-close.
package drain

import (
	"context"
	"time"
)

// Share is the fraction of the remaining stop time a server may spend draining.
const Share = 2.0 / 3.0

// Context returns a context that expires once Share of the time left before ctx's deadline has
// passed, or when ctx is done. Without a deadline it only follows ctx.
func Context(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	left := time.Until(deadline)
	return context.WithTimeout(ctx, time.Duration(float64(left)*Share))
}
