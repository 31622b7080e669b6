package grpcserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module serves every Service in the "grpc_services" group on Config.Addr. It needs a Config, a
// *zap.Logger and a prometheus.Registerer (the platform provides the last two).
var Module = fx.Module("grpcserver",
	fx.Provide(newServer),
	fx.Invoke(func(*Server) {}),
)

// AsService annotates a constructor whose result implements Service so Module registers it:
//
//	fx.Provide(grpcserver.AsService(validation.NewServer))
func AsService(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Service)), fx.ResultTags(`group:"grpc_services"`))
}

type serverParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Log       *zap.Logger
	Registry  prometheus.Registerer
	Services  []Service `group:"grpc_services"`
}

func newServer(p serverParams) (*Server, error) {
	s, err := New(p.Config, p.Log, p.Registry, p.Services)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(s.Start, s.Stop))
	return s, nil
}
