// Command producer writes messages to a Kafka topic: the learning path's `kafka-python` producer
// in Go, with what real code adds — it waits for every message to be acknowledged by the
// broker (acks=all), within a deadline, and shows where each one landed.
//
//	go run ./labs/examples/kafka/producer                           # "Hello Kafka!" to topic hello
//	go run ./labs/examples/kafka/producer --count 6                 # keys key-1..key-6: watch the partitions
//	go run ./labs/examples/kafka/producer --count 3 --key same      # one key, one partition, in order
//
// The topic is created first when it does not exist, with --partitions partitions. A message's
// key decides its partition (the same key always lands on the same partition, so its messages
// stay in order); the broker gives it the next offset of that partition. order-api produces
// every order this way, keyed by order_id: libs/kafka/producer.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run() error {
	bootstrap := flag.String("bootstrap", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	topic := flag.String("topic", "hello", "topic to write to")
	partitions := flag.Int("partitions", 3, "partitions of the topic, if it has to be created")
	key := flag.String("key", "", "key of every message; empty: key-1, key-2, ...")
	body := flag.String("body", "Hello Kafka!", "message value")
	count := flag.Int("count", 1, "number of messages")
	timeout := flag.Duration("timeout", 15*time.Second, "deadline for the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	if err := ensureTopic(ctx, *bootstrap, *topic, *partitions); err != nil {
		return err
	}

	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": *bootstrap,
		// Acknowledged only when every in-sync replica has the message; idempotence lets the
		// client retry without writing duplicates.
		"acks":               "all",
		"enable.idempotence": true,
		// The partitioner of the Java client and of order-api: a key lands on the same
		// partition whichever of them wrote it.
		"partitioner": "murmur2_random",
	})
	if err != nil {
		return fmt.Errorf("create producer: %w", err)
	}
	defer p.Close()

	for i := 1; i <= *count; i++ {
		k := *key
		if k == "" {
			k = fmt.Sprintf("key-%d", i)
		}
		value := *body
		if *count > 1 {
			value = fmt.Sprintf("%s #%d", *body, i)
		}
		m, err := produce(ctx, p, *topic, k, value)
		if err != nil {
			return err
		}
		fmt.Printf("sent %q with key %s: partition %d, offset %d\n", value, k, m.TopicPartition.Partition, m.TopicPartition.Offset)
	}
	return nil
}

// produce sends one message and waits for its delivery report: the broker's acknowledgement,
// with the partition and offset the message got.
func produce(ctx context.Context, p *kafka.Producer, topic, key, value string) (*kafka.Message, error) {
	delivered := make(chan kafka.Event, 1)
	err := p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(key),
		Value:          []byte(value),
	}, delivered)
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	select {
	case <-ctx.Done():
		// The producer keeps retrying in the background until Close; the message may still
		// arrive, but nobody will know.
		return nil, fmt.Errorf("no acknowledgement in time: %w", ctx.Err())
	case e := <-delivered:
		m, ok := e.(*kafka.Message)
		if !ok {
			return nil, fmt.Errorf("unexpected delivery event: %v", e)
		}
		if m.TopicPartition.Error != nil {
			return nil, fmt.Errorf("delivery failed: %w", m.TopicPartition.Error)
		}
		return m, nil
	}
}

// ensureTopic creates the topic unless it exists. Brokers can create topics on first use
// (auto.create.topics.enable), but then the broker's defaults decide the partition count.
func ensureTopic(ctx context.Context, bootstrap, topic string, partitions int) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("create admin client: %w", err)
	}
	defer admin.Close()
	results, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: -1, // the broker's default: 1 on a single broker
	}}, kafka.SetAdminOperationTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	switch err := results[0].Error; {
	case err.Code() == kafka.ErrNoError:
		fmt.Printf("topic %s: created with %d partitions\n", topic, partitions)
	case err.Code() == kafka.ErrTopicAlreadyExists:
		fmt.Printf("topic %s: exists\n", topic)
	default:
		return fmt.Errorf("create topic %s: %w", topic, errors.New(err.String()))
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
