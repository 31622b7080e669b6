package rabbitmq

import (
	"context"
	"errors"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// TopologyGroup is the fx value group whose Topology values the Connection declares at start
// and after every reconnect. Contribute to it with ProvideTopology.
const TopologyGroup = "rabbitmq.topology"

// Module provides a started *Connection and a *Publisher. It needs a Config and a *zap.Logger
// from the application, and declares every Topology in the TopologyGroup on the Connection.
//
// The Publisher has a connection of its own, as RabbitMQ's flow-control guidance advises: when
// the broker is short of memory or disk it stops reading from publishing connections, and a
// consumer sharing that connection could then not even ack. The Connection is for consumers and
// the topology.
//
// Start dials with the start context's deadline (and at most DialTimeout) and fails the
// application when the broker is unreachable or refuses the topology. Stop closes the
// publisher (after in-flight publishes) and its connection, then the Connection. Consumers are
// built by the services that own their handlers (NewConsumer) and hook Start/Stop into the
// lifecycle themselves, so they start after, and stop before, the connection.
var Module = fx.Module("rabbitmq",
	fx.Provide(
		newLifecycleConnection,
		newLifecyclePublisher,
	),
)

// ProvideTopology adds t to the topology the Connection of Module declares: a publisher
// contributes its exchange, a consumer its queue and bindings.
func ProvideTopology(t Topology) fx.Option {
	return fx.Supply(fx.Annotated{Group: TopologyGroup, Target: t})
}

type connectionParams struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Config     Config
	Logger     *zap.Logger
	Topologies []Topology `group:"rabbitmq.topology"`
}

func newLifecycleConnection(p connectionParams) (*Connection, error) {
	for _, t := range p.Topologies {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	conn, err := NewConnection(p.Config, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := conn.Start(ctx); err != nil {
				return err
			}
			if len(p.Topologies) == 0 {
				return nil
			}
			// One declaration: a value group has no order, and bindings need their exchanges.
			if err := conn.Declare(ctx, mergeTopologies(p.Topologies...)); err != nil {
				// fx does not stop a hook whose start failed.
				return errors.Join(err, conn.Close(ctx))
			}
			return nil
		},
		OnStop: conn.Close,
	})
	return conn, nil
}

// newLifecyclePublisher takes the topology Connection only to start after it: the exchanges it
// publishes to are declared by then.
func newLifecyclePublisher(lc fx.Lifecycle, cfg Config, log *zap.Logger, _ *Connection) (*Publisher, error) {
	if cfg.ConnectionName != "" {
		cfg.ConnectionName += "-publisher"
	}
	conn, err := NewConnection(cfg, log)
	if err != nil {
		return nil, err
	}
	p := NewPublisher(conn, log)
	lc.Append(fx.Hook{
		OnStart: conn.Start,
		OnStop: func(ctx context.Context) error {
			return errors.Join(p.Close(ctx), conn.Close(ctx))
		},
	})
	return p, nil
}
