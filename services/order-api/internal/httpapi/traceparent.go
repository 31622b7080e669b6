package httpapi

import (
	"context"
	"crypto/rand"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext reads and writes the W3C traceparent header; OpenTelemetry's implementation
// knows every rule of the format (versions, all-zero IDs, lower-case hex).
var traceContext propagation.TraceContext

// traceparent returns the trace context to send with the order's event: the request's own
// when it carries a valid traceparent, so the event joins the caller's trace, else a new trace.
// The result is always a version-00 traceparent.
func traceparent(h http.Header) string {
	ctx := traceContext.Extract(context.Background(), propagation.HeaderCarrier(h))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		sc = newTrace()
	}
	out := propagation.MapCarrier{}
	traceContext.Inject(trace.ContextWithSpanContext(context.Background(), sc), out)
	return out.Get("traceparent")
}

// newTrace starts a trace. It is not sampled: order-api records no spans of its own.
func newTrace() trace.SpanContext {
	var cfg trace.SpanContextConfig
	for !cfg.TraceID.IsValid() {
		_, _ = rand.Read(cfg.TraceID[:]) // crypto/rand.Read never fails
	}
	for !cfg.SpanID.IsValid() {
		_, _ = rand.Read(cfg.SpanID[:])
	}
	return trace.NewSpanContext(cfg)
}
