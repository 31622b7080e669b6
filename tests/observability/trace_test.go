// Package observability_test checks what a learner looks at to see the system work: one trace
// per order across the four services and both brokers, and dashboards whose every metric exists.
package observability_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// span is one span a service exported, with the name of that service.
type span struct {
	service string
	*tracepb.Span
}

func (s span) id() string      { return hex.EncodeToString(s.SpanId) }
func (s span) parent() string  { return hex.EncodeToString(s.ParentSpanId) }
func (s span) traceID() string { return hex.EncodeToString(s.TraceId) }
func (s span) failed() bool    { return s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR }

func (s span) String() string {
	return fmt.Sprintf("%s: %s %q (span %s, parent %s)", s.service, s.Kind, s.Name, s.id(), s.parent())
}

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf), the endpoint every
// service exports to in these tests: what a collector or Jaeger would receive.
type otlpReceiver struct {
	server  *httptest.Server
	discard bool // count spans only, as a benchmark's load would not fit in memory
	mu      sync.Mutex
	spans   []span
	count   int
}

func startOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.server = httptest.NewServer(mux)
	t.Cleanup(r.server.Close)
	return r
}

func (r *otlpReceiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.count += len(ss.GetSpans())
			for _, s := range ss.GetSpans() {
				if !r.discard {
					r.spans = append(r.spans, span{service: service, Span: s})
				}
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of traceID received so far.
func (r *otlpReceiver) trace(traceID string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.traceID() == traceID {
			out = append(out, s)
		}
	}
	return out
}

// find returns the spans of service of kind whose name starts with prefix.
func find(spans []span, service string, kind tracepb.Span_SpanKind, prefix string) []span {
	var out []span
	for _, s := range spans {
		if s.service == service && s.Kind == kind && strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func childrenOf(spans []span, parent span) []span {
	var out []span
	for _, s := range spans {
		if s.parent() == parent.id() {
			out = append(out, s)
		}
	}
	return out
}

// TestOneOrderIsOneTrace places an order on the four services, each exporting its spans to the
// test's OTLP receiver, and checks the trace they make together: the HTTP request, the
// validator call on both sides, both publications, and the consumers under them. The notifier
// fails every send here, so its part of the trace shows each attempt, under the one before,
// ending with the dead-letter.
func TestOneOrderIsOneTrace(t *testing.T) {
	receiver := startOTLPReceiver(t)
	s := stack.New(t, brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t), brokertest.PostgresURL(t))
	suffix := stack.UniqueSuffix()
	topic, exchange, queue := "traces.topic."+suffix, "traces.exchange."+suffix, "traces.notifier."+suffix
	maps.Copy(s.Env["order-api"], map[string]string{"KAFKA_TOPIC": topic, "RABBITMQ_EXCHANGE": exchange})
	maps.Copy(s.Env["notifier"], map[string]string{
		"RABBITMQ_EXCHANGE":     exchange,
		"NOTIFIER_QUEUE":        queue,
		"NOTIFIER_FAILURE_RATE": "1",
		"NOTIFIER_MAX_ATTEMPTS": "3",
		"NOTIFIER_RETRY_DELAY":  "200ms",
		"NOTIFIER_JOURNAL_PATH": filepath.Join(t.TempDir(), "notifications.jsonl"),
	})
	maps.Copy(s.Env["analytics"], map[string]string{"KAFKA_TOPIC": topic, "ANALYTICS_GROUP_ID": "traces.analytics." + suffix})
	for _, env := range s.Env {
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.server.URL
		env["OTEL_BSP_SCHEDULE_DELAY"] = "100" // ms: export within the test's patience, not 5 s
	}
	s.StartAll()

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name        string
		traceparent string // what the client sends; empty: order-api starts the trace
	}{
		{"order-api starts the trace", ""},
		{"the caller's trace goes on", "00-" + callerTrace + "-" + callerSpan + "-01"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orderID := placeTracedOrder(t, s.APIAddr, fmt.Sprintf("trace-%s-%d", suffix, i), tt.traceparent)

			traceID := receiver.traceOf(t, orderID)
			if tt.traceparent != "" {
				require.Equal(t, callerTrace, traceID, "the request's traceparent names the trace")
			}
			var spans []span
			require.Eventually(t, func() bool {
				spans = receiver.trace(traceID)
				return len(find(spans, "notifier", tracepb.Span_SPAN_KIND_PRODUCER, "send "+queue+".dlx")) == 1 &&
					len(find(spans, "analytics", tracepb.Span_SPAN_KIND_CONSUMER, "process "+topic)) == 1
			}, 30*time.Second, 100*time.Millisecond, "the trace's spans reach the receiver; got:\n%s", describe(receiver.trace(traceID)))

			server := only(t, find(spans, "order-api", tracepb.Span_SPAN_KIND_SERVER, ""), "order-api's server span")
			assert.Equal(t, "POST /v1/orders", server.Name)
			if tt.traceparent != "" {
				assert.Equal(t, callerSpan, server.parent(), "a child of the caller's span")
			} else {
				assert.Empty(t, server.ParentSpanId, "the root of the trace")
			}

			client := only(t, find(spans, "order-api", tracepb.Span_SPAN_KIND_CLIENT, ""), "order-api's gRPC client span")
			assert.Contains(t, client.Name, "ValidateOrder")
			assert.Equal(t, server.id(), client.parent())
			validator := only(t, find(spans, "validator", tracepb.Span_SPAN_KIND_SERVER, ""), "the validator's server span")
			assert.Equal(t, client.Name, validator.Name)
			assert.Equal(t, client.id(), validator.parent(), "the validator's span is a child of the call")

			sendKafka := only(t, find(spans, "order-api", tracepb.Span_SPAN_KIND_PRODUCER, "send "+topic), "the Kafka producer span")
			sendRabbit := only(t, find(spans, "order-api", tracepb.Span_SPAN_KIND_PRODUCER, "send "+exchange), "the RabbitMQ producer span")
			assert.Equal(t, server.id(), sendKafka.parent())
			assert.Equal(t, server.id(), sendRabbit.parent())

			analytics := only(t, find(spans, "analytics", tracepb.Span_SPAN_KIND_CONSUMER, "process "+topic), "analytics' consumer span")
			assert.Equal(t, sendKafka.id(), analytics.parent(), "analytics processes what order-api sent")
			assert.False(t, analytics.failed())

			// Each attempt of the notifier is a consumer span under the send that queued it:
			// order-api's publish for the first, the notifier's retry for the others.
			attempts := find(spans, "notifier", tracepb.Span_SPAN_KIND_CONSUMER, "process "+queue)
			require.Len(t, attempts, 3, "NOTIFIER_MAX_ATTEMPTS attempts:\n%s", describe(spans))
			queuedBy := sendRabbit
			for n := range 3 {
				attempt := only(t, childrenOf(attempts, queuedBy), fmt.Sprintf("attempt %d, under %s", n+1, queuedBy))
				assert.True(t, attempt.failed(), "attempt %d failed, and its span says so", n+1)
				assert.Equal(t, int64(n+1), intAttribute(attempt, "app.notifier.attempt"))
				next := queue + ".retry"
				if n == 2 {
					next = queue + ".dlx" // the last attempt dead-letters
				}
				queuedBy = only(t, find(childrenOf(spans, attempt), "notifier", tracepb.Span_SPAN_KIND_PRODUCER, "send "+next),
					fmt.Sprintf("attempt %d's send to %s", n+1, next))
			}
		})
	}

	// Every log line written inside a span names its trace and span: the access log of each
	// request, and the notifier's dead-letter lines.
	for _, line := range []struct{ service, msg string }{{"order-api", "request"}, {"notifier", "message dead-lettered"}} {
		entries := logEntries(t, s.Procs[line.service], line.msg)
		require.NotEmpty(t, entries, "%s logged %q", line.service, line.msg)
		for _, e := range entries {
			assert.Regexp(t, `^[0-9a-f]{32}$`, e["trace_id"], "%s %q line: %v", line.service, line.msg, e)
			assert.Regexp(t, `^[0-9a-f]{16}$`, e["span_id"], "%s %q line: %v", line.service, line.msg, e)
		}
	}
}

// placeTracedOrder places one order, with traceparent when it is not empty, and returns its
// order_id.
func placeTracedOrder(t *testing.T, apiAddr, key, traceparent string) string {
	t.Helper()
	body := `{"customer_id": "c-trace", "items": [{"sku": "BOOK-001", "quantity": 1}]}`
	req, err := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/orders", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	res, err := stack.Client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(out))
	var accepted struct {
		OrderID string `json:"order_id"`
	}
	require.NoError(t, json.Unmarshal(out, &accepted))
	return accepted.OrderID
}

// traceOf returns the trace of the order orderID: the trace of order-api's server span that
// names the order in its app.order.id attribute, as a learner finds it in Jaeger.
func (r *otlpReceiver) traceOf(t *testing.T, orderID string) string {
	t.Helper()
	var traceID string
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range r.spans {
			for _, kv := range s.GetAttributes() {
				if s.service == "order-api" && s.Kind == tracepb.Span_SPAN_KIND_SERVER &&
					kv.GetKey() == ordersv1.SpanAttributeOrderID && kv.GetValue().GetStringValue() == orderID {
					traceID = s.traceID()
					return true
				}
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "order-api's span of order %s reaches the receiver", orderID)
	return traceID
}

// logEntries are the JSON log lines of p whose msg is msg.
func logEntries(t *testing.T, p *stack.Proc, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(p.Output(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e map[string]any
		if err := json.NewDecoder(bytes.NewReader([]byte(line))).Decode(&e); err == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

func intAttribute(s span, key string) int64 {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetIntValue()
		}
	}
	return -1
}

func only(t *testing.T, spans []span, what string) span {
	t.Helper()
	require.Len(t, spans, 1, "exactly one %s; got:\n%s", what, describe(spans))
	return spans[0]
}

func describe(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintln(&b, " ", s)
	}
	return b.String()
}
