// Command consumer reads a Kafka topic as a member of a consumer group and prints every
// message with its partition and offset: the learning path's `kafka-python` consumer in Go.
//
//	go run ./labs/examples/kafka/consumer                                 # topic hello, group hello-readers
//	go run ./labs/examples/kafka/consumer --max 3 --timeout 30s
//	go run ./labs/examples/kafka/consumer --topic orders.v1 --group my-dashboard
//
// Run two with the same --group and they share the topic's partitions (watch the "assigned"
// lines); run one with another --group and it gets every message again — each group has its own
// committed offsets. A group that never committed starts at the oldest message. analytics is this
// program grown up: services/analytics, on libs/kafka/consumer.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	bootstrap := flag.String("bootstrap", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	topic := flag.String("topic", "hello", "topic to read")
	group := flag.String("group", "hello-readers", "consumer group; members of one group share the partitions")
	maxMessages := flag.Int("max", 0, "stop after this many messages; 0: no limit")
	timeout := flag.Duration("timeout", 0, "stop after this long; 0: run until Ctrl-C")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": *bootstrap,
		"group.id":          *group,
		// Where a group without a committed offset starts: the oldest message.
		"auto.offset.reset": "earliest",
		// Offsets are committed in the background, but only those stored after a message was
		// handled (StoreMessage below): a crash replays what was not handled, never skips it.
		"enable.auto.commit":       true,
		"enable.auto.offset.store": false,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	// Close commits the stored offsets and leaves the group, so its partitions move to the
	// other members at once instead of after a session timeout.
	defer func() {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "consumer: close:", err)
		}
	}()

	// The group coordinator calls back when this member gains or loses partitions.
	rebalanced := func(_ *kafka.Consumer, ev kafka.Event) error {
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			fmt.Printf("assigned partitions %v\n", partitionNumbers(e.Partitions))
		case kafka.RevokedPartitions:
			fmt.Printf("revoked partitions %v\n", partitionNumbers(e.Partitions))
		}
		return nil
	}
	if err := c.SubscribeTopics([]string{*topic}, rebalanced); err != nil {
		return fmt.Errorf("subscribe to %s: %w", *topic, err)
	}
	fmt.Printf("waiting for messages on topic %s as group %s (Ctrl-C to stop)\n", *topic, *group)

	received := 0
	for *maxMessages == 0 || received < *maxMessages {
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && *maxMessages > 0 {
				return fmt.Errorf("--timeout passed after %d of %d message(s)", received, *maxMessages)
			}
			break
		}
		// Poll waits at most 200ms, so the loop notices Ctrl-C and the deadline quickly.
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			received++
			fmt.Printf("received %q with key %s: partition %d, offset %d\n",
				e.Value, e.Key, e.TopicPartition.Partition, e.TopicPartition.Offset)
			if _, err := c.StoreMessage(e); err != nil {
				return fmt.Errorf("store offset: %w", err)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("consumer failed: %w", e)
			}
			fmt.Fprintln(os.Stderr, "consumer:", e) // transient: the client retries by itself
		}
	}
	fmt.Printf("stopping after %d message(s)\n", received)
	return nil
}

func partitionNumbers(tps []kafka.TopicPartition) []int32 {
	n := make([]int32, len(tps))
	for i, tp := range tps {
		n[i] = tp.Partition
	}
	return n
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
