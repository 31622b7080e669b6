// Command orderlog writes OrderPlaced events straight into a Kafka topic, each a distinct order,
// encoded as order-api encodes them (protojson body, order_id as the key, the content-type,
// event-type and event-id headers): a big log in seconds, where placing the orders through
// order-api would take minutes. Point an analytics at the topic and watch it rebuild its stats
// from the beginning of the log; `make bench` times exactly that for a million orders.
//
//	go run ./labs/orderlog --topic big.orders --count 1000000
//	KAFKA_TOPIC=big.orders ANALYTICS_GROUP_ID=big HTTP_ADDR=:8082 ADMIN_ADDR=:9105 go run ./services/analytics
//	go run ./labs/orderlog --topic big.orders --delete
//
// The topic is created when it does not exist, with --partitions partitions. Every event is
// acknowledged by all in-sync replicas (acks=all, idempotent) before the command reports success.
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
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orderlog:", err)
		os.Exit(1)
	}
}

func run() error {
	bootstrap := flag.String("bootstrap", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	topic := flag.String("topic", "", "topic to write to (required)")
	partitions := flag.Int("partitions", 3, "partitions of the topic, if it has to be created")
	count := flag.Int("count", 100000, "events to write")
	del := flag.Bool("delete", false, "delete the topic instead, and exit")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	case *topic == "":
		return errors.New("--topic is required")
	case *count < 1 || *partitions < 1:
		return errors.New("--count and --partitions must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": *bootstrap})
	if err != nil {
		return err
	}
	defer admin.Close()
	if *del {
		return deleteTopic(ctx, admin, *topic)
	}
	if err := createTopic(ctx, admin, *topic, *partitions); err != nil {
		return err
	}
	start := time.Now()
	if err := produce(ctx, *bootstrap, *topic, *count); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("wrote %d events to %s in %s (%.0f/s)\n", *count, *topic, elapsed.Round(time.Millisecond), float64(*count)/elapsed.Seconds())
	return nil
}

func createTopic(ctx context.Context, admin *kafka.AdminClient, topic string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if code := res[0].Error.Code(); code != kafka.ErrNoError && code != kafka.ErrTopicAlreadyExists {
		return fmt.Errorf("create topic %s: %w", topic, res[0].Error)
	}
	return nil
}

func deleteTopic(ctx context.Context, admin *kafka.AdminClient, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	if code := res[0].Error.Code(); code != kafka.ErrNoError && code != kafka.ErrUnknownTopicOrPart {
		return fmt.Errorf("delete topic %s: %w", topic, res[0].Error)
	}
	return nil
}

// produce writes n events as fast as Kafka takes them, printing progress every 100,000, and
// returns once every one is acknowledged (or the first failed).
func produce(ctx context.Context, bootstrap, topic string, n int) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":         bootstrap,
		"enable.idempotence":        true,
		"acks":                      "all",
		"linger.ms":                 20, // batches of many events: this writes a log, it answers no one
		"compression.type":          "lz4",
		"partitioner":               "murmur2_random", // as order-api: the partition follows the key
		"go.delivery.report.fields": "key",
	})
	if err != nil {
		return err
	}
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() { // reads the delivery reports until Close closes the channel
		defer close(done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				select {
				case failed <- fmt.Errorf("order %s: %w", m.Key, m.TopicPartition.Error):
				default:
				}
			}
		}
	}()
	err = write(ctx, p, topic, n, failed)
	p.Close()
	<-done // every delivery report is read: a failure among the last ones is in failed now
	if err == nil {
		select {
		case err = <-failed:
		default:
		}
	}
	return err
}

func write(ctx context.Context, p *kafka.Producer, topic string, n int, failed <-chan error) error {
	placedAt := timestamppb.New(time.Now().UTC())
	for i := range n {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d events: %w", i, err)
		}
		id, err := uuid.NewV7() // time-ordered, as order-api's order_id
		if err != nil {
			return err
		}
		body, err := ordersv1.MarshalOrderPlaced(&ordersv1.OrderPlaced{
			OrderId: id.String(), CustomerId: fmt.Sprintf("c-%d", i%1000), Currency: "EUR", TotalCents: 3597, PlacedAt: placedAt,
			Items: []*ordersv1.PricedItem{
				{Sku: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
				{Sku: "ELEC-001", Quantity: 1, UnitPriceCents: 999, LineTotalCents: 999},
			},
		})
		if err != nil {
			return err
		}
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(id.String()),
			Value:          body,
			Headers: []kafka.Header{
				{Key: ordersv1.HeaderContentType, Value: []byte(ordersv1.ContentType)},
				{Key: ordersv1.HeaderEventType, Value: []byte(ordersv1.EventTypeOrderPlaced)},
				{Key: ordersv1.HeaderEventID, Value: []byte(uuid.NewString())},
			},
		}
		for {
			err := p.Produce(msg, nil)
			var kerr kafka.Error
			if err == nil {
				break
			}
			if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
				return err
			}
			p.Flush(100) // librdkafka's local queue is full: let it send some first
		}
		if (i+1)%100000 == 0 {
			fmt.Fprintf(os.Stderr, "orderlog: %d events written\n", i+1)
		}
		select {
		case err := <-failed:
			return err
		default:
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for left := p.Len(); left > 0; left = p.Flush(1000) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%d events unacknowledged: %w", left, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d events still unacknowledged after 2 minutes", left)
		}
	}
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
