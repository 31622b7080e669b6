package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// ServiceName names the service in its spans (the service.name resource attribute) unless
// OTEL_SERVICE_NAME says otherwise. platform.New supplies it.
type ServiceName string

// Module provides the service's *Provider, also as trace.TracerProvider, and installs it as
// the global one before any other constructor runs. On stop it flushes the spans still
// buffered: it is built first, so fx stops it last, after the servers and consumers whose
// spans it exports.
var Module = fx.Module("tracing",
	fx.Provide(
		provide,
		func(p *Provider) trace.TracerProvider { return p },
	),
	fx.Invoke(func(*Provider) {}),
)

type params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Base      config.Base
	Name      ServiceName `optional:"true"`
	Log       *zap.Logger
}

func provide(p params) (*Provider, error) {
	tp, err := New(context.Background(), string(p.Name), p.Base.Tracing, p.Log.Named("tracing"))
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(tp.Shutdown))
	return tp, nil
}
