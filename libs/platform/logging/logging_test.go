package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

func base(level zapcore.Level, format string) config.Base {
	return config.Base{LogLevel: level, LogFormat: format, AdminAddr: ":0", ShutdownTimeout: time.Second}
}

// entries decodes JSON log lines.
func entries(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), "line %q", line)
		out = append(out, e)
	}
	return out
}

func TestNewJSON(t *testing.T) {
	// A non-UTC local zone proves timestamps are converted rather than happening to be UTC.
	local := time.Local
	time.Local = time.FixedZone("UTC+3", 3*60*60)
	t.Cleanup(func() { time.Local = local })

	var buf bytes.Buffer
	log, err := logging.New(&buf, "order-api", base(zapcore.InfoLevel, "json"))
	require.NoError(t, err)

	log.Info("order accepted", zap.String("order_id", "o-1"))

	got := entries(t, &buf)
	require.Len(t, got, 1)
	assert.Equal(t, "info", got[0]["level"])
	assert.Equal(t, "order accepted", got[0]["msg"])
	assert.Equal(t, "order-api", got[0]["service"])
	assert.Equal(t, "o-1", got[0]["order_id"])
	ts, ok := got[0]["ts"].(string)
	require.True(t, ok, "ts is a string: %v", got[0]["ts"])
	assert.True(t, strings.HasSuffix(ts, "Z"), "ts %q is UTC", ts)
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), parsed, time.Minute)
}

func TestNewConsole(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "validator", base(zapcore.InfoLevel, "console"))
	require.NoError(t, err)

	log.Warn("catalog reloaded")

	line := buf.String()
	assert.Contains(t, line, "WARN")
	assert.Contains(t, line, "catalog reloaded")
	assert.Contains(t, line, `"service": "validator"`)
	assert.False(t, json.Valid([]byte(line)), "console output is not JSON: %q", line)
}

func TestNewLevel(t *testing.T) {
	tests := []struct {
		name  string
		level zapcore.Level
		want  []string
	}{
		{"debug shows everything", zapcore.DebugLevel, []string{"debug", "info", "warn", "error"}},
		{"info hides debug", zapcore.InfoLevel, []string{"info", "warn", "error"}},
		{"error shows only errors", zapcore.ErrorLevel, []string{"error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(&buf, "svc", base(tt.level, "json"))
			require.NoError(t, err)

			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			log.Error("error")

			var got []string
			for _, e := range entries(t, &buf) {
				got = append(got, e["msg"].(string))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	_, err := logging.New(&bytes.Buffer{}, "svc", base(zapcore.InfoLevel, "xml"))
	assert.ErrorContains(t, err, `unknown format "xml"`)
}

func TestFromContext(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)

	plain := context.Background()
	withID := logging.WithRequestID(plain, "req-7")
	withMore := logging.WithFields(withID, zap.String("message_id", "m-3"))

	logging.FromContext(plain, log).Info("no fields")
	logging.FromContext(withID, log).Info("request")
	logging.FromContext(withMore, log).Info("message")

	all := logs.All()
	require.Len(t, all, 3)
	assert.Empty(t, all[0].ContextMap())
	assert.Equal(t, map[string]any{"request_id": "req-7"}, all[1].ContextMap())
	assert.Equal(t, map[string]any{"request_id": "req-7", "message_id": "m-3"}, all[2].ContextMap(),
		"fields accumulate, and adding some does not change the parent context")

	assert.Equal(t, "req-7", logging.RequestID(withMore))
	assert.Empty(t, logging.RequestID(plain))
}

func TestFromContextNamesTheSpan(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	traceID, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	spanID, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	inSpan := trace.ContextWithSpanContext(logging.WithRequestID(context.Background(), "req-7"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))

	logging.FromContext(inSpan, log).Info("in a span")
	logging.FromContext(logging.WithFields(inSpan, zap.String("order_id", "o-1")), log).Info("and more")

	all := logs.All()
	require.Len(t, all, 2)
	assert.Equal(t, map[string]any{
		"request_id": "req-7", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
	}, all[0].ContextMap())
	assert.Equal(t, map[string]any{
		"request_id": "req-7", "order_id": "o-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
	}, all[1].ContextMap())
}

func TestFxLoggerKeepsStartQuiet(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	fxlog := logging.NewFxLogger(zap.New(core))

	fxlog.LogEvent(&fxevent.Provided{ConstructorName: "NewThing", OutputTypeNames: []string{"*Thing"}})
	fxlog.LogEvent(&fxevent.OnStartExecuting{FunctionName: "start", CallerName: "caller"})
	fxlog.LogEvent(&fxevent.Started{})
	fxlog.LogEvent(&fxevent.Stopping{Signal: syscall.SIGTERM})
	fxlog.LogEvent(&fxevent.Started{Err: errors.New("listen tcp :9090: address already in use")})

	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	assert.Equal(t, []string{"info started", "info stopping", "error start failed"}, got)
	assert.Equal(t, "terminated", logs.All()[1].ContextMap()["signal"])
}
