package orders

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
)

// publishersGroup is the fx value group of the Publishers an order is published to.
const publishersGroup = `group:"order_publishers"`

// Module provides the *Service. It needs a Validator and at least one Publisher (see
// AsPublisher) in the graph. It registers the gauge order_dependency_down and, while the
// application runs, logs each change of a dependency's state (Service.Watch).
var Module = fx.Module("orders",
	fx.Provide(newService),
)

// AsPublisher annotates a constructor whose result implements Publisher so that every order is
// published through it:
//
//	fx.Provide(orders.AsPublisher(events.NewKafkaPublisher))
func AsPublisher(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Publisher)), fx.ResultTags(publishersGroup))
}

type serviceParams struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Config     config.Config
	Log        *zap.Logger
	Registry   prometheus.Registerer
	Validator  Validator
	Publishers []Publisher `group:"order_publishers"`
}

func newService(p serviceParams) (*Service, error) {
	s, err := NewService(p.Validator, p.Publishers, Options{PublishTimeout: p.Config.PublishTimeout})
	if err != nil {
		return nil, err
	}
	if err := p.Registry.Register(s.Collector()); err != nil {
		return nil, fmt.Errorf("orders: register metrics: %w", err)
	}
	var w watcher
	log := p.Log.Named("orders")
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { w.start(ctx, s, log); return nil },
		OnStop:  func(context.Context) error { w.stop(); return nil },
	})
	return s, nil
}
