// Command testapp is the smallest service built on the platform: an HTTP route, a gRPC server
// with only the standard services, and one readiness check. The platform's tests run it as a
// real process to check start-up, signals and exit codes.
package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
)

// Config is the service configuration: the shared Base plus this service's listen addresses.
type Config struct {
	config.Base
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	GRPCAddr string `env:"GRPC_ADDR" envDefault:":50051"`
}

// Validate checks what the env tags cannot.
func (c Config) Validate() error {
	return errors.Join(
		config.CheckAddr("HTTP_ADDR", c.HTTPAddr),
		config.CheckAddr("GRPC_ADDR", c.GRPCAddr),
	)
}

func main() {
	platform.Run[Config]("testapp",
		fx.Provide(
			func(c Config) httpserver.Config { return httpserver.Config{Addr: c.HTTPAddr} },
			func(c Config) grpcserver.Config { return grpcserver.Config{Addr: c.GRPCAddr} },
			httpserver.AsRoutes(func() httpserver.RoutesFunc { return hello }),
			admin.AsCheck(func() admin.Check { return admin.Check{Name: "self", Check: alwaysReady} }),
		),
		httpserver.Module,
		grpcserver.Module,
	)
}

func hello(e *echo.Echo) {
	e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "hello") })
}

func alwaysReady(context.Context) error { return nil }
