package rabbitmq

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Spans follow OpenTelemetry's messaging conventions: a producer span "send <exchange>" around
// Publish, whose context travels in the message's headers (W3C traceparent, through the global
// propagator), and a consumer span "process <queue>" around the Handler, a child of the span
// that published the message: deliveries are handled one by one, so the message's creator is
// its parent. A message that a handler re-publishes (a retry, a dead-letter) carries the
// handler's span on, so each attempt hangs under the one before. The spans come from
// OpenTelemetry's global tracer provider, which platform/tracing sets; without one they cost
// nothing.

// instrumentationName names this package as the instrumentation scope of its spans.
const instrumentationName = "github.com/backend-prep/backend-prep/libs/rabbitmq"

func tracer() trace.Tracer { return otel.Tracer(instrumentationName) }

// headerCarrier lets a propagator read and write AMQP headers, whose values it keeps as strings.
type headerCarrier map[string]any

func (c headerCarrier) Get(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c headerCarrier) Set(key, value string) { c[key] = value }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// startSend starts the producer span of a publication and writes its context into msg's
// headers, which it copies first: the caller's map is left as it was.
func startSend(ctx context.Context, exchange, routingKey string, msg *Message) (context.Context, trace.Span) {
	destination := exchange
	if destination == "" {
		destination = "amq.default" // the default exchange has no name; this is what it is shown as
	}
	ctx, span := tracer().Start(ctx, "send "+destination,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(destination),
			semconv.MessagingRabbitMQDestinationRoutingKey(routingKey),
			semconv.MessagingMessageID(msg.MessageID),
			semconv.MessagingMessageBodySize(len(msg.Body)),
		))
	headers := make(map[string]any, len(msg.Headers)+2)
	maps.Copy(headers, msg.Headers)
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(headers))
	msg.Headers = headers
	return ctx, span
}

// startProcess starts the consumer span of d, a child of the context in its headers.
func startProcess(ctx context.Context, queue string, d Delivery) (context.Context, trace.Span) {
	ctx = otel.GetTextMapPropagator().Extract(ctx, headerCarrier(d.Headers))
	return tracer().Start(ctx, "process "+queue,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(d.Exchange),
			semconv.MessagingDestinationSubscriptionName(queue),
			semconv.MessagingRabbitMQDestinationRoutingKey(d.RoutingKey),
			semconv.MessagingMessageID(d.MessageID),
			semconv.MessagingMessageBodySize(len(d.Body)),
		))
}

// end records err, if any, on span and ends it.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
