// Command order-api is the entry point of the order pipeline: POST /v1/orders checks an order,
// has the validator price it over gRPC, publishes one OrderPlaced event to Kafka and to
// RabbitMQ, and answers 202 once both brokers confirmed it; Idempotency-Keys are recorded in
// PostgreSQL. See README.md.
package main

import (
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/events"
	"github.com/backend-prep/backend-prep/services/order-api/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatorclient"
)

func main() {
	platform.Run[config.Config](config.ServiceName, modules())
}

// modules is order-api's part of the application; the platform adds config, logging and the
// admin server. The graph test builds the same modules.
func modules() fx.Option {
	return fx.Options(
		config.Module,
		httpserver.Module,
		kafka.Module,
		rabbitmq.Module,
		validatorclient.Module,
		idempotency.Module,
		events.Module,
		orders.Module,
		httpapi.Module,
	)
}
