// Command analytics consumes the OrderPlaced events of the orders.v1 Kafka topic as a member of
// the consumer group "analytics" and serves the totals of the distinct orders in the partitions
// it owns on GET /v1/stats. Its stats are rebuilt from the log whenever it gains a partition.
package main

import (
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/config"
	"github.com/backend-prep/backend-prep/services/analytics/internal/consume"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

func main() {
	platform.Run[config.Config]("analytics", service())
}

// service is the graph on top of the platform; the tests build the same one.
func service() fx.Option {
	return fx.Options(
		fx.Provide(config.Config.HTTPServer, config.Config.Kafka, config.Config.Consume),
		httpserver.Module,
		stats.Module,
		consume.Module,
		httpapi.Module,
	)
}
