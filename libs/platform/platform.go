// Package platform starts a service: it loads the service's configuration from the environment,
// builds its logger, runs the admin server, and runs the fx application until SIGINT or SIGTERM.
//
// A service's main.go only composes modules:
//
//	func main() {
//		platform.Run[config.Config]("validator",
//			fx.Provide(config.GRPCServer), // config.Config → grpcserver.Config
//			grpcserver.Module,
//			validation.Module,
//		)
//	}
//
// where config.Config is the service's one configuration struct. It embeds config.Base
// (LOG_LEVEL, LOG_FORMAT, ADMIN_ADDR, SHUTDOWN_TIMEOUT, OpenTelemetry's OTEL_*) and adds the service's own variables:
//
//	type Config struct {
//		config.Base
//		GRPCAddr string `env:"GRPC_ADDR" envDefault:":50051"`
//	}
//
// Every constructor in the graph can then ask for Config, config.Base, *zap.Logger,
// prometheus.Registerer and fx.Lifecycle. The sub-packages hold the pieces: config, logging,
// tracing (OpenTelemetry), admin (/livez, /readyz, /metrics, /debug/pprof), httpserver (echo)
// and grpcserver.
package platform

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/libs/platform/tracing"
)

// Run loads C, builds the application with opts and runs it until SIGINT or SIGTERM. It is the
// only function in the platform that exits the process: with status 1 and a one-line message on
// stderr when the configuration is bad, with 1 when start or stop fails, and by returning (status
// 0) after a clean stop.
//
// With the single argument "healthcheck", Run does not start the service: it asks the admin
// server of the one already running (ADMIN_ADDR) whether it is ready and exits 0 if so, else 1
// with the reason on stderr. That is a container health check for an image without a shell
// or curl (Compose's `healthcheck: test: ["CMD", "/server", "healthcheck"]`).
func Run[C config.Service](name string, opts ...fx.Option) {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(name))
	}
	app, err := New[C](name, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	app.Run()
}

// New loads the configuration C from the environment, builds the logger (JSON on stdout unless
// LOG_FORMAT says otherwise) and returns the application: Options plus opts.
func New[C config.Service](name string, opts ...fx.Option) (*fx.App, error) {
	cfg, err := config.Load[C]()
	if err != nil {
		return nil, err
	}
	log, err := logging.New(os.Stdout, name, cfg.BaseConfig())
	if err != nil {
		return nil, err
	}
	app := fx.New(Options(cfg, log), fx.Supply(tracing.ServiceName(name)), fx.Options(opts...))
	if err := app.Err(); err != nil {
		return nil, fmt.Errorf("build application: %w", err)
	}
	return app, nil
}

// Options is the platform's part of a service's graph, for a configuration already loaded: it
// supplies cfg (as C and as config.Base) and log, sends fx's own events to log, bounds the
// stop with SHUTDOWN_TIMEOUT, sets up tracing (OTEL_*) and runs the admin server. Service
// graph tests use it with fxtest.
func Options[C config.Service](cfg C, log *zap.Logger) fx.Option {
	base := cfg.BaseConfig()
	supplied := []any{cfg, log}
	if _, isBase := any(cfg).(config.Base); !isBase {
		supplied = append(supplied, base)
	}
	return fx.Options(
		fx.Supply(supplied...),
		fx.WithLogger(func() fxevent.Logger { return logging.NewFxLogger(log) }),
		fx.StopTimeout(base.ShutdownTimeout),
		tracing.Module, // first, so that it stops last
		admin.Module,
	)
}

// HealthcheckTimeout bounds `<service> healthcheck`: the admin server's /readyz answers within
// admin.DefaultCheckTimeout, so this leaves it a second more.
const HealthcheckTimeout = admin.DefaultCheckTimeout + time.Second

// healthcheck is `<service> healthcheck`: it returns the exit code. Other arguments are ignored,
// as they always were (a test binary re-executing itself as the service passes its own flags).
func healthcheck(name string) int {
	base, err := config.Load[config.Base]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s healthcheck: %v\n", name, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), HealthcheckTimeout)
	defer cancel()
	if err := admin.ProbeReady(ctx, base.AdminAddr); err != nil {
		fmt.Fprintf(os.Stderr, "%s healthcheck: not ready: %v\n", name, err)
		return 1
	}
	return 0
}
