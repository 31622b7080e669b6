package httpserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module serves every Routes in the "http_routes" group on Config.Addr. It needs a Config, a
// *zap.Logger and a prometheus.Registerer (the platform provides the last two).
var Module = fx.Module("httpserver",
	fx.Provide(newServer),
	fx.Invoke(func(*Server) {}),
)

// AsRoutes annotates a constructor whose result implements Routes so Module registers it:
//
//	fx.Provide(httpserver.AsRoutes(orders.NewHandler))
func AsRoutes(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Routes)), fx.ResultTags(`group:"http_routes"`))
}

type serverParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Log       *zap.Logger
	Registry  prometheus.Registerer
	Routes    []Routes `group:"http_routes"`
}

func newServer(p serverParams) (*Server, error) {
	e, err := New(p.Log, p.Registry)
	if err != nil {
		return nil, err
	}
	for _, r := range p.Routes {
		r.Register(e)
	}
	s := NewServer(p.Config, e, p.Log)
	p.Lifecycle.Append(fx.StartStopHook(s.Start, s.Stop))
	return s, nil
}
