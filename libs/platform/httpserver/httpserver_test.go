package httpserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// testServer is a started server with the logs and metrics it produced.
type testServer struct {
	*httpserver.Server
	logs *observer.ObservedLogs
	reg  *prometheus.Registry
	url  string
}

func startServer(t *testing.T, routes httpserver.RoutesFunc) *testServer {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	e, err := httpserver.New(zap.New(core), reg)
	require.NoError(t, err)
	routes.Register(e)
	s := httpserver.NewServer(httpserver.Config{Addr: "127.0.0.1:0"}, e, zap.New(core))
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return &testServer{Server: s, logs: logs, reg: reg, url: "http://" + s.Addr().String()}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// requestLogs returns the access log entries.
func requestLogs(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterMessage("request").All()
}

func echoRequestID(e *echo.Echo) {
	e.GET("/id", func(c echo.Context) error {
		return c.String(http.StatusOK, logging.RequestID(c.Request().Context()))
	})
}

func TestRequestID(t *testing.T) {
	srv := startServer(t, echoRequestID)

	t.Run("generated when the client sends none", func(t *testing.T) {
		resp := do(t, http.MethodGet, srv.url+"/id", nil)
		id := resp.header.Get("X-Request-Id")
		assert.Len(t, id, 32)
		assert.Equal(t, id, resp.body, "the handler sees the same ID in its context")
	})

	t.Run("kept when the client sends one", func(t *testing.T) {
		resp := do(t, http.MethodGet, srv.url+"/id", map[string]string{"X-Request-Id": "client-chosen-7"})
		assert.Equal(t, "client-chosen-7", resp.header.Get("X-Request-Id"))
		assert.Equal(t, "client-chosen-7", resp.body)

		entries := requestLogs(srv.logs)
		require.NotEmpty(t, entries)
		assert.Equal(t, "client-chosen-7", entries[len(entries)-1].ContextMap()["request_id"])
	})
}

// Every answer names the host that gave it, the problem responses of errors too.
func TestServedByNamesTheHost(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	srv := startServer(t, echoRequestID)

	for path, status := range map[string]int{"/id": http.StatusOK, "/nowhere": http.StatusNotFound} {
		resp := do(t, http.MethodGet, srv.url+path, nil)
		assert.Equal(t, status, resp.status, path)
		assert.Equal(t, host, resp.header.Get(httpserver.ServedByHeader), path)
	}
}

func TestAccessLog(t *testing.T) {
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/v1/orders/:id", func(c echo.Context) error { return c.String(http.StatusOK, "order "+c.Param("id")) })
	})

	do(t, http.MethodGet, srv.url+"/v1/orders/o-1", map[string]string{"X-Request-Id": "r-1"})

	entries := requestLogs(srv.logs)
	require.Len(t, entries, 1)
	assert.Equal(t, zapcore.InfoLevel, entries[0].Level)
	fields := entries[0].ContextMap()
	assert.Equal(t, "GET", fields["method"])
	assert.Equal(t, "/v1/orders/o-1", fields["path"])
	assert.Equal(t, "/v1/orders/:id", fields["route"])
	assert.EqualValues(t, 200, fields["status"])
	assert.EqualValues(t, len("order o-1"), fields["bytes"])
	assert.Equal(t, "r-1", fields["request_id"])
	assert.Contains(t, fields, "latency")
	assert.Equal(t, "http", entries[0].LoggerName)
}

func TestEveryRequestIsASpanNamedByItsRoute(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	prevProvider, prevPropagator := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevProvider)
		otel.SetTextMapPropagator(prevPropagator)
	})
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/v1/orders/:id", func(c echo.Context) error { return c.String(http.StatusOK, "order "+c.Param("id")) })
	})

	resp := do(t, http.MethodGet, srv.url+"/v1/orders/o-1",
		map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	require.Equal(t, http.StatusOK, resp.status)
	do(t, http.MethodGet, srv.url+"/nowhere", nil)

	spans := recorder.Ended()
	require.Len(t, spans, 2)
	order := spans[0]
	assert.Equal(t, "GET /v1/orders/:id", order.Name(), "the route template, not the path")
	assert.Equal(t, trace.SpanKindServer, order.SpanKind())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", order.SpanContext().TraceID().String(), "the caller's trace")
	assert.Equal(t, "00f067aa0ba902b7", order.Parent().SpanID().String(), "a child of the caller's span")
	assert.Contains(t, order.Attributes(), attribute.String("http.route", "/v1/orders/:id"))
	assert.Equal(t, "GET", spans[1].Name(), "no route, no template: the method alone, as the conventions say")
	assert.False(t, spans[1].Parent().IsValid(), "a request without traceparent starts a trace")

	entries := requestLogs(srv.logs)
	require.Len(t, entries, 2)
	assert.Equal(t, order.SpanContext().TraceID().String(), entries[0].ContextMap()["trace_id"], "the access log names the trace")
	assert.Equal(t, order.SpanContext().SpanID().String(), entries[0].ContextMap()["span_id"])
}

func TestTheProductPortServesNoProfiles(t *testing.T) {
	srv := startServer(t, echoRequestID)

	assert.Equal(t, http.StatusNotFound, do(t, http.MethodGet, srv.url+"/debug/pprof/", nil).status,
		"profiles are on the admin port only")
}

func TestPanicBecomes500AndServerKeepsServing(t *testing.T) {
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/boom", func(echo.Context) error { panic("secret internal state") })
		e.GET("/ok", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	})

	resp := do(t, http.MethodGet, srv.url+"/boom", nil)

	assert.Equal(t, http.StatusInternalServerError, resp.status)
	assert.Equal(t, httpserver.ProblemContentType, resp.header.Get("Content-Type"))
	assert.JSONEq(t, `{"type":"about:blank","title":"Internal Server Error","status":500}`, resp.body)
	assert.NotContains(t, resp.body, "secret", "panic values stay in the log")

	assert.Equal(t, http.StatusNoContent, do(t, http.MethodGet, srv.url+"/ok", nil).status)

	errorEntries := srv.logs.FilterLevelExact(zapcore.ErrorLevel).All()
	require.Len(t, errorEntries, 1, "the panic is logged once")
	fields := errorEntries[0].ContextMap()
	assert.Equal(t, "request", errorEntries[0].Message)
	assert.EqualValues(t, 500, fields["status"])
	assert.Equal(t, "panic: secret internal state", fields["error"])
	assert.Contains(t, fields["stack"], "httpserver_test.TestPanicBecomes500AndServerKeepsServing")
}

func TestErrorsBecomeProblems(t *testing.T) {
	srv := startServer(t, func(e *echo.Echo) {
		e.POST("/http-error", func(echo.Context) error {
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send application/json")
		})
		e.POST("/problem", func(echo.Context) error {
			return &httpserver.Problem{Type: "https://example.com/probs/out-of-stock", Title: "Out of stock", Status: http.StatusConflict, Detail: "BOOK-001 is sold out"}
		})
		e.POST("/unexpected", func(echo.Context) error { return errors.New("db password wrong") })
	})

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"echo HTTP error keeps its message as detail", http.MethodPost, "/http-error", 415,
			`{"type":"about:blank","title":"Unsupported Media Type","status":415,"detail":"send application/json"}`},
		{"a returned Problem is sent as is", http.MethodPost, "/problem", 409,
			`{"type":"https://example.com/probs/out-of-stock","title":"Out of stock","status":409,"detail":"BOOK-001 is sold out"}`},
		{"an unexpected error is a bare 500", http.MethodPost, "/unexpected", 500,
			`{"type":"about:blank","title":"Internal Server Error","status":500}`},
		{"unknown route", http.MethodGet, "/nope", 404,
			`{"type":"about:blank","title":"Not Found","status":404}`},
		{"wrong method", http.MethodGet, "/problem", 405,
			`{"type":"about:blank","title":"Method Not Allowed","status":405}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, tt.method, srv.url+tt.path, nil)
			assert.Equal(t, tt.wantStatus, resp.status)
			assert.Equal(t, httpserver.ProblemContentType, resp.header.Get("Content-Type"))
			assert.JSONEq(t, tt.wantBody, resp.body)
		})
	}

	unexpected := srv.logs.FilterField(zap.String("path", "/unexpected")).All()
	require.Len(t, unexpected, 1)
	assert.Equal(t, zapcore.ErrorLevel, unexpected[0].Level)
	assert.Equal(t, "db password wrong", unexpected[0].ContextMap()["error"], "the cause is logged, not sent")
}

// counts returns http_requests_total by "method route status".
func counts(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			out[labelString(m)] = m.GetCounter().GetValue()
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	byName := map[string]string{}
	for _, l := range m.GetLabel() {
		byName[l.GetName()] = l.GetValue()
	}
	return strings.Join([]string{byName["method"], byName["route"], byName["status"]}, " ")
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/v1/orders/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
		e.GET("/boom", func(echo.Context) error { panic("boom") })
	})

	do(t, http.MethodGet, srv.url+"/v1/orders/o-1", nil)
	do(t, http.MethodGet, srv.url+"/v1/orders/o-2", nil)
	do(t, http.MethodGet, srv.url+"/boom", nil)
	do(t, http.MethodGet, srv.url+"/no/such/thing", nil)

	assert.Equal(t, map[string]float64{
		"GET /v1/orders/:id 200": 2,
		"GET /boom 500":          1,
		"GET unmatched 404":      1,
	}, counts(t, srv.reg))

	families, err := srv.reg.Gather()
	require.NoError(t, err)
	var histogram *dto.MetricFamily
	for _, f := range families {
		if f.GetName() == "http_request_duration_seconds" {
			histogram = f
		}
	}
	require.NotNil(t, histogram)
	var observed uint64
	for _, m := range histogram.GetMetric() {
		observed += m.GetHistogram().GetSampleCount()
	}
	assert.EqualValues(t, 4, observed)
}

func TestNewFailsOnAShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := httpserver.New(zap.NewNop(), reg)
	require.NoError(t, err)

	_, err = httpserver.New(zap.NewNop(), reg)
	assert.ErrorContains(t, err, "register metrics")
}

func TestStopFinishesInFlightRequests(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/slow", func(c echo.Context) error {
			close(entered)
			<-release
			return c.String(http.StatusOK, "done")
		})
	})

	got := make(chan response, 1)
	go func() { got <- do(t, http.MethodGet, srv.url+"/slow", nil) }()
	<-entered

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- srv.Stop(ctx)
	}()

	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", srv.Addr().String(), 100*time.Millisecond)
		if err == nil {
			_ = conn.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the listener closes first")
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the in-flight request finished: %v", err)
	default:
	}

	close(release)
	resp := <-got
	assert.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "done", resp.body)
	assert.NoError(t, <-stopped)
}

func TestStopCutsOffRequestsPastTheDeadline(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/stuck", func(c echo.Context) error {
			close(entered)
			<-release
			return c.NoContent(http.StatusOK)
		})
	})

	clientErr := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.url + "/stuck")
		if err == nil {
			_ = resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := srv.Stop(ctx)

	assert.ErrorContains(t, err, "cut off")
	assert.Error(t, <-clientErr, "the client sees its connection closed")
	assert.NoError(t, ctx.Err(), "Stop returned before the caller's deadline, leaving time for other hooks")
}

func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	e, err := httpserver.New(zap.NewNop(), prometheus.NewRegistry())
	require.NoError(t, err)

	s := httpserver.NewServer(httpserver.Config{Addr: taken.Addr().String()}, e, zap.NewNop())

	assert.ErrorContains(t, s.Start(context.Background()), "httpserver: listen")
	assert.Nil(t, s.Addr())
}

// rawRequest sends a GET whose head (request line, headers and the blank line) is exactly
// headBytes long, padding it with an X-Pad header, and returns the status line of the answer.
func rawRequest(t *testing.T, addr string, headBytes int) string {
	t.Helper()
	const start = "GET /ok HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: "
	const end = "\r\n\r\n"
	pad := headBytes - len(start) - len(end)
	require.Positive(t, pad)
	head := start + strings.Repeat("a", pad) + end
	require.Len(t, head, headBytes)

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	// net/http answers a head that is too big as soon as it has read past the limit and then
	// closes the connection, so the rest of a large head may fail to be written, and the close
	// may reset the connection after the answer: what counts is the answer.
	_, _ = io.WriteString(conn, head)
	answer, _ := io.ReadAll(conn)
	statusLine, _, _ := strings.Cut(string(answer), "\r\n")
	return statusLine
}

func TestRequestHeadsOver16KiBGet431(t *testing.T) {
	srv := startServer(t, func(e *echo.Echo) {
		e.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	})
	addr := srv.Addr().String()

	tests := []struct {
		name      string
		headBytes int
		want      string
	}{
		{"a small request", 200, "HTTP/1.1 200 OK"},
		{"a head of exactly 16 KiB", httpserver.MaxHeaderBytes, "HTTP/1.1 200 OK"},
		{"one byte more", httpserver.MaxHeaderBytes + 1, "HTTP/1.1 431 Request Header Fields Too Large"},
		{"1 MiB of headers", 1 << 20, "HTTP/1.1 431 Request Header Fields Too Large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, rawRequest(t, addr, tt.headBytes))
		})
	}

	// The same through an ordinary client: a 16 KiB header value makes the head too big.
	big := do(t, http.MethodGet, srv.url+"/ok", map[string]string{"X-Big": strings.Repeat("b", 16<<10)})
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, big.status)
	normal := do(t, http.MethodGet, srv.url+"/ok", map[string]string{"X-Normal": "value"})
	assert.Equal(t, http.StatusOK, normal.status)
	assert.Equal(t, "ok", normal.body)
}
