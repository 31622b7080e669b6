package stats

import (
	"time"

	"go.uber.org/fx"
)

// Module provides the service's one *Stats, written by the consumer and read by the HTTP API.
var Module = fx.Module("stats",
	fx.Provide(func() *Stats { return New(time.Now) }),
)
