package kafka

import (
	"context"
	"errors"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the process-wide *Producer. It needs a Config and a *zap.Logger in the graph.
// Starting verifies that a broker answers (within the fx start timeout); stopping flushes and
// closes the producer within the fx stop timeout. Readiness is Producer.Ready, which services
// register with their admin server's readiness checks.
var Module = fx.Module("kafka",
	fx.Provide(provideProducer),
)

func provideProducer(lc fx.Lifecycle, cfg Config, log *zap.Logger) (*Producer, error) {
	p, err := NewProducer(cfg, log)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := p.Ready(ctx); err != nil {
				// fx skips OnStop for a hook whose OnStart failed, so release the producer here.
				return errors.Join(err, p.Close(ctx))
			}
			return nil
		},
		OnStop: p.Close,
	})
	return p, nil
}
