package consume

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

// Headers the notifier adds to the messages it retries or dead-letters. They are not x-
// headers: those belong to the broker, which (from RabbitMQ 4) ignores x-death set by a client,
// so attempts are counted here rather than from x-death.
const (
	// HeaderAttempts is how many attempts already failed.
	HeaderAttempts = "notifier-attempts"
	// HeaderReason says why a message was dead-lettered: ReasonMalformed or ReasonAttemptsExhausted.
	HeaderReason = "notifier-dead-letter-reason"
	// HeaderError is the error of the last attempt.
	HeaderError = "notifier-error"
	// HeaderDeadLetteredAt is when the message was dead-lettered (UTC).
	HeaderDeadLetteredAt = "notifier-dead-lettered-at"
)

// maxErrorHeader bounds HeaderError: an error text is for a person reading the dead-letter queue.
const maxErrorHeader = 1024

// Middleware wraps a handler with behaviour that every message gets.
type Middleware func(rabbitmq.Handler) rabbitmq.Handler

// Chain wraps h in mws; the first is the outermost, the one that sees a delivery first.
func Chain(h rabbitmq.Handler, mws ...Middleware) rabbitmq.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Publisher publishes a message and returns once the broker confirmed it (*rabbitmq.Publisher).
type Publisher interface {
	Publish(ctx context.Context, exchange, routingKey string, msg rabbitmq.Message) error
}

// Attempt is the how-manyth attempt a delivery is: 1 on the first, one more after each retry.
// A missing or unreadable HeaderAttempts counts as a first attempt.
func Attempt(d rabbitmq.Delivery) int {
	var failed int64
	switch n := d.Headers[HeaderAttempts].(type) {
	case int64:
		failed = n
	case int32:
		failed = int64(n)
	case int16:
		failed = int64(n)
	case int8:
		failed = int64(n)
	case int:
		failed = int64(n)
	}
	if failed < 0 || failed > 1<<20 {
		failed = 0
	}
	return int(failed) + 1
}

// LogContext adds the message's identifiers to the context, so that every log line written
// about it carries them (and, from the consumer's span, its trace_id and span_id).
func LogContext() Middleware {
	return func(next rabbitmq.Handler) rabbitmq.Handler {
		return func(ctx context.Context, d rabbitmq.Delivery) error {
			fields := []zap.Field{zap.String("message_id", d.MessageID)}
			if id, ok := d.Headers[ordersv1.HeaderEventID].(string); ok {
				fields = append(fields, zap.String("event_id", id))
			}
			return next(logging.WithFields(ctx, fields...), d)
		}
	}
}

// Recover turns a panic of the handler into an error, so that it counts as a failed attempt
// like any other (and a message that always panics ends in the dead-letter queue).
func Recover(log *zap.Logger) Middleware {
	return func(next rabbitmq.Handler) rabbitmq.Handler {
		return func(ctx context.Context, d rabbitmq.Delivery) (err error) {
			defer func() {
				if p := recover(); p != nil {
					logging.FromContext(ctx, log).Error("handler panicked", zap.Any("panic", p), zap.Stack("stack"))
					err = fmt.Errorf("handler panicked: %v", p)
				}
			}()
			return next(ctx, d)
		}
	}
}

// RetryOrDeadLetter settles the outcome of the handler: a failed attempt is published to the
// retry queue, to come back after the delay, while attempts are left; a malformed message, or
// one whose last attempt failed, is published to the dead-letter queue with the reason in its
// headers. Either way the delivery is then acknowledged.
//
// Publishing and then acknowledging is not atomic: a crash in between leaves the message in
// both queues, which the deduplication absorbs. When a publish fails, the delivery is handed
// back to the broker instead (requeued for a retry, rejected into the dead-letter queue for a
// dead-letter), so nothing is lost.
func RetryOrDeadLetter(s Settings, pub Publisher, m *Metrics, log *zap.Logger) Middleware {
	r := retrier{settings: s, pub: pub, metrics: m, log: log, now: time.Now}
	return func(next rabbitmq.Handler) rabbitmq.Handler {
		return func(ctx context.Context, d rabbitmq.Delivery) error {
			err := next(ctx, d)
			attempt := Attempt(d)
			if err != nil {
				// The delivery is settled below either way; the span still shows the failure.
				span := trace.SpanFromContext(ctx)
				span.RecordError(err)
				span.SetStatus(codes.Error, fmt.Sprintf("attempt %d failed", attempt))
			}
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				// The consumer is stopping and will not wait: the broker gets the message back
				// when the channel closes, and this attempt does not count.
				return rabbitmq.Requeue(err)
			case errors.Is(err, ErrMalformed):
				return r.deadLetter(ctx, d, ReasonMalformed, attempt, err)
			case attempt >= s.MaxAttempts:
				return r.deadLetter(ctx, d, ReasonAttemptsExhausted, attempt, err)
			default:
				return r.retry(ctx, d, attempt, err)
			}
		}
	}
}

type retrier struct {
	settings Settings
	pub      Publisher
	metrics  *Metrics
	log      *zap.Logger
	now      func() time.Time
}

func (r retrier) retry(ctx context.Context, d rabbitmq.Delivery, attempt int, cause error) error {
	log := logging.FromContext(ctx, r.log)
	msg := copyMessage(d, map[string]any{
		HeaderAttempts: int64(attempt),
		HeaderError:    errorText(cause),
	})
	if err := r.pub.Publish(ctx, r.settings.RetryExchange(), r.settings.retryKey(), msg); err != nil {
		// Requeued, the message is tried again at once; the queue's delivery limit bounds how
		// often that can happen before the broker dead-letters it.
		return rabbitmq.Requeue(fmt.Errorf("attempt %d failed (%w) and the retry could not be scheduled: %w", attempt, cause, err))
	}
	r.metrics.Retried.Inc()
	log.Warn("attempt failed, retrying later", zap.Int("attempt", attempt),
		zap.Duration("delay", r.settings.RetryDelay), zap.Int("attempts_left", r.settings.MaxAttempts-attempt), zap.Error(cause))
	return nil
}

func (r retrier) deadLetter(ctx context.Context, d rabbitmq.Delivery, reason string, attempt int, cause error) error {
	log := logging.FromContext(ctx, r.log)
	msg := copyMessage(d, map[string]any{
		HeaderAttempts:       int64(attempt),
		HeaderReason:         reason,
		HeaderError:          errorText(cause),
		HeaderDeadLetteredAt: r.now().UTC(),
	})
	if err := r.pub.Publish(ctx, r.settings.DeadLetterExchange(), "", msg); err != nil {
		// Rejected, the broker dead-letters it to the same queue itself, without our headers.
		return fmt.Errorf("dead-letter (%s: %w): publish: %w", reason, cause, err)
	}
	r.metrics.DeadLettered.WithLabelValues(reason).Inc()
	log.Error("message dead-lettered", zap.String("reason", reason), zap.Int("attempt", attempt), zap.Error(cause))
	return nil
}

// copyMessage is d as a new message: the same body and properties, the application's headers,
// and extra. The broker's x- headers stay behind; the broker writes its own.
func copyMessage(d rabbitmq.Delivery, extra map[string]any) rabbitmq.Message {
	headers := make(map[string]any, len(d.Headers)+len(extra))
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, "x-") {
			headers[k] = v
		}
	}
	for k, v := range extra {
		headers[k] = v
	}
	return rabbitmq.Message{
		Body:            d.Body,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		MessageID:       d.MessageID,
		CorrelationID:   d.CorrelationID,
		Type:            d.Type,
		AppID:           d.AppID,
		Timestamp:       d.Timestamp,
		Headers:         headers,
	}
}

func errorText(err error) string {
	s := err.Error()
	if len(s) <= maxErrorHeader {
		return s
	}
	// Cutting may split a multi-byte character; header strings should stay valid UTF-8.
	return strings.ToValidUTF8(s[:maxErrorHeader], "") + "…"
}
