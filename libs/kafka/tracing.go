package kafka

import (
	"context"
	"strconv"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Spans follow OpenTelemetry's messaging conventions: a producer span "send <topic>" around
// Publish, whose context travels in the record's headers (W3C traceparent, through the global
// propagator), and a consumer span "process <topic>" around the Handler, a child of the
// producer span: this consumer handles one record at a time, so the record's creator is its
// parent. Both come from OpenTelemetry's global tracer provider, which platform/tracing sets;
// without one they cost nothing.

// instrumentationName names this package as the instrumentation scope of its spans.
const instrumentationName = "github.com/backend-prep/backend-prep/libs/kafka"

func tracer() trace.Tracer { return otel.Tracer(instrumentationName) }

// headerCarrier lets a propagator read and write a record's headers. Set replaces a header of
// the same key, so a record re-published carries one traceparent, not two.
type headerCarrier struct{ headers *[]Header }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range *c.headers {
		if h.Key == key {
			(*c.headers)[i].Value = []byte(value)
			return
		}
	}
	*c.headers = append(*c.headers, Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.headers))
	for i, h := range *c.headers {
		keys[i] = h.Key
	}
	return keys
}

// startSend starts the producer span of msg and writes its context into msg's headers, which it
// copies first: the caller's slice is left as it was.
func startSend(ctx context.Context, msg *Message) (context.Context, trace.Span) {
	ctx, span := tracer().Start(ctx, "send "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(msg.Topic),
			semconv.MessagingKafkaMessageKey(string(msg.Key)),
			semconv.MessagingMessageBodySize(len(msg.Value)),
		))
	headers := append(make([]Header, 0, len(msg.Headers)+2), msg.Headers...)
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&headers})
	msg.Headers = headers
	return ctx, span
}

// endSend records where the record landed, or why it did not, and ends the span.
func endSend(span trace.Span, delivered *ckafka.Message, err error) {
	if delivered != nil && delivered.TopicPartition.Error == nil {
		span.SetAttributes(
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(delivered.TopicPartition.Partition))),
			semconv.MessagingKafkaOffset(int(delivered.TopicPartition.Offset)),
		)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startProcess starts the consumer span of msg, a child of the context in its headers.
func startProcess(ctx context.Context, group string, msg *Message) (context.Context, trace.Span) {
	ctx = otel.GetTextMapPropagator().Extract(ctx, headerCarrier{&msg.Headers})
	return tracer().Start(ctx, "process "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(msg.Topic),
			semconv.MessagingConsumerGroupName(group),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(msg.Partition))),
			semconv.MessagingKafkaOffset(int(msg.Offset)),
			semconv.MessagingKafkaMessageKey(string(msg.Key)),
			semconv.MessagingMessageBodySize(len(msg.Value)),
		))
}

// endProcess records the handler's outcome and ends the span.
func endProcess(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
