package consume_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

var unitSettings = consume.Settings{
	Exchange:    "orders",
	RoutingKey:  "order.placed",
	Queue:       "notifier.order-placed",
	RetryDelay:  200 * time.Millisecond,
	MaxAttempts: 3,
}

type published struct {
	exchange, routingKey string
	msg                  rabbitmq.Message
}

// recordingPublisher keeps what the handler publishes, or fails with err.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []published
	err  error
}

func (p *recordingPublisher) Publish(_ context.Context, exchange, routingKey string, msg rabbitmq.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, published{exchange, routingKey, msg})
	return nil
}

func (p *recordingPublisher) to(exchange string) []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []published
	for _, m := range p.msgs {
		if m.exchange == exchange {
			out = append(out, m)
		}
	}
	return out
}

// deliverUntilSettled hands d to h and, like the broker's retry queue would after the delay,
// every message h publishes for a retry; it returns the last result.
func deliverUntilSettled(t *testing.T, h rabbitmq.Handler, pub *recordingPublisher, d rabbitmq.Delivery) error {
	t.Helper()
	for range 100 {
		retries := len(pub.to(unitSettings.RetryExchange()))
		err := h(context.Background(), d)
		after := pub.to(unitSettings.RetryExchange())
		if len(after) == retries {
			return err
		}
		require.NoError(t, err, "a retried delivery is acknowledged")
		d = delivered(after[len(after)-1].msg)
	}
	t.Fatal("the message never settled")
	return nil
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name          string
		failures      int // sends of the order that fail first; -1: every one
		wantSent      bool
		wantAttempts  int // recorded with the notification, or in the dead-letter headers
		wantRetries   int
		wantSendCalls int
	}{
		{name: "sent on the first attempt", failures: 0, wantSent: true, wantAttempts: 1, wantSendCalls: 1},
		{name: "transient failure, then sent on the retry", failures: 1, wantSent: true, wantAttempts: 2, wantRetries: 1, wantSendCalls: 2},
		{name: "sent on the last attempt", failures: 2, wantSent: true, wantAttempts: 3, wantRetries: 2, wantSendCalls: 3},
		{name: "every attempt fails: dead-lettered after the last", failures: -1, wantAttempts: 3, wantRetries: 2, wantSendCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender := newScriptedSender(map[string]int{"o-1": tt.failures})
			svc := newService(t, sender)
			pub := &recordingPublisher{}
			h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))

			err := deliverUntilSettled(t, h, pub, delivered(eventMessage(t, orderPlaced("o-1"))))

			require.NoError(t, err, "the delivery is acknowledged")
			assert.Equal(t, tt.wantSendCalls, sender.Calls("o-1"))
			assert.Equal(t, float64(tt.wantRetries), testutil.ToFloat64(svc.metrics.Retried))
			for i, r := range pub.to(unitSettings.RetryExchange()) {
				assert.Equal(t, "wait.200ms", r.routingKey, "routed to the delay queue of this delay")
				assert.Equal(t, int64(i+1), r.msg.Headers[consume.HeaderAttempts])
				assert.Contains(t, r.msg.Headers[consume.HeaderError], "unavailable")
			}
			n, sent := svc.store.Get("o-1")
			dead := pub.to(unitSettings.DeadLetterExchange())
			if tt.wantSent {
				require.True(t, sent, "notification recorded")
				assert.Equal(t, tt.wantAttempts, n.Attempts)
				assert.Empty(t, dead)
				return
			}
			assert.False(t, sent)
			require.Len(t, dead, 1)
			assert.Equal(t, consume.ReasonAttemptsExhausted, dead[0].msg.Headers[consume.HeaderReason])
			assert.Equal(t, int64(tt.wantAttempts), dead[0].msg.Headers[consume.HeaderAttempts])
			assert.Contains(t, dead[0].msg.Headers[consume.HeaderError], "unavailable")
			assert.IsType(t, time.Time{}, dead[0].msg.Headers[consume.HeaderDeadLetteredAt])
			assert.Equal(t, 1.0, testutil.ToFloat64(svc.metrics.DeadLettered.WithLabelValues(consume.ReasonAttemptsExhausted)))
		})
	}
}

func TestMalformedMessagesAreDeadLetteredAtOnce(t *testing.T) {
	valid := func(t *testing.T) rabbitmq.Message { return eventMessage(t, orderPlaced("o-1")) }
	tests := []struct {
		name    string
		message func(t *testing.T) rabbitmq.Message
		wantErr string
	}{
		{"body is not JSON", func(t *testing.T) rabbitmq.Message {
			m := valid(t)
			m.Body = []byte("not json{")
			return m
		}, "decode OrderPlaced"},
		{"order_id too long to be one", func(t *testing.T) rabbitmq.Message {
			return eventMessage(t, withOrder(orderPlaced(strings.Repeat("o", 129)), nil))
		}, "order_id"},
		{"customer_id too long to be one", func(t *testing.T) rabbitmq.Message {
			return eventMessage(t, withOrder(orderPlaced("o-1"), func(e *ordersv1.OrderPlaced) { e.CustomerId = strings.Repeat("c", 65) }))
		}, "customer_id"},
		{"body is empty", func(t *testing.T) rabbitmq.Message {
			m := valid(t)
			m.Body = nil
			return m
		}, "decode OrderPlaced"},
		{"order_id missing", func(t *testing.T) rabbitmq.Message { return eventMessage(t, withOrder(orderPlaced(""), nil)) }, "order_id"},
		{"customer_id missing", func(t *testing.T) rabbitmq.Message {
			return eventMessage(t, withOrder(orderPlaced("o-1"), func(e *ordersv1.OrderPlaced) { e.CustomerId = "" }))
		}, "customer_id"},
		{"no items", func(t *testing.T) rabbitmq.Message {
			return eventMessage(t, withOrder(orderPlaced("o-1"), func(e *ordersv1.OrderPlaced) { e.Items = nil }))
		}, "items"},
		{"unknown event type", func(t *testing.T) rabbitmq.Message {
			m := valid(t)
			m.Headers[ordersv1.HeaderEventType] = "orders.v1.OrderCancelled"
			return m
		}, "orders.v1.OrderCancelled"},
		{"no event type at all", func(t *testing.T) rabbitmq.Message {
			m := valid(t)
			delete(m.Headers, ordersv1.HeaderEventType)
			m.Type = ""
			return m
		}, "event type"},
		{"content type is not JSON", func(t *testing.T) rabbitmq.Message {
			m := valid(t)
			m.ContentType = "application/x-protobuf"
			return m
		}, "content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender := newScriptedSender(nil)
			svc := newService(t, sender)
			pub := &recordingPublisher{}
			h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
			msg := tt.message(t)

			err := h(context.Background(), delivered(msg))

			require.NoError(t, err, "acknowledged once dead-lettered")
			assert.Empty(t, pub.to(unitSettings.RetryExchange()), "never retried")
			assert.Zero(t, sender.Calls("o-1"), "nothing sent")
			dead := pub.to(unitSettings.DeadLetterExchange())
			require.Len(t, dead, 1)
			assert.Equal(t, msg.Body, dead[0].msg.Body, "the message is kept as it came")
			assert.Equal(t, consume.ReasonMalformed, dead[0].msg.Headers[consume.HeaderReason])
			assert.Equal(t, int64(1), dead[0].msg.Headers[consume.HeaderAttempts])
			assert.Contains(t, dead[0].msg.Headers[consume.HeaderError], tt.wantErr)
			assert.Equal(t, 1.0, testutil.ToFloat64(svc.metrics.DeadLettered.WithLabelValues(consume.ReasonMalformed)))
		})
	}
}

func withOrder(e *ordersv1.OrderPlaced, change func(*ordersv1.OrderPlaced)) *ordersv1.OrderPlaced {
	if change != nil {
		change(e)
	}
	return e
}

func TestTypePropertyStandsInForAMissingEventTypeHeader(t *testing.T) {
	sender := newScriptedSender(nil)
	svc := newService(t, sender)
	pub := &recordingPublisher{}
	h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
	msg := eventMessage(t, orderPlaced("o-1"))
	delete(msg.Headers, ordersv1.HeaderEventType)
	msg.ContentType = "application/json; charset=utf-8"

	require.NoError(t, h(context.Background(), delivered(msg)))

	assert.Equal(t, 1, sender.Calls("o-1"))
}

func TestDuplicateIsAcknowledgedWithoutSendingAgain(t *testing.T) {
	sender := newScriptedSender(nil)
	svc := newService(t, sender)
	pub := &recordingPublisher{}
	h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
	first := delivered(eventMessage(t, orderPlaced("o-1")))
	// The same order published again (a client retry with the same Idempotency-Key).
	again := delivered(eventMessage(t, orderPlaced("o-1")))
	again.MessageID = "evt-other"
	again.Redelivered = true

	require.NoError(t, h(context.Background(), first))
	require.NoError(t, h(context.Background(), again))

	assert.Equal(t, 1, sender.Calls("o-1"))
	assert.Equal(t, 1.0, testutil.ToFloat64(svc.metrics.Duplicates))
	n, ok := svc.store.Get("o-1")
	require.True(t, ok)
	assert.Equal(t, 1, n.Attempts)
	assert.Empty(t, pub.msgs)
}

// blockingSender holds every send until release is closed.
type blockingSender struct {
	*scriptedSender
	entered chan struct{}
	release chan struct{}
}

func (s blockingSender) Send(ctx context.Context, o notify.Order) error {
	s.entered <- struct{}{}
	<-s.release
	return s.scriptedSender.Send(ctx, o)
}

func TestConcurrentDuplicatesSendOnce(t *testing.T) {
	sender := blockingSender{newScriptedSender(nil), make(chan struct{}, 8), make(chan struct{})}
	svc := newService(t, sender)
	h := consume.NewHandler(unitSettings, &recordingPublisher{}, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
	d := delivered(eventMessage(t, orderPlaced("o-1")))

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = h(context.Background(), d) })
	}
	<-sender.entered // one delivery is sending; the others wait for it
	close(sender.release)
	wg.Wait()

	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 1, sender.Calls("o-1"))
	assert.Equal(t, 3.0, testutil.ToFloat64(svc.metrics.Duplicates))
}

func TestAPanicIsAFailedAttempt(t *testing.T) {
	sender := newScriptedSender(map[string]int{"o-1": 1})
	sender.panics = true
	svc := newService(t, sender)
	pub := &recordingPublisher{}
	h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))

	require.NoError(t, deliverUntilSettled(t, h, pub, delivered(eventMessage(t, orderPlaced("o-1")))))

	retries := pub.to(unitSettings.RetryExchange())
	require.Len(t, retries, 1)
	assert.Contains(t, retries[0].msg.Headers[consume.HeaderError], "panicked")
	n, ok := svc.store.Get("o-1")
	require.True(t, ok)
	assert.Equal(t, 2, n.Attempts)
}

func TestRetryKeepsApplicationHeadersAndDropsBrokerHeaders(t *testing.T) {
	svc := newService(t, newScriptedSender(map[string]int{"o-1": 1}))
	pub := &recordingPublisher{}
	h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
	d := delivered(eventMessage(t, orderPlaced("o-1")))
	d.Headers["x-death"] = []any{map[string]any{"queue": "elsewhere", "reason": "expired", "count": int64(1)}}
	d.Headers["x-delivery-count"] = int64(2)

	require.NoError(t, h(context.Background(), d))

	retries := pub.to(unitSettings.RetryExchange())
	require.Len(t, retries, 1)
	got := retries[0].msg
	assert.Equal(t, d.Body, got.Body)
	assert.Equal(t, d.MessageID, got.MessageID)
	assert.Equal(t, d.ContentType, got.ContentType)
	for _, k := range []string{ordersv1.HeaderEventType, ordersv1.HeaderEventID, ordersv1.HeaderTraceparent, ordersv1.HeaderContentType} {
		assert.Equal(t, d.Headers[k], got.Headers[k], k)
	}
	assert.NotContains(t, got.Headers, "x-death")
	assert.NotContains(t, got.Headers, "x-delivery-count")
}

func TestFailuresToPublishHandTheMessageBackToTheBroker(t *testing.T) {
	brokerDown := errors.New("broker unreachable")
	tests := []struct {
		name        string
		message     func(t *testing.T) rabbitmq.Message
		wantRequeue bool
	}{
		{"retry not scheduled: requeued for another attempt", func(t *testing.T) rabbitmq.Message {
			return eventMessage(t, orderPlaced("o-fails"))
		}, true},
		{"dead-letter not published: rejected, so the broker dead-letters it", func(t *testing.T) rabbitmq.Message {
			m := eventMessage(t, orderPlaced("o-1"))
			m.Body = []byte("garbage")
			return m
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService(t, newScriptedSender(map[string]int{"o-fails": -1}))
			pub := &recordingPublisher{err: brokerDown}
			h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))

			err := h(context.Background(), delivered(tt.message(t)))

			require.ErrorIs(t, err, brokerDown)
			assert.Equal(t, tt.wantRequeue, isRequeue(err), "requeue: %v", err)
			assert.Zero(t, testutil.ToFloat64(svc.metrics.Retried))
		})
	}
}

func TestStoppingConsumerRequeuesWithoutSpendingAnAttempt(t *testing.T) {
	svc := newService(t, contextSender{})
	pub := &recordingPublisher{}
	h := consume.NewHandler(unitSettings, pub, svc.notifier, svc.store, svc.metrics, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := h(ctx, delivered(eventMessage(t, orderPlaced("o-1"))))

	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, isRequeue(err))
	assert.Empty(t, pub.msgs)
}

func TestAttempt(t *testing.T) {
	tests := []struct {
		name   string
		header any
		want   int
	}{
		{"no header: first attempt", nil, 1},
		{"one failed", int64(1), 2},
		{"as decoded from a short int", int32(4), 5},
		{"negative: ignored", int64(-3), 1},
		{"not a number: ignored", "2", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rabbitmq.Delivery{Headers: map[string]any{}}
			if tt.header != nil {
				d.Headers[consume.HeaderAttempts] = tt.header
			}
			assert.Equal(t, tt.want, consume.Attempt(d))
		})
	}
}

// contextSender fails with its context's error, like a real client whose call was cancelled.
type contextSender struct{}

func (contextSender) Send(ctx context.Context, _ notify.Order) error { return ctx.Err() }

// isRequeue reports whether err was marked with rabbitmq.Requeue; the package exposes the
// marking only through the error text.
func isRequeue(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "requeue: ")
}
