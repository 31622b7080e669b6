package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func TestParseArgs(t *testing.T) {
	noEnv := func(string) string { return "" }
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		step    string
		check   func(t *testing.T, cfg config)
		wantErr string
	}{
		{name: "a step by number", args: []string{"3"}, step: "rabbitmq", check: func(t *testing.T, cfg config) {
			assert.Equal(t, "http://127.0.0.1:8080", cfg.orderAPI)
			assert.Equal(t, "http://127.0.0.1:8081", cfg.stats)
			assert.Equal(t, "127.0.0.1:50051", cfg.validator)
			assert.Equal(t, "http://127.0.0.1:9103", cfg.notifier)
			assert.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", cfg.rabbitmq)
			assert.Equal(t, "127.0.0.1:9092", cfg.kafka)
			assert.Equal(t, "backend-prep", cfg.namespace)
			assert.Equal(t, 30*time.Second, cfg.timeout)
		}},
		{name: "a step by name, in any case", args: []string{"Kafka"}, step: "kafka"},
		{name: "flags before the step", args: []string{"--timeout", "1m", "5"}, step: "grpc", check: func(t *testing.T, cfg config) {
			assert.Equal(t, time.Minute, cfg.timeout)
		}},
		{name: "flags after the step", args: []string{"system", "--order-api", "127.0.0.1:18080/", "--stats=http://10.0.0.1:8081"}, step: "system",
			check: func(t *testing.T, cfg config) {
				assert.Equal(t, "http://127.0.0.1:18080", cfg.orderAPI, "a bare host:port is an http URL; no trailing slash")
				assert.Equal(t, "http://10.0.0.1:8081", cfg.stats)
			}},
		{name: "environment fallbacks", args: []string{"4"}, step: "kafka",
			env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "RABBITMQ_URL": "amqp://u:p@h:5672/", "SELFCHECK_TIMEOUT": "45s"},
			check: func(t *testing.T, cfg config) {
				assert.Equal(t, "kafka:9092", cfg.kafka)
				assert.Equal(t, "amqp://u:p@h:5672/", cfg.rabbitmq)
				assert.Equal(t, 45*time.Second, cfg.timeout)
			}},
		{name: "a flag wins over the environment", args: []string{"4", "--kafka", "flag:9092"}, step: "kafka",
			env:   map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "env:9092"},
			check: func(t *testing.T, cfg config) { assert.Equal(t, "flag:9092", cfg.kafka) }},
		{name: "no step", args: nil, wantErr: "which step?"},
		{name: "step 7 by name", args: []string{"observe", "--jaeger", "127.0.0.1:16686/"}, step: "observe", check: func(t *testing.T, cfg config) {
			assert.Equal(t, "http://127.0.0.1:9101", cfg.apiAdmin)
			assert.Equal(t, "http://127.0.0.1:9104", cfg.statsAdmin)
			assert.Equal(t, "http://127.0.0.1:16686", cfg.jaeger)
		}},
		{name: "no Jaeger unless asked", args: []string{"7"}, step: "observe", check: func(t *testing.T, cfg config) {
			assert.Empty(t, cfg.jaeger)
			checks, _ := observeChecks(cfg)
			assert.Len(t, checks, 4, "no trace check without --jaeger")
		}},
		{name: "an unknown step", args: []string{"9"}, wantErr: `unknown step "9"`},
		{name: "step 8 by name", args: []string{"replicate"}, step: "replicate", check: func(t *testing.T, cfg config) {
			assert.Equal(t, "scripts/brokers rabbitmqctl", cfg.rabbitmqctl)
		}},
		{name: "two steps", args: []string{"3", "4"}, wantErr: "unexpected arguments"},
		{name: "an unknown flag", args: []string{"3", "--verbose"}, wantErr: "flag provided but not defined"},
		{name: "a timeout of zero", args: []string{"3", "--timeout", "0s"}, wantErr: "positive duration"},
		{name: "a bad timeout in the environment", args: []string{"3"}, env: map[string]string{"SELFCHECK_TIMEOUT": "soon"}, wantErr: "SELFCHECK_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			s, cfg, err := parseArgs(tc.args, getenv, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.step, s.name)
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestRunChecksPrintsALinePerCheckAndAHintPerFailure(t *testing.T) {
	checks := []check{
		{name: "a check with a detail", run: func(context.Context) (string, error) { return "1 consumer", nil }},
		{name: "a check without one", run: func(context.Context) (string, error) { return "", nil }},
		{name: "a failing check", hint: "its own hint", run: func(context.Context) (string, error) {
			return "", errors.New("connection refused")
		}},
		{name: "a failure that knows better", hint: "not this one", run: func(context.Context) (string, error) {
			return "", withHint(errors.New("503"), "a better hint")
		}},
		{name: "a check that needs an earlier one", hint: "not this one", run: func(context.Context) (string, error) {
			return "", blocked("an accepted order")
		}},
	}
	var out bytes.Buffer
	r := runChecks(context.Background(), &out, checks)

	assert.Equal(t, report{passed: 2, failed: 3}, r)
	assert.Equal(t, strings.Join([]string{
		"PASS  a check with a detail (1 consumer)",
		"PASS  a check without one",
		"FAIL  a failing check: connection refused",
		"      hint: its own hint",
		"FAIL  a failure that knows better: 503",
		"      hint: a better hint",
		"FAIL  a check that needs an earlier one: not checked: it needs an accepted order, see the failure above",
		"      hint: fix the first failure of this step; this check builds on it",
		"",
	}, "\n"), out.String())
	assert.Equal(t, "step 6 (system): 3 of 5 checks failed", r.summary(step{number: 6, name: "system"}))
	assert.Equal(t, "step 6 (system): all 2 checks passed", report{passed: 2}.summary(step{number: 6, name: "system"}))
}

func TestExitStatus(t *testing.T) {
	down := unusedAddr(t)
	cases := []struct {
		name   string
		args   []string
		status int
		output string
	}{
		{"help", []string{"--help"}, 0, "Usage: go run ./labs/selfcheck <step> [flags]"},
		{"usage error", []string{"9"}, 2, `unknown step "9"`},
		{"a failed check", []string{"grpc", "--validator", down, "--timeout", "10s"}, 1,
			"FAIL  the validator at " + down + " reports SERVING on the gRPC health service: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tc.args, func(string) string { return "" }, &stdout, &stderr)
			assert.Equal(t, tc.status, status)
			assert.Contains(t, stdout.String()+stderr.String(), tc.output)
		})
	}
}

// unusedAddr returns a local address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// The partition of a key must be the one the producer picks, or step 4 would wait for an
// order in a partition it guessed wrong.
func TestPartitionOfMatchesTheProducer(t *testing.T) {
	// Kafka's own test vectors for Utils.murmur2 (UtilsTest.testMurmur2).
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		assert.Equal(t, want, int32(murmur2([]byte(key))), "murmur2(%q)", key)
	}
	// Where librdkafka's murmur2_random partitioner put these keys on a 3-partition topic.
	for key, want := range map[string]int32{"key-1": 0, "key-2": 2, "key-3": 2, "key-4": 0, "key-7": 1, "key-8": 1} {
		assert.Equal(t, want, partitionOf(key, 3), "partition of %q", key)
	}
}

func TestCheckAccepted(t *testing.T) {
	sent := orderRequest{CustomerID: "selfcheck", Items: []orderItem{{SKU: "BOOK-001", Quantity: 2}}}
	good := func() acceptedOrder {
		return acceptedOrder{OrderID: "o-1", Status: "accepted", TotalCents: 2598, Currency: "USD",
			Items: []pricedItem{{SKU: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}}}
	}
	cases := []struct {
		name    string
		change  func(o *acceptedOrder)
		wantErr string
	}{
		{"the contract's answer", func(*acceptedOrder) {}, ""},
		{"no order_id", func(o *acceptedOrder) { o.OrderID = "" }, "no order_id"},
		{"another status", func(o *acceptedOrder) { o.Status = "pending" }, `status "pending"`},
		{"no currency", func(o *acceptedOrder) { o.Currency = "" }, "no currency"},
		{"a line missing", func(o *acceptedOrder) { o.Items = nil }, "0 items for 1 sent"},
		{"another SKU", func(o *acceptedOrder) { o.Items[0].SKU = "BOOK-002" }, "items[0] is 2 x BOOK-002"},
		{"a free item", func(o *acceptedOrder) { o.Items[0].UnitPriceCents = 0 }, "unit_price_cents is 0"},
		{"a wrong line total", func(o *acceptedOrder) { o.Items[0].LineTotalCents = 1299 }, "line_total_cents is 1299"},
		{"a wrong total", func(o *acceptedOrder) { o.TotalCents = 2599 }, "total_cents is 2599"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.change(&o)
			err := checkAccepted(o, sent)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestSlowValidatorHintsAtTheDelay(t *testing.T) {
	err := slowValidator(codes.DeadlineExceeded, errors.New("ListProducts: context deadline exceeded"))
	var h *hinted
	require.ErrorAs(t, err, &h)
	assert.Contains(t, h.hint, "VALIDATOR_DELAY")

	other := errors.New("ValidateOrder: connection refused")
	assert.Same(t, other, slowValidator(codes.Unavailable, other), "other failures keep the check's hint")
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics([]byte(`# HELP http_requests_total HTTP requests handled.
# TYPE http_requests_total counter
http_requests_total{method="POST",route="/v1/orders",status="202"} 12
http_requests_total{method="POST",route="/v1/orders",status="422"} 2
http_request_duration_seconds_sum{method="POST",route="/v1/orders",status="202"} 0.096
analytics_consumer_lag{partition="0",topic="orders.v1"} 3
go_goroutines 42
`))
	require.NoError(t, err)
	series := map[string]string{"method": "POST", "route": "/v1/orders", "status": "202"}
	assert.Equal(t, 12.0, m.value("http_requests_total", series))
	assert.Equal(t, 0.096, m.value("http_request_duration_seconds_sum", series))
	assert.Equal(t, 0.0, m.value("http_requests_total", map[string]string{"method": "GET"}), "no such series")
	assert.Equal(t, 42.0, m.value("go_goroutines", map[string]string{}))
	assert.Equal(t, 3.0, m.value("analytics_consumer_lag", map[string]string{"partition": "0", "topic": "orders.v1"}))

	_, err = parseMetrics([]byte("a_metric_without_a_value\n"))
	assert.Error(t, err)

	h, err := parseMetrics([]byte(`# HELP http_request_duration_seconds Time to handle an HTTP request.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/v1/orders",le="0.25"} 3
http_request_duration_seconds_bucket{route="/v1/orders",le="+Inf"} 4
http_request_duration_seconds_sum{route="/v1/orders"} 1.5
http_request_duration_seconds_count{route="/v1/orders"} 4
`))
	require.NoError(t, err)
	route := map[string]string{"route": "/v1/orders"}
	assert.Equal(t, 4.0, h.value("http_request_duration_seconds_count", route), "a histogram keeps its series' names")
	assert.Equal(t, 1.5, h.value("http_request_duration_seconds_sum", route))
	assert.Equal(t, 3.0, h.value("http_request_duration_seconds_bucket", map[string]string{"route": "/v1/orders", "le": "0.25"}))
}

func TestTraceSpans(t *testing.T) {
	// The shape of Jaeger's GET /api/v3/traces/{trace_id} (OTLP JSON under "result").
	body := `{"result":{"resourceSpans":[
	  {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"order-api"}}]},
	   "scopeSpans":[{"scope":{"name":"otelhttp"},"spans":[{"name":"POST /v1/orders"},{"name":"send orders.v1"}]}]},
	  {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"analytics"}}]},
	   "scopeSpans":[{"spans":[{"name":"process orders.v1"}]}]}]}}`
	spans, services, err := traceSpans([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, 3, spans)
	assert.Equal(t, []string{"analytics", "order-api"}, services)

	_, _, err = traceSpans([]byte("not json"))
	assert.Error(t, err)
}
