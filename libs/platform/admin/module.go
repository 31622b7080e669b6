package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// Module runs the admin server on config.Base's AdminAddr and provides the service's
// prometheus.Registerer (to add metrics) and prometheus.Gatherer (what /metrics serves).
var Module = fx.Module("admin",
	fx.Provide(
		fx.Annotate(NewRegistry, fx.As(new(prometheus.Registerer)), fx.As(new(prometheus.Gatherer))),
		newServer,
	),
	fx.Invoke(func(*Server) {}),
)

// AsCheck annotates a constructor returning a Check so it joins the readiness checks:
//
//	fx.Provide(admin.AsCheck(func(c *rabbitmq.Conn) admin.Check {
//		return admin.Check{Name: "rabbitmq", Check: c.Ping}
//	}))
func AsCheck(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"readiness"`))
}

// AsRoute annotates a constructor returning a Route so the admin server serves it.
func AsRoute(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"admin_routes"`))
}

type serverParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Base      config.Base
	Log       *zap.Logger
	Gatherer  prometheus.Gatherer
	Checks    []Check `group:"readiness"`
	Routes    []Route `group:"admin_routes"`
}

func newServer(p serverParams) (*Server, error) {
	s, err := NewServer(p.Log, Options{
		Addr:     p.Base.AdminAddr,
		Gatherer: p.Gatherer,
		Checks:   p.Checks,
		Routes:   p.Routes,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(s.Start, s.Stop))
	return s, nil
}
