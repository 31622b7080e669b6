// Command validator serves the orders.v1.OrderValidation gRPC API: it checks orders against its
// product catalog and rules and prices them in integer cents, and streams the catalog. See
// README.md for its configuration and how to try it with grpcurl.
package main

import (
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
	"github.com/backend-prep/backend-prep/services/validator/internal/config"
	"github.com/backend-prep/backend-prep/services/validator/internal/grpcapi"
	"github.com/backend-prep/backend-prep/services/validator/internal/validation"
)

func main() {
	platform.Run[config.Config]("validator", modules())
}

// modules is the validator's part of the graph; the platform adds configuration, logging and
// the admin server. The graph test builds the same modules.
func modules() fx.Option {
	return fx.Options(
		catalog.Module,
		validation.Module,
		grpcapi.Module,
		grpcserver.Module,
	)
}
