package httpserver

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
)

// Module serves every Routes in the "http_routes" group on Config.Addr. It needs a Config, a
// *zap.Logger and a prometheus.Registerer (the platform provides the last two). Its readiness
// check "http" passes once the server listens: the admin server starts first, and without it
// /readyz could say ready while the API still refuses connections.
var Module = fx.Module("httpserver",
	fx.Provide(
		newServer,
		admin.AsCheck(func(s *Server) admin.Check { return admin.Check{Name: "http", Check: s.listening} }),
	),
	fx.Invoke(func(*Server) {}),
)

func (s *Server) listening(context.Context) error {
	if s.Addr() == nil {
		return errors.New("http server not listening yet")
	}
	return nil
}

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
