// Command notifier consumes OrderPlaced events from RabbitMQ and notifies each customer once per
// order, retrying transient failures with a delay and parking what cannot be processed in a
// dead-letter queue. See README.md.
package main

import (
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/config"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// modules is the notifier's part of the graph; the platform adds config, logger and admin server.
var modules = fx.Options(
	config.Module,   // Config → rabbitmq.Config, consume.Settings, notify.Settings
	rabbitmq.Module, // connection (declares the topology) and publisher
	notify.Module,   // sender, recent-notification store, notifier
	consume.Module,  // topology, handler chain, consumer, readiness checks
	httpapi.Module,  // GET /v1/notifications/{order_id} on the admin port
)

func main() {
	platform.Run[config.Config]("notifier", modules)
}
