package consume_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

const testDelay = 200 * time.Millisecond

// running is a notifier consuming from a topology of its own on the real broker.
type running struct {
	service
	settings consume.Settings
	conn     *rabbitmq.Connection
	pub      *rabbitmq.Publisher
}

// startNotifier declares a uniquely named topology, starts a consumer with the real handler
// chain and sender, and removes it all when the test ends.
func startNotifier(t *testing.T, sender notify.Sender, maxAttempts int) running {
	t.Helper()
	settings := consume.Settings{
		Exchange:    brokertest.UniqueName(t, "orders"),
		RoutingKey:  ordersv1.RoutingKey,
		Queue:       brokertest.UniqueName(t, "notifier"),
		RetryDelay:  testDelay,
		MaxAttempts: maxAttempts,
	}
	require.NoError(t, settings.Validate())
	log := zaptest.NewLogger(t)
	conn, err := rabbitmq.NewConnection(rabbitmq.Config{
		URL:               brokertest.RabbitMQURL(t),
		ConnectionName:    "notifier-test",
		DialTimeout:       5 * time.Second,
		Heartbeat:         5 * time.Second,
		OperationTimeout:  5 * time.Second,
		ReconnectMin:      50 * time.Millisecond,
		ReconnectMax:      time.Second,
		PublishTimeout:    5 * time.Second,
		PublisherChannels: 4,
		Prefetch:          8,
	}, log)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, conn.Close(ctx))
	})
	require.NoError(t, consume.DeclareTopology(ctx, conn, settings, log))
	t.Cleanup(func() { deleteTopology(t, conn, settings) })

	pub := rabbitmq.NewPublisher(conn, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, pub.Close(ctx))
	})

	svc := newService(t, sender)
	h := consume.NewHandler(settings, pub, svc.notifier, svc.store, svc.metrics, log)
	c, err := rabbitmq.NewConsumer(conn, rabbitmq.ConsumerConfig{Queue: settings.Queue}, h, log)
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, c.Stop(ctx))
	})
	return running{service: svc, settings: settings, conn: conn, pub: pub}
}

// deleteTopology removes what startNotifier declared; it runs after the consumer stopped.
func deleteTopology(t *testing.T, conn *rabbitmq.Connection, s consume.Settings) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Errorf("delete topology: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range []string{s.Queue, s.RetryQueue(), s.DeadLetterQueue()} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Errorf("delete queue %s: %v", q, err)
		}
	}
	for _, x := range []string{s.Exchange, s.RetryExchange(), s.DeadLetterExchange()} {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", x, err)
		}
	}
}

func (r running) publish(t *testing.T, msg rabbitmq.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, r.pub.Publish(ctx, r.settings.Exchange, r.settings.RoutingKey, msg))
}

// waitSent waits until orderID was notified.
func (r running) waitSent(t *testing.T, orderID string) notify.Notification {
	t.Helper()
	var n notify.Notification
	require.Eventually(t, func() bool {
		var ok bool
		n, ok = r.store.Get(orderID)
		return ok
	}, 15*time.Second, 20*time.Millisecond, "order %s never notified", orderID)
	return n
}

// waitDeadLetter takes the next message from the dead-letter queue, waiting for one.
func (r running) waitDeadLetter(t *testing.T) amqp.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := r.conn.Channel(ctx)
	require.NoError(t, err)
	defer ch.Close()
	var got amqp.Delivery
	require.Eventually(t, func() bool {
		d, ok, err := ch.Get(r.settings.DeadLetterQueue(), true)
		require.NoError(t, err)
		got = d
		return ok
	}, 15*time.Second, 50*time.Millisecond, "nothing reached %s", r.settings.DeadLetterQueue())
	return got
}

func TestPoisonMessageIsDeadLetteredAndTheConsumerKeepsGoing(t *testing.T) {
	r := startNotifier(t, newScriptedSender(nil), 5)
	poison := eventMessage(t, orderPlaced("o-poison"))
	poison.Body = []byte(`{"order_id": "o-poison", "items": [`)

	r.publish(t, poison)
	r.publish(t, eventMessage(t, orderPlaced("o-after")))

	n := r.waitSent(t, "o-after")
	assert.Equal(t, 1, n.Attempts)
	dead := r.waitDeadLetter(t)
	assert.Equal(t, poison.Body, dead.Body)
	assert.Equal(t, consume.ReasonMalformed, dead.Headers[consume.HeaderReason])
	assert.EqualValues(t, 1, dead.Headers[consume.HeaderAttempts])
	assert.Contains(t, dead.Headers[consume.HeaderError], "decode OrderPlaced")
	assert.Equal(t, poison.Headers[ordersv1.HeaderEventID], dead.Headers[ordersv1.HeaderEventID])
	assert.Zero(t, testutil.ToFloat64(r.metrics.Retried), "a malformed message is never retried")
}

func TestTransientFailureIsRetriedAfterTheDelay(t *testing.T) {
	r := startNotifier(t, newScriptedSender(map[string]int{"o-flaky": 1}), 5)
	published := time.Now()

	r.publish(t, eventMessage(t, orderPlaced("o-flaky")))

	n := r.waitSent(t, "o-flaky")
	assert.Equal(t, 2, n.Attempts)
	assert.GreaterOrEqual(t, n.SentAt.Sub(published), testDelay, "the retry waited for the delay")
	assert.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Retried))
	assertQueueEmpty(t, r, r.settings.DeadLetterQueue())
}

func TestExhaustedAttemptsAreDeadLettered(t *testing.T) {
	r := startNotifier(t, newScriptedSender(map[string]int{"o-doomed": -1}), 3)
	msg := eventMessage(t, orderPlaced("o-doomed"))

	r.publish(t, msg)

	dead := r.waitDeadLetter(t)
	assert.Equal(t, msg.Body, dead.Body)
	assert.Equal(t, msg.MessageID, dead.MessageId)
	assert.Equal(t, consume.ReasonAttemptsExhausted, dead.Headers[consume.HeaderReason])
	assert.EqualValues(t, 3, dead.Headers[consume.HeaderAttempts])
	assert.Contains(t, dead.Headers[consume.HeaderError], "unavailable")
	assert.Equal(t, 2.0, testutil.ToFloat64(r.metrics.Retried))
	_, sent := r.store.Get("o-doomed")
	assert.False(t, sent)
}

func TestRedeliveredOrderIsNotNotifiedTwice(t *testing.T) {
	sender := newScriptedSender(nil)
	r := startNotifier(t, sender, 5)

	for i := range 3 {
		msg := eventMessage(t, orderPlaced("o-twice"))
		msg.MessageID = fmt.Sprintf("evt-%d", i)
		r.publish(t, msg)
	}
	r.publish(t, eventMessage(t, orderPlaced("o-marker")))

	r.waitSent(t, "o-marker")
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.metrics.Duplicates) == 2 },
		5*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, sender.Calls("o-twice"))
}

func assertQueueEmpty(t *testing.T, r running, queue string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := r.conn.Channel(ctx)
	require.NoError(t, err)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	assert.Zero(t, q.Messages, "messages in %s", queue)
}

// The work queue dead-letters on its own what a consumer rejects or what keeps coming back
// (x-delivery-limit), so that nothing is lost or redelivered forever even when the handler
// chain cannot publish to the dead-letter exchange itself.
func TestTopologyDeadLettersWhatTheBrokerGivesUpOn(t *testing.T) {
	tests := []struct {
		name       string
		handlerErr error
		wantReason string
		minCalls   int32
	}{
		{"rejected", errors.New("cannot settle"), "rejected", 1},
		{"requeued until the delivery limit", rabbitmq.Requeue(errors.New("try again")), "delivery_limit", consume.DeliveryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startNotifier(t, newScriptedSender(nil), 5)
			queue := brokertest.UniqueName(t, "raw")
			// A second queue on the same exchange, with the work queue's arguments, consumed by a
			// handler that never succeeds.
			topo := r.settings.Topology()
			raw := topo.Queues[0]
			raw.Name = queue
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, r.conn.Declare(ctx, rabbitmq.Topology{
				Queues:   []rabbitmq.Queue{raw},
				Bindings: []rabbitmq.Binding{{Queue: queue, Exchange: r.settings.Exchange, RoutingKey: "raw"}},
			}))
			t.Cleanup(func() { deleteQueue(t, r.conn, queue) })
			var calls atomic.Int32
			c, err := rabbitmq.NewConsumer(r.conn, rabbitmq.ConsumerConfig{Queue: queue, Prefetch: 1},
				func(context.Context, rabbitmq.Delivery) error { calls.Add(1); return tt.handlerErr }, zaptest.NewLogger(t))
			require.NoError(t, err)
			require.NoError(t, c.Start(ctx))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				assert.NoError(t, c.Stop(ctx))
			})

			require.NoError(t, r.pub.Publish(ctx, r.settings.Exchange, "raw", eventMessage(t, orderPlaced("o-raw"))))

			dead := r.waitDeadLetter(t)
			assert.Equal(t, tt.wantReason, dead.Headers["x-first-death-reason"])
			assert.Equal(t, queue, dead.Headers["x-first-death-queue"])
			// The first delivery plus the redeliveries the limit allows (their exact count differs
			// by a few between RabbitMQ versions).
			assert.GreaterOrEqual(t, calls.Load(), tt.minCalls)
			assert.LessOrEqual(t, calls.Load(), tt.minCalls+1)
		})
	}
}

func deleteQueue(t *testing.T, conn *rabbitmq.Connection, queue string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Errorf("delete queue %s: %v", queue, err)
		return
	}
	defer ch.Close()
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		t.Errorf("delete queue %s: %v", queue, err)
	}
}
