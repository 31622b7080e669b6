package kafka_test

import (
	"context"
	"time"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"go.uber.org/zap"
)

// A consumer whose state is a function of the log: every partition it gains is read again from
// its beginning, while the offsets it finishes are still committed, so the group's lag shows how
// far the rebuild has come.
func ExampleConsumer_rebuildFromTheBeginning() {
	ctx := context.Background()
	counts := map[int32]int{} // only touched on the consumer's goroutine

	c, err := kafka.NewConsumer(kafka.DefaultConfig(), kafka.ConsumerOptions{
		GroupID: "analytics",
		Topics:  []string{"orders.v1"},
		Handler: func(_ context.Context, msg *kafka.Message) error {
			counts[msg.Partition]++
			return nil
		},
		OnAssigned: func(_ context.Context, parts []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
			for _, tp := range parts {
				counts[tp.Partition] = 0
			}
			return kafka.StartAll(parts, kafka.OffsetBeginning), nil
		},
		OnRevoked: func(_ context.Context, parts []kafka.TopicPartition) {
			for _, tp := range parts {
				delete(counts, tp.Partition)
			}
		},
	}, zap.NewNop())
	if err != nil {
		return
	}
	if err := c.Start(ctx); err != nil {
		return
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = c.Stop(stopCtx)
}

// Publishing waits for the acknowledgement of all in-sync replicas, or the caller's deadline.
func ExampleProducer_Publish() {
	p, err := kafka.NewProducer(kafka.DefaultConfig(), zap.NewNop())
	if err != nil {
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.Publish(ctx, kafka.Message{
		Topic:   "orders.v1",
		Key:     []byte("order-42"),
		Value:   []byte(`{"order_id":"order-42"}`),
		Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/json")}},
	})
}
