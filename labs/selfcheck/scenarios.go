package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	amqp "github.com/rabbitmq/amqp091-go"
)

// orderPlacedKey is the routing key of OrderPlaced events, which the notifier binds its queue with.
const orderPlacedKey = "order.placed"

// scenarios are the incidents of `lab`, in the order of the steps they belong to. Those of step
// 1 are a service and its Dockerfile to repair (scenarios_docker.go); those of step 2 patch the
// cluster (scenarios_cluster.go); the system ones inject their fault through the brokers' own
// protocols, with the addresses the self-checks use, against make run and the cluster alike;
// the others are programs to repair (scenarios_code.go and the files next to it).
var scenarios = []scenario{
	publishedPort,
	stopSignal,
	oomLimit,
	runsAsRoot,
	{
		name:  "rabbitmq-unbound",
		step:  3,
		needs: "make run or make up",
		title: "orders are refused, and every service says it is ready",
		symptom: "POST /v1/orders answers 503 for every order, although order-api, the validator, the notifier " +
			"and both brokers are up and their /readyz answer 200.",
		hints: []string{
			"Read order-api's log line for one refused order: which broker refused what?",
			"order-api publishes every order with the mandatory flag. What does RabbitMQ do with a mandatory message that no queue receives?",
			"A topic exchange delivers a message to the queues bound to it with a matching key. List the bindings of the exchange orders (`rabbitmqctl list_bindings` where the broker runs, or the management UI).",
			"The notifier declares its queue and binds it to orders when it starts: restart the notifier (make run: Ctrl-C, then make run; the cluster: kubectl rollout restart deployment/notifier).",
		},
		inject:  unbindNotifierQueue,
		restore: bindNotifierQueue,
		checks: func(cfg config) ([]check, func()) {
			accept := check{
				name: "an order posted to order-api is accepted (202)",
				run:  orderAccepted(cfg),
				hint: "make lab ARGS='hint rabbitmq-unbound' gives one hint at a time",
			}
			steps, release := rabbitmqChecks(cfg)
			return append([]check{accept}, steps...), release
		},
	},
	ackEarly,
	{
		name:  "kafka-retention",
		step:  4,
		needs: "make run or make up",
		title: "analytics forgets orders when it restarts",
		symptom: "After analytics restarts (or a new replica joins), /v1/stats counts only the orders of the " +
			"last minute or two; every order was accepted and counted before.",
		hints: []string{
			"analytics rebuilds its stats by reading orders.v1 from the beginning. What if the beginning moved?",
			"Compare each partition's end offset with the number of records still in it: go run ./labs/examples/kafka/topics --topic orders.v1, and its configs on the last line.",
			"Kafka deletes whole log segments older than retention.ms. What is it on orders.v1, and how large may a segment grow in time (segment.ms)?",
			"Remove the topic's own retention.ms and segment.ms: go run ./labs/examples/kafka/topics --topic orders.v1 --unset retention.ms --unset segment.ms (what was already deleted stays deleted).",
		},
		inject:  shortenRetention,
		restore: unsetTopicConfigs("retention.ms", "segment.ms"),
		checks: func(cfg config) ([]check, func()) {
			keeps := check{
				name: "topic " + ordersTopic + " keeps its records for at least 7 days",
				run:  retentionAtLeast(cfg, 7*24*time.Hour),
				hint: "make lab ARGS='hint kafka-retention' gives one hint at a time",
			}
			steps, release := kafkaChecks(cfg)
			return append([]check{keeps}, steps...), release
		},
	},
	commitEarly,
	noDeadline,
	retryStorm,
	retryDuplicates,
	poisonMessage,
}

// orderAccepted posts an order and fails with what order-api answered unless it is a 202.
func orderAccepted(cfg config) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		o, err := placeOrder(ctx, cfg.orderAPI, newIdempotencyKey())
		if err != nil {
			return "", err
		}
		return "order " + o.OrderID, nil
	}
}

// withAMQP runs op on a channel of a connection of its own, within ctx.
func withAMQP(ctx context.Context, cfg config, op func(ch *amqp.Channel) error) error {
	conn, err := dialAMQP(ctx, cfg.rabbitmq)
	if err != nil {
		return err
	}
	r := &rabbitmqRun{cfg: cfg, conn: conn}
	defer r.close()
	return r.onChannel(ctx, op)
}

func unbindNotifierQueue(ctx context.Context, cfg config) error {
	return withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclarePassive(notifierQueue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("queue %s: %w (%s)", notifierQueue, err, hintNotifier)
		}
		return ch.QueueUnbind(notifierQueue, orderPlacedKey, ordersExchange, nil)
	})
}

func bindNotifierQueue(ctx context.Context, cfg config) error {
	return withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
		return ch.QueueBind(notifierQueue, orderPlacedKey, ordersExchange, false, nil)
	})
}

// newAdmin returns a Kafka admin client; the caller closes it.
func newAdmin(cfg config) (*kafka.AdminClient, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers": cfg.kafka,
		"client.id":         "lab",
		"log_level":         2,
	})
	if err != nil {
		return nil, fmt.Errorf("create a Kafka admin client: %w", err)
	}
	return admin, nil
}

// requireTopic fails unless the orders topic exists.
func requireTopic(ctx context.Context, admin *kafka.AdminClient) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{ordersTopic}),
		kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return fmt.Errorf("describe topic %s: %w (%s)", ordersTopic, err, hintKafka)
	}
	if e := res.TopicDescriptions[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("describe topic %s: %w (order-api creates it when it starts: %s)", ordersTopic, e, hintOrderAPI)
	}
	return nil
}

// topicConfig returns the effective value of one config of the orders topic, whatever sets it.
func topicConfig(ctx context.Context, admin *kafka.AdminClient, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: ordersTopic}},
		kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return "", fmt.Errorf("configs of %s: %w", ordersTopic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return "", fmt.Errorf("configs of %s: %w", ordersTopic, e)
	}
	c, ok := res[0].Config[name]
	if !ok {
		return "", fmt.Errorf("topic %s has no config %s", ordersTopic, name)
	}
	return c.Value, nil
}

// alterTopic changes configs of the orders topic incrementally: the others keep their values.
func alterTopic(ctx context.Context, admin *kafka.AdminClient, entries []kafka.ConfigEntry) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: ordersTopic, Config: entries}},
		kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return fmt.Errorf("change configs of %s: %w", ordersTopic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("change configs of %s: %w", ordersTopic, e)
	}
	return nil
}

func set(name, value string) kafka.ConfigEntry {
	return kafka.ConfigEntry{Name: name, Value: value, IncrementalOperation: kafka.AlterConfigOpTypeSet}
}

// withAdmin runs op with an admin client of its own.
func withAdmin(cfg config, op func(admin *kafka.AdminClient) error) error {
	admin, err := newAdmin(cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	return op(admin)
}

// shortenRetention makes Kafka delete orders.v1's records after a minute: segments roll every
// minute, and closed segments older than a minute go.
func shortenRetention(ctx context.Context, cfg config) error {
	return withAdmin(cfg, func(admin *kafka.AdminClient) error {
		if err := requireTopic(ctx, admin); err != nil {
			return err
		}
		return alterTopic(ctx, admin, []kafka.ConfigEntry{set("retention.ms", "60000"), set("segment.ms", "60000")})
	})
}

// unsetTopicConfigs removes configs set on the orders topic: the broker's defaults apply again.
func unsetTopicConfigs(names ...string) func(ctx context.Context, cfg config) error {
	return func(ctx context.Context, cfg config) error {
		return withAdmin(cfg, func(admin *kafka.AdminClient) error {
			entries := make([]kafka.ConfigEntry, len(names))
			for i, n := range names {
				entries[i] = kafka.ConfigEntry{Name: n, IncrementalOperation: kafka.AlterConfigOpTypeDelete}
			}
			return alterTopic(ctx, admin, entries)
		})
	}
}

// retentionAtLeast fails while the topic deletes records sooner than least (-1: never).
func retentionAtLeast(cfg config, least time.Duration) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var detail string
		err := withAdmin(cfg, func(admin *kafka.AdminClient) error {
			v, err := topicConfig(ctx, admin, "retention.ms")
			if err != nil {
				return err
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("retention.ms is %q, not a number", v)
			}
			if ms >= 0 && time.Duration(ms)*time.Millisecond < least {
				return fmt.Errorf("retention.ms is %d: Kafka deletes records after %s, "+
					"and analytics rebuilds its stats from what is left", ms, time.Duration(ms)*time.Millisecond)
			}
			detail = "retention.ms " + v
			if ms < 0 {
				detail += " (kept forever)"
			}
			return nil
		})
		return detail, err
	}
}
