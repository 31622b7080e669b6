package consume

import (
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// Module declares the notifier's topology on rabbitmq.Module's Connection (DeclareTopology) and
// runs the consumer of its work queue: it starts after the connection is up and stops, finishing the
// messages in hand, before the publisher and the connection close. Readiness requires the
// connection, the subscription and the publisher's connection.
var Module = fx.Module("consume",
	fx.Provide(
		NewMetrics,
		newConsumer,
		admin.AsCheck(func(c *rabbitmq.Connection) admin.Check {
			return admin.Check{Name: "rabbitmq", Check: c.Ready}
		}),
		admin.AsCheck(func(c *rabbitmq.Consumer) admin.Check {
			return admin.Check{Name: "consumer", Check: c.Ready}
		}),
		// Retries and dead letters are published: without the publisher, failures would pile up.
		admin.AsCheck(func(p *rabbitmq.Publisher) admin.Check {
			return admin.Check{Name: "rabbitmq-publisher", Check: p.Ready}
		}),
	),
	fx.Invoke(func(*rabbitmq.Consumer) {}),
)

type consumerParams struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Settings   Settings
	Connection *rabbitmq.Connection
	Publisher  *rabbitmq.Publisher
	Notifier   *notify.Notifier
	Store      *notify.Store
	Metrics    *Metrics
	Log        *zap.Logger
}

func newConsumer(p consumerParams) (*rabbitmq.Consumer, error) {
	if err := p.Settings.Validate(); err != nil {
		return nil, err
	}
	h := NewHandler(p.Settings, p.Publisher, p.Notifier, p.Store, p.Metrics, p.Log)
	c, err := rabbitmq.NewConsumer(p.Connection, rabbitmq.ConsumerConfig{Queue: p.Settings.Queue}, h, p.Log)
	if err != nil {
		return nil, err
	}
	// The topology before the consumer, which needs its queue: hooks start in the order appended.
	p.Lifecycle.Append(fx.StartHook(func(ctx context.Context) error {
		return DeclareTopology(ctx, p.Connection, p.Settings, p.Log)
	}))
	p.Lifecycle.Append(fx.StartStopHook(c.Start, c.Stop))
	return c, nil
}
