package orders

import (
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
)

// publishersGroup is the fx value group of the Publishers an order is published to.
const publishersGroup = `group:"order_publishers"`

// Module provides the *Service. It needs a Validator and at least one Publisher (see
// AsPublisher) in the graph.
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

	Config     config.Config
	Validator  Validator
	Publishers []Publisher `group:"order_publishers"`
}

func newService(p serviceParams) (*Service, error) {
	return NewService(p.Validator, p.Publishers, Options{PublishTimeout: p.Config.PublishTimeout})
}
