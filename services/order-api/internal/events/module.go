package events

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// Module provides the Kafka and the RabbitMQ publisher as orders.Publishers, declares the topic
// (at start, after the producer reached a broker) and the exchange (with the connection's
// topology), and registers both brokers as readiness checks. It needs kafka.Module and
// rabbitmq.Module in the graph.
var Module = fx.Module("events",
	fx.Provide(
		NewMetrics,
		orders.AsPublisher(newKafkaPublisher),
		orders.AsPublisher(newRabbitMQPublisher),
		// The exchange's name comes from the configuration, so it joins the connection's
		// topology through a constructor rather than rabbitmq.ProvideTopology's fixed value.
		fx.Annotate(
			func(c config.Config) rabbitmq.Topology { return Exchange(c.RabbitMQExchange) },
			fx.ResultTags(fmt.Sprintf("group:%q", rabbitmq.TopologyGroup)),
		),
		admin.AsCheck(func(p *kafka.Producer) admin.Check {
			return admin.Check{Name: "kafka", Check: p.Ready}
		}),
		admin.AsCheck(func(p *rabbitmq.Publisher) admin.Check {
			return admin.Check{Name: "rabbitmq", Check: p.Ready}
		}),
	),
)

// newKafkaPublisher declares the topic when the application starts. kafka.Module's start hook,
// which waits for a broker, runs first: this constructor depends on the producer it starts.
func newKafkaPublisher(lc fx.Lifecycle, cfg config.Config, producer *kafka.Producer, m *Metrics) *KafkaPublisher {
	spec := Topic(cfg.KafkaTopic, cfg.KafkaTopicPartitions, cfg.KafkaTopicReplication)
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, cfg.Kafka.RequestTimeout)
		defer cancel()
		if err := producer.Admin().EnsureTopic(ctx, spec); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		return nil
	}))
	return NewKafkaPublisher(producer, cfg.KafkaTopic, m)
}

func newRabbitMQPublisher(cfg config.Config, publisher *rabbitmq.Publisher, m *Metrics) *RabbitMQPublisher {
	return NewRabbitMQPublisher(publisher, cfg.RabbitMQExchange, m)
}
