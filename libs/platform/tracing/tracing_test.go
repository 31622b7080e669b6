package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/tracing"
)

// keepGlobals restores OpenTelemetry's global provider and propagator after a test that sets them.
func keepGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

func TestWithoutAnEndpointSpansCostNothingButContextStillFlows(t *testing.T) {
	keepGlobals(t)
	p, err := tracing.New(context.Background(), "order-api", config.Tracing{Sampler: "parentbased_always_on"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	assert.False(t, p.Enabled())

	_, span := otel.Tracer("test").Start(context.Background(), "work")
	assert.False(t, span.IsRecording(), "a no-op span")
	span.End()

	// A caller's trace passes through an untraced service: in, then out again unchanged.
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	ctx, child := otel.Tracer("test").Start(in, "work")
	out := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, out)
	child.End()
	assert.Equal(t, traceparent, out.Get("traceparent"))
	require.NoError(t, p.Shutdown(context.Background()))
}

// receiver is an OTLP/HTTP trace endpoint that keeps what it is sent.
type receiver struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var export coltracepb.ExportTraceServiceRequest
	if err != nil || req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &export) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, &export)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func TestWithAnEndpointSpansAreExportedOverOTLP(t *testing.T) {
	keepGlobals(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL) // the exporter reads its own variables
	cfg := config.Tracing{Endpoint: srv.URL, Protocol: "http/protobuf", Sampler: "always_on"}

	p, err := tracing.New(context.Background(), "validator", cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.True(t, p.Enabled())
	_, span := otel.Tracer("test").Start(context.Background(), "validate order")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Shutdown(ctx), "shutdown flushes the batch")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.requests, 1)
	rs := rec.requests[0].GetResourceSpans()
	require.Len(t, rs, 1)
	attrs := map[string]string{}
	for _, kv := range rs[0].GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	assert.Equal(t, "validator", attrs["service.name"])
	require.Len(t, rs[0].GetScopeSpans(), 1)
	require.Len(t, rs[0].GetScopeSpans()[0].GetSpans(), 1)
	assert.Equal(t, "validate order", rs[0].GetScopeSpans()[0].GetSpans()[0].GetName())
}

func TestSampler(t *testing.T) {
	tests := []struct {
		sampler, arg, want string
	}{
		{"always_on", "", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "", "TraceIDRatioBased{1}"},
		{"traceidratio", "0.25", "TraceIDRatioBased{0.25}"},
		{"parentbased_traceidratio", "0.1", "ParentBased{root:TraceIDRatioBased{0.1},"},
		{"parentbased_always_on", "", "ParentBased{root:AlwaysOnSampler,"},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler,"},
	}
	for _, tt := range tests {
		t.Run(tt.sampler+" "+tt.arg, func(t *testing.T) {
			s, err := tracing.Sampler(config.Tracing{Sampler: tt.sampler, SamplerArg: tt.arg})
			require.NoError(t, err)
			assert.Contains(t, s.Description(), tt.want)
		})
	}
}
