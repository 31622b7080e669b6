// Package logging builds the one zap logger a service uses and carries request-scoped fields
// (request IDs, message IDs) in a context.Context. A line logged through FromContext inside a
// span also carries the span's trace_id and span_id, which find the trace in a trace viewer.
//
// Components receive the *zap.Logger from fx, scope it once with .Named or .With, and, while
// handling a request or message, log through FromContext so every line carries that request's IDs:
//
//	ctx = logging.WithFields(ctx, zap.String("message_id", id))
//	logging.FromContext(ctx, h.log).Info("notification sent")
package logging

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// New returns a logger writing to w in the format and at the level base asks for, with every
// entry tagged service=<service> and timestamped in UTC, ISO 8601 with milliseconds.
func New(w io.Writer, service string, base config.Base) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = utcISO8601
	enc.EncodeDuration = zapcore.StringDurationEncoder

	var encoder zapcore.Encoder
	switch base.LogFormat {
	case "json":
		encoder = zapcore.NewJSONEncoder(enc)
	case "console":
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("logging: unknown format %q", base.LogFormat)
	}

	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), base.LogLevel)
	// No automatic stack traces: they would show where the line was logged, which is rarely
	// where the problem is. Recovered panics log their own stack.
	return zap.New(core, zap.AddCaller(), zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))).
		With(zap.String("service", service)), nil
}

func utcISO8601(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

type fieldsKey struct{}

type requestIDKey struct{}

// WithFields returns a context whose FromContext loggers carry fields in addition to any the
// context already had.
func WithFields(ctx context.Context, fields ...zap.Field) context.Context {
	prev, _ := ctx.Value(fieldsKey{}).([]zap.Field)
	all := make([]zap.Field, 0, len(prev)+len(fields))
	all = append(append(all, prev...), fields...)
	return context.WithValue(ctx, fieldsKey{}, all)
}

// WithRequestID records the ID of the request being handled, for RequestID and as the
// request_id field of FromContext loggers.
func WithRequestID(ctx context.Context, id string) context.Context {
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	return WithFields(ctx, zap.String("request_id", id))
}

// RequestID returns the ID recorded by WithRequestID, or "" when there is none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// FromContext returns l with the fields carried by ctx, and the trace_id and span_id of the
// span in ctx when there is one (a span a caller started counts, even when this service does
// not record spans).
func FromContext(ctx context.Context, l *zap.Logger) *zap.Logger {
	fields, _ := ctx.Value(fieldsKey{}).([]zap.Field)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		fields = append(fields[:len(fields):len(fields)],
			zap.Stringer("trace_id", sc.TraceID()), zap.Stringer("span_id", sc.SpanID()))
	}
	if len(fields) == 0 {
		return l
	}
	return l.With(fields...)
}
