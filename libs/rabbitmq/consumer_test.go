package rabbitmq_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestUnackedMessageIsRedeliveredToAnotherConsumer(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	setup := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, setup, url, topo)

	// The first consumer takes the message and dies (its connection closes) mid-handler.
	dying, err := rabbitmq.NewConnection(testConfig(url), testLogger(t))
	require.NoError(t, err)
	require.NoError(t, dying.Start(publishCtx(t)))
	t.Cleanup(func() { _ = dying.Close(context.Background()) })
	taken := make(chan rabbitmq.Delivery, 1)
	release := make(chan struct{})
	first := startConsumer(t, dying, rabbitmq.ConsumerConfig{Queue: queue}, func(_ context.Context, d rabbitmq.Delivery) error {
		taken <- d
		<-release
		return nil
	})
	t.Cleanup(func() { close(release) })
	require.NoError(t, newPublisher(t, setup).Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "m-1"}))
	d := receive(t, taken, 10*time.Second)
	require.False(t, d.Redelivered)

	require.NoError(t, dying.Close(publishCtx(t)))
	require.Eventually(t, func() bool { return first.Ready(context.Background()) != nil }, 5*time.Second, 20*time.Millisecond)

	handler, deliveries := collect(1)
	startConsumer(t, setup, rabbitmq.ConsumerConfig{Queue: queue}, handler)
	again := receive(t, deliveries, 10*time.Second)
	assert.Equal(t, "m-1", again.MessageID)
	assert.True(t, again.Redelivered)
}

func TestFailedMessagesAreDeadLettered(t *testing.T) {
	tests := []struct {
		name    string
		handler rabbitmq.Handler
	}{
		{"handler error", func(context.Context, rabbitmq.Delivery) error { return errors.New("malformed order") }},
		{"handler panic", func(context.Context, rabbitmq.Delivery) error { panic("bug") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := brokertest.RabbitMQURL(t)
			conn := startConnection(t, testConfig(url))
			exchange := brokertest.UniqueName(t, "ex")
			dlx := brokertest.UniqueName(t, "dlx")
			queue := brokertest.UniqueName(t, "q")
			dlq := brokertest.UniqueName(t, "dlq")
			declare(t, conn, url, rabbitmq.Topology{
				Exchanges: []rabbitmq.Exchange{
					{Name: exchange, Kind: rabbitmq.ExchangeTopic, Durable: true},
					{Name: dlx, Kind: rabbitmq.ExchangeDirect, Durable: true},
				},
				Queues: []rabbitmq.Queue{
					{Name: queue, Type: rabbitmq.QueueQuorum, Durable: true, DeadLetterExchange: dlx, DeadLetterRoutingKey: "dead"},
					{Name: dlq, Type: rabbitmq.QueueQuorum, Durable: true},
				},
				Bindings: []rabbitmq.Binding{
					{Queue: queue, Exchange: exchange, RoutingKey: "order.placed"},
					{Queue: dlq, Exchange: dlx, RoutingKey: "dead"},
				},
			})
			var calls atomic.Int32
			startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, func(ctx context.Context, d rabbitmq.Delivery) error {
				calls.Add(1)
				return tt.handler(ctx, d)
			})
			dead, deadLetters := collect(1)
			startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: dlq}, dead)

			require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "order.placed",
				rabbitmq.Message{MessageID: "o-1", Body: []byte("{")}))

			d := receive(t, deadLetters, 10*time.Second)
			assert.Equal(t, "o-1", d.MessageID)
			assert.Equal(t, []byte("{"), d.Body)
			require.NotEmpty(t, d.Deaths)
			assert.Equal(t, queue, d.Deaths[0].Queue)
			assert.Equal(t, "rejected", d.Deaths[0].Reason)
			assert.Equal(t, int64(1), d.DeathCount(queue))
			assert.Equal(t, int32(1), calls.Load(), "rejected without requeue: handled once")
		})
	}
}

func TestRequeuedMessageComesBackRedelivered(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	seen := make(chan rabbitmq.Delivery, 2)
	var calls atomic.Int32
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, func(_ context.Context, d rabbitmq.Delivery) error {
		seen <- d
		if calls.Add(1) == 1 {
			return rabbitmq.Requeue(errors.New("downstream unavailable"))
		}
		return nil
	})
	require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "m-1"}))

	first := receive(t, seen, 10*time.Second)
	second := receive(t, seen, 10*time.Second)
	assert.False(t, first.Redelivered)
	assert.Equal(t, "m-1", second.MessageID)
	assert.True(t, second.Redelivered)
	assert.Equal(t, int64(1), second.DeliveryCount, "a quorum queue counts the failed delivery")
	require.Eventually(t, func() bool { return queueDepth(t, url, queue) == 0 }, 5*time.Second, 50*time.Millisecond)
}

func TestPrefetchBoundsTheDeliveriesInFlight(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	pub := newPublisher(t, conn)
	for range 10 {
		require.NoError(t, pub.Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))
	}

	var inFlight atomic.Int32
	release := make(chan struct{})
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue, Prefetch: 3, Workers: 10}, func(context.Context, rabbitmq.Delivery) error {
		inFlight.Add(1)
		<-release
		return nil
	})
	require.Eventually(t, func() bool { return inFlight.Load() == 3 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 7, queueDepth(t, url, queue), "the broker holds back what exceeds the prefetch")
	assert.Equal(t, int32(3), inFlight.Load())

	close(release)
	require.Eventually(t, func() bool { return queueDepth(t, url, queue) == 0 }, 5*time.Second, 50*time.Millisecond)
}

func TestStopFinishesAndAcksInFlightDeliveries(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var handlerCtxErr atomic.Value
	c, err := rabbitmq.NewConsumer(conn, rabbitmq.ConsumerConfig{Queue: queue}, func(ctx context.Context, _ rabbitmq.Delivery) error {
		started <- struct{}{}
		<-release
		handlerCtxErr.Store(ctx.Err() != nil)
		return nil
	}, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, c.Start(publishCtx(t)))
	require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(publishCtx(t)) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the handler finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-stopped)

	assert.Equal(t, false, handlerCtxErr.Load(), "the handler's context stays alive while Stop waits")
	assert.Equal(t, 0, queueDepth(t, url, queue), "the in-flight delivery was acknowledged")
	assert.ErrorIs(t, c.Ready(context.Background()), rabbitmq.ErrClosed)
}

func TestStopThatRunsOutOfTimeReturnsUnfinishedDeliveries(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)

	started := make(chan struct{}, 1)
	c, err := rabbitmq.NewConsumer(conn, rabbitmq.ConsumerConfig{Queue: queue}, func(ctx context.Context, _ rabbitmq.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		return rabbitmq.Requeue(ctx.Err())
	}, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, c.Start(publishCtx(t)))
	require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "k", rabbitmq.Message{}))
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Stop(ctx), context.DeadlineExceeded)
	require.Eventually(t, func() bool { return queueDepth(t, url, queue) == 1 }, 5*time.Second, 50*time.Millisecond,
		"the unfinished delivery is back in the queue")
}

func TestConsumerSubscribesAgainAfterTheConnectionDrops(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	conn := startConnection(t, testConfig(proxied))
	topo, exchange, queue := workQueue(t, "k")
	declare(t, conn, url, topo)
	handler, deliveries := collect(1)
	c := startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, handler)

	proxy.Cut()
	require.Eventually(t, func() bool { return c.Ready(context.Background()) == nil && conn.Ready(context.Background()) == nil },
		10*time.Second, 20*time.Millisecond)
	// Published on a connection of its own, so only the consumer's recovery is under test.
	other := startConnection(t, testConfig(url))
	require.NoError(t, newPublisher(t, other).Publish(publishCtx(t), exchange, "k", rabbitmq.Message{MessageID: "after"}))
	assert.Equal(t, "after", receive(t, deliveries, 10*time.Second).MessageID)
}

func TestNewConsumerRejectsAnIncompleteConfig(t *testing.T) {
	conn, err := rabbitmq.NewConnection(testConfig("amqp://guest:guest@127.0.0.1:5672/"), testLogger(t))
	require.NoError(t, err)
	noop := func(context.Context, rabbitmq.Delivery) error { return nil }
	tests := []struct {
		name    string
		cfg     rabbitmq.ConsumerConfig
		handler rabbitmq.Handler
	}{
		{"no queue", rabbitmq.ConsumerConfig{}, noop},
		{"no handler", rabbitmq.ConsumerConfig{Queue: "q"}, nil},
		{"negative prefetch", rabbitmq.ConsumerConfig{Queue: "q", Prefetch: -1}, noop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rabbitmq.NewConsumer(conn, tt.cfg, tt.handler, testLogger(t))
			assert.Error(t, err)
		})
	}
}
