package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestPublishedMessageIsConfirmedAndConsumedIntact(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "order.*")
	declare(t, conn, url, topo)
	handler, deliveries := collect(1)
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, handler)

	sentAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	msg := rabbitmq.Message{
		Body:          []byte(`{"order_id":"o-1","total_cents":1998}`),
		ContentType:   "application/json",
		MessageID:     "o-1",
		CorrelationID: "req-7",
		Type:          "orders.v1.OrderPlaced",
		AppID:         "order-api",
		Timestamp:     sentAt,
		Headers: map[string]any{
			"event-type":  "orders.v1.OrderPlaced",
			"event-id":    "e-1",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
	require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "order.placed", msg))

	d := receive(t, deliveries, 10*time.Second)
	assert.Equal(t, msg.Body, d.Body)
	assert.Equal(t, msg.ContentType, d.ContentType)
	assert.Equal(t, msg.MessageID, d.MessageID)
	assert.Equal(t, msg.CorrelationID, d.CorrelationID)
	assert.Equal(t, msg.Type, d.Type)
	assert.Equal(t, msg.AppID, d.AppID)
	assert.True(t, d.Timestamp.Equal(sentAt), "timestamp %s", d.Timestamp)
	for k, v := range msg.Headers {
		assert.Equal(t, v, d.Headers[k], "header %s", k)
	}
	assert.True(t, d.Persistent, "published messages are persistent")
	assert.False(t, d.Redelivered)
	assert.Equal(t, exchange, d.Exchange)
	assert.Equal(t, "order.placed", d.RoutingKey)
}

func TestUnroutablePublishFailsWithoutPoisoningTheChannel(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	cfg := testConfig(url)
	cfg.PublisherChannels = 1 // every publish below goes through the same channel
	conn := startConnection(t, cfg)
	topo, exchange, queue := workQueue(t, "order.placed")
	declare(t, conn, url, topo)
	handler, deliveries := collect(10)
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, handler)
	pub := newPublisher(t, conn)

	for i := range 3 {
		err := pub.Publish(publishCtx(t), exchange, "order.nowhere", rabbitmq.Message{MessageID: fmt.Sprintf("lost-%d", i)})
		require.ErrorIs(t, err, rabbitmq.ErrUnroutable)
		var returned *rabbitmq.UnroutableError
		require.ErrorAs(t, err, &returned)
		assert.Equal(t, uint16(amqp.NoRoute), returned.ReplyCode)
		assert.Equal(t, exchange, returned.Exchange)
		assert.Equal(t, "order.nowhere", returned.RoutingKey)
	}

	require.NoError(t, pub.Publish(publishCtx(t), exchange, "order.placed", rabbitmq.Message{MessageID: "routed"}))
	assert.Equal(t, "routed", receive(t, deliveries, 10*time.Second).MessageID)
	select {
	case d := <-deliveries:
		t.Fatalf("an unroutable message was delivered: %q", d.MessageID)
	default:
	}
}

func TestPublishToAMissingExchangeFailsAndTheNextPublishWorks(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	cfg := testConfig(url)
	cfg.PublisherChannels = 1
	conn := startConnection(t, cfg)
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	handler, deliveries := collect(1)
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, handler)
	pub := newPublisher(t, conn)

	err := pub.Publish(publishCtx(t), brokertest.UniqueName(t, "missing"), "k", rabbitmq.Message{})
	require.ErrorIs(t, err, rabbitmq.ErrUnconfirmed)
	var amqpErr *amqp.Error
	require.ErrorAs(t, err, &amqpErr)
	assert.Equal(t, amqp.NotFound, amqpErr.Code)

	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "after"}))
	assert.Equal(t, "after", receive(t, deliveries, 10*time.Second).MessageID)
}

func TestConcurrentPublishesAreAllConfirmedAndDelivered(t *testing.T) {
	const publishers, perPublisher = 50, 20
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "order.placed")
	declare(t, conn, url, topo)

	var mu sync.Mutex
	seen := map[string]int{}
	all := make(chan struct{})
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue, Prefetch: 50}, func(_ context.Context, d rabbitmq.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		seen[d.MessageID]++
		if len(seen) == publishers*perPublisher {
			close(all)
		}
		return nil
	})
	pub := newPublisher(t, conn)

	start := time.Now()
	errs := make(chan error, publishers*perPublisher)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				errs <- pub.Publish(publishCtx(t), exchange, "order.placed",
					rabbitmq.Message{MessageID: fmt.Sprintf("%d-%d", p, i), Body: []byte("x")})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d confirmed publishes in %s", publishers*perPublisher, time.Since(start))

	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("consumed %d distinct messages of %d", len(seen), publishers*perPublisher)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		assert.Equal(t, 1, n, "message %s delivered %d times", id, n)
	}
}

func TestPublishWaitsForTheConnectionOnlyUntilItsContextEnds(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	conn := startConnection(t, testConfig(proxied))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	pub := newPublisher(t, conn)
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))

	proxy.Refuse(true)
	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := pub.Publish(ctx, exchange, "k", rabbitmq.Message{})
	require.ErrorIs(t, err, rabbitmq.ErrNotConnected)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	proxy.Refuse(false)
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}),
		"a publish waiting through the outage succeeds once the connection is back")
	assert.Equal(t, 2, queueDepth(t, url, queue), "only confirmed messages are in the queue")
}

func TestPublishRefusedByAFullQueueIsNacked(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	exchange := brokertest.UniqueName(t, "ex")
	queue := brokertest.UniqueName(t, "q")
	declare(t, conn, url, rabbitmq.Topology{
		Exchanges: []rabbitmq.Exchange{{Name: exchange, Kind: rabbitmq.ExchangeDirect, Durable: true}},
		Queues: []rabbitmq.Queue{{Name: queue, Durable: true,
			Args: map[string]any{"x-max-length": int64(1), "x-overflow": "reject-publish"}}},
		Bindings: []rabbitmq.Binding{{Queue: queue, Exchange: exchange, RoutingKey: "k"}},
	})
	pub := newPublisher(t, conn)

	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "fits"}))
	err := pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "overflows"})
	require.ErrorIs(t, err, rabbitmq.ErrNacked)
	assert.Equal(t, 1, queueDepth(t, url, queue))
}

func TestConnectionLossBeforeTheConfirmFailsThePublishAsUnconfirmed(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	cfg := testConfig(proxied)
	cfg.PublisherChannels = 1
	conn := startConnection(t, cfg)
	topo, exchange, _ := workQueue(t, "k")
	declare(t, conn, url, topo)
	pub := newPublisher(t, conn)
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}), "opens the only channel")

	proxy.Stall(true)
	result := make(chan error, 1)
	go func() { result <- pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}) }()
	require.Eventually(t, func() bool { return proxy.held.Load() > 0 }, 5*time.Second, 5*time.Millisecond,
		"the message left the client")
	proxy.Cut()
	proxy.Stall(false)

	select {
	case err := <-result:
		require.ErrorIs(t, err, rabbitmq.ErrUnconfirmed)
	case <-time.After(10 * time.Second):
		t.Fatal("publish did not fail after the connection dropped")
	}
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}), "publishing resumes after the reconnect")
}

func TestPublishAfterCloseFails(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	pub := rabbitmq.NewPublisher(conn, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, pub.Close(ctx))
	require.NoError(t, pub.Close(ctx), "Close is idempotent")

	err := pub.Publish(ctx, "amq.topic", "k", rabbitmq.Message{})
	assert.True(t, errors.Is(err, rabbitmq.ErrClosed), "got %v", err)
}

func TestPublishRejectsHeadersAMQPCannotCarry(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	err := newPublisher(t, conn).Publish(publishCtx(t), "amq.topic", "k",
		rabbitmq.Message{Headers: map[string]any{"bad": struct{}{}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "headers")
	assert.NoError(t, conn.Ready(context.Background()))
}

func TestDownIsKnownWhileTheConnectionIsLostAndClearsOnReconnect(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	cfg := testConfig(proxied)

	unstarted, err := rabbitmq.NewConnection(cfg, testLogger(t))
	require.NoError(t, err)
	assert.NoError(t, unstarted.Down(), "before Start nothing is known")

	conn := startConnection(t, cfg)
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	pub := newPublisher(t, conn)
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))
	require.NoError(t, pub.Down())

	proxy.Refuse(true)
	proxy.Cut()
	lost := time.Now()
	require.Eventually(t, func() bool { return pub.Down() != nil }, 5*time.Second, time.Millisecond)
	t.Logf("known down %s after the connection was cut", time.Since(lost).Round(time.Millisecond))
	assert.ErrorIs(t, pub.Down(), rabbitmq.ErrNotConnected)

	proxy.Refuse(false)
	back := time.Now()
	require.Eventually(t, func() bool { return pub.Down() == nil }, 10*time.Second, time.Millisecond)
	t.Logf("known up %s after the broker was reachable again", time.Since(back).Round(time.Millisecond))
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))
	assert.GreaterOrEqual(t, queueDepth(t, url, queue), 2)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Close(ctx))
	assert.ErrorIs(t, conn.Down(), rabbitmq.ErrClosed)
}
