package grpcapi

import (
	"context"
	"errors"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
	"github.com/backend-prep/backend-prep/services/validator/internal/config"
	"github.com/backend-prep/backend-prep/services/validator/internal/validation"
)

// Module contributes the OrderValidation service to the platform's gRPC server (grpcserver.Module),
// tells that server to listen on GRPC_ADDR, and adds a "grpc" readiness check that passes once the
// server is listening.
var Module = fx.Module("grpcapi",
	fx.Provide(
		grpcserver.AsService(newServer),
		serverConfig,
		admin.AsCheck(readiness),
	),
)

func newServer(cfg config.Config, c *catalog.Catalog, v *validation.Validator, log *zap.Logger) *Server {
	if cfg.Delay > 0 {
		log.Warn("every answer is delayed, to demonstrate deadlines", zap.Duration("validator_delay", cfg.Delay))
	}
	return NewServer(c, v, cfg.Delay)
}

func serverConfig(cfg config.Config) grpcserver.Config {
	return grpcserver.Config{Addr: cfg.GRPCAddr}
}

func readiness(s *grpcserver.Server) admin.Check {
	return admin.Check{Name: "grpc", Check: func(context.Context) error {
		if s.Addr() == nil {
			return errors.New("gRPC server not listening yet")
		}
		return nil
	}}
}
