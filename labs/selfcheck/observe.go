package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Step 7, observing the system: order-api counts its requests by route and status (the RED
// metrics), a request's W3C trace context travels with its event across Kafka, analytics
// reports its consumer lag, the admin ports serve Go's profiles — and, when Jaeger is given,
// the order's trace holds spans of all four services.

// observeRun is what the checks of step 7 share: the order they placed and its trace.
type observeRun struct {
	cfg     config
	traceID string         // of the traceparent the order was sent with
	order   *acceptedOrder // nil until accepted
	ends    map[int32]int64
}

// traceServices are the services whose spans one order's trace holds.
var traceServices = []string{"analytics", "notifier", "order-api", "validator"}

func observeChecks(cfg config) ([]check, func()) {
	o := &observeRun{cfg: cfg, traceID: randomHex(16)}
	checks := []check{
		{
			name: "order-api counts POST /v1/orders by status on " + cfg.apiAdmin + "/metrics (RED)",
			run:  o.redMetrics,
			hint: hintOrderAPI + "; its admin port (9101) serves /metrics",
		},
		{
			name: "the order's trace context crosses Kafka (traceparent on its record in " + ordersTopic + ")",
			run:  o.traceOnKafka,
			hint: "order-api writes the traceparent of the request on every record it produces (libs/kafka/tracing.go); " + hintKafka,
		},
		{
			name: "analytics reports its consumer lag on " + ordersTopic + ", drained to 0",
			run:  o.lagDrained,
			hint: hintAnalytics + "; its admin port (9104) serves analytics_consumer_lag",
		},
		{
			name: "order-api's admin port serves a CPU profile (/debug/pprof/profile)",
			run:  o.cpuProfile,
			hint: hintOrderAPI + "; /debug/pprof/ is on the admin port (9101), never on 8080",
		},
	}
	if cfg.jaeger != "" {
		checks = append(checks, check{
			name: "Jaeger at " + cfg.jaeger + " has the order's trace, with spans of " + strings.Join(traceServices, ", "),
			run:  o.traceInJaeger,
			hint: "the services send spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set: start `make jaeger` before " +
				"`make run` (or restart each service with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318); " +
				"in the cluster, check the jaeger resource in Tilt (it forwards localhost:16686)",
		})
	}
	return checks, func() {}
}

// randomHex returns n random bytes in hex: a trace ID (16) or a span ID (8).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redMetrics places an order, with a traceparent of the check's own, and reads order-api's
// request counter and duration histogram for POST /v1/orders 202 before and after.
func (o *observeRun) redMetrics(ctx context.Context) (string, error) {
	series := map[string]string{"method": "POST", "route": "/v1/orders", "status": "202"}
	before, err := scrape(ctx, o.cfg.apiAdmin)
	if err != nil {
		return "", err
	}
	o.ends, _ = endOffsets(ctx, o.cfg.kafka) // for the next check; it says so if they are missing

	body, err := json.Marshal(sampleOrder())
	if err != nil {
		return "", err
	}
	a, err := do(ctx, http.MethodPost, o.cfg.orderAPI+"/v1/orders", body, map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": newIdempotencyKey(),
		"traceparent":     "00-" + o.traceID + "-" + randomHex(8) + "-01",
	})
	if err != nil {
		return "", fmt.Errorf("place an order: %w", err)
	}
	if a.status != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/orders answered %d, want 202: %s", a.status, short(a.body))
	}
	var placed acceptedOrder
	if err := json.Unmarshal(a.body, &placed); err != nil || placed.OrderID == "" {
		return "", fmt.Errorf("POST /v1/orders: 202 body is not an order: %s", short(a.body))
	}
	o.order = &placed

	after, err := scrape(ctx, o.cfg.apiAdmin)
	if err != nil {
		return "", err
	}
	n0, n1 := before.value("http_requests_total", series), after.value("http_requests_total", series)
	if n1 <= n0 {
		return "", fmt.Errorf(`http_requests_total{method="POST",route="/v1/orders",status="202"} is %g, as before the order`, n1)
	}
	count := after.value("http_request_duration_seconds_count", series) - before.value("http_request_duration_seconds_count", series)
	sum := after.value("http_request_duration_seconds_sum", series) - before.value("http_request_duration_seconds_sum", series)
	if count <= 0 {
		return "", errors.New(`http_request_duration_seconds has no new observation for POST /v1/orders 202`)
	}
	took := time.Duration(sum / count * float64(time.Second)).Round(time.Millisecond)
	return fmt.Sprintf("requests %g -> %g, this one took %s", n0, n1, took), nil
}

// traceOnKafka reads the order's record back from its partition, from where the partition
// ended before the order was placed, and wants the check's trace ID in its traceparent header.
func (o *observeRun) traceOnKafka(ctx context.Context) (string, error) {
	if o.order == nil {
		return "", blocked("an accepted order")
	}
	if len(o.ends) == 0 {
		return "", errors.New("could not read the end offsets of " + ordersTopic + " before placing the order")
	}
	p := partitionOf(o.order.OrderID, len(o.ends))
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": o.cfg.kafka,
		// Required by the client; partitions are assigned by hand, so the group never forms
		// and nothing is committed.
		"group.id":           "selfcheck-observe",
		"enable.auto.commit": false,
		"log_level":          2,
	})
	if err != nil {
		return "", fmt.Errorf("create a Kafka consumer: %w", err)
	}
	defer c.Close()
	topic := ordersTopic
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: p, Offset: kafka.Offset(o.ends[p])}}); err != nil {
		return "", fmt.Errorf("assign partition %d: %w", p, err)
	}
	var found *kafka.Message
	err = poll(ctx, func(ctx context.Context) (bool, error) {
		m, err := c.ReadMessage(pollInterval)
		if err != nil {
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.IsTimeout() {
				return false, fmt.Errorf("no record of order %s in partition %d", o.order.OrderID, p)
			}
			return false, err
		}
		if string(m.Key) == o.order.OrderID {
			found = m
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	for _, h := range found.Headers {
		if h.Key != "traceparent" {
			continue
		}
		if parts := strings.Split(string(h.Value), "-"); len(parts) == 4 && parts[1] == o.traceID {
			return fmt.Sprintf("order %s, partition %d offset %d: traceparent %s", o.order.OrderID, p, found.TopicPartition.Offset, h.Value), nil
		}
		return "", fmt.Errorf("the record's traceparent %s is not of trace %s, which the request carried", h.Value, o.traceID)
	}
	return "", fmt.Errorf("the record of order %s has no traceparent header", o.order.OrderID)
}

// endOffsets returns, per partition of the orders topic, the offset its next record gets.
func endOffsets(ctx context.Context, bootstrap string) (map[int32]int64, error) {
	k := &kafkaRun{cfg: config{kafka: bootstrap}}
	defer k.close()
	if _, err := k.brokerAnswers(ctx); err != nil {
		return nil, err
	}
	if _, err := k.topicExists(ctx); err != nil {
		return nil, err
	}
	topic := ordersTopic
	var partitions []kafka.TopicPartition
	for _, p := range k.partitions {
		partitions = append(partitions, kafka.TopicPartition{Topic: &topic, Partition: p})
	}
	return k.endOffsets(ctx, partitions)
}

// lagDrained waits until analytics reports a lag of 0 on every partition of the orders topic
// it owns: it refreshes the gauge every LAG_REFRESH_INTERVAL (5s by default).
func (o *observeRun) lagDrained(ctx context.Context) (string, error) {
	var lags map[string]float64
	var down error // analytics does not answer: no use waiting
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		m, scrapeErr := scrape(ctx, o.cfg.statsAdmin)
		if scrapeErr != nil {
			down = scrapeErr
			return true, scrapeErr // done: poll stops, and down says why
		}
		lags = map[string]float64{}
		var total float64
		for _, s := range m {
			if s.name == "analytics_consumer_lag" && s.labels["topic"] == ordersTopic {
				lags[s.labels["partition"]] = s.value
				total += s.value
			}
		}
		switch {
		case len(lags) == 0:
			return false, errors.New("analytics_consumer_lag has no series for " + ordersTopic + ": analytics owns no partition (yet)")
		case total > 0:
			return false, fmt.Errorf("analytics is %g record(s) behind: %s", total, formatLags(lags))
		}
		return true, nil
	})
	if down != nil {
		return "", down
	}
	if err != nil {
		return "", err
	}
	return formatLags(lags), nil
}

func formatLags(lags map[string]float64) string {
	parts := make([]string, 0, len(lags))
	for p, v := range lags {
		parts = append(parts, fmt.Sprintf("p%s=%g", p, v))
	}
	slices.Sort(parts)
	return "lag " + strings.Join(parts, " ")
}

// cpuProfile asks order-api for a one-second CPU profile: a gzipped protobuf that
// `go tool pprof` reads.
func (o *observeRun) cpuProfile(ctx context.Context) (string, error) {
	start := time.Now()
	a, err := do(ctx, http.MethodGet, o.cfg.apiAdmin+"/debug/pprof/profile?seconds=1", nil, nil)
	if err != nil {
		return "", err
	}
	if a.status != http.StatusOK {
		return "", fmt.Errorf("GET /debug/pprof/profile?seconds=1 answered %d: %s", a.status, short(a.body))
	}
	if !bytes.HasPrefix(a.body, []byte{0x1f, 0x8b}) {
		return "", fmt.Errorf("the answer is not a gzipped profile: %s", short(a.body))
	}
	return fmt.Sprintf("%d bytes after %s", len(a.body), time.Since(start).Round(100*time.Millisecond)), nil
}

// traceInJaeger asks Jaeger's query API (api/v3) for the order's trace until it holds spans of
// every service: they export their spans in batches, every few seconds.
func (o *observeRun) traceInJaeger(ctx context.Context) (string, error) {
	if o.order == nil {
		return "", blocked("an accepted order")
	}
	var spans int
	var seen []string
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		a, err := do(ctx, http.MethodGet, o.cfg.jaeger+"/api/v3/traces/"+o.traceID, nil, nil)
		if err != nil {
			return false, err
		}
		if a.status == http.StatusNotFound {
			return false, fmt.Errorf("no trace %s in Jaeger (yet)", o.traceID)
		}
		if a.status != http.StatusOK {
			return false, fmt.Errorf("GET /api/v3/traces/%s answered %d: %s", o.traceID, a.status, short(a.body))
		}
		if spans, seen, err = traceSpans(a.body); err != nil {
			return false, err
		}
		for _, s := range traceServices {
			if !slices.Contains(seen, s) {
				return false, fmt.Errorf("trace %s has %d span(s), none of %s (spans of %s)", o.traceID, spans, s, strings.Join(seen, ", "))
			}
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("trace %s: %d spans of %s", o.traceID, spans, strings.Join(seen, ", ")), nil
}

// traceSpans counts the spans of an api/v3 answer (OTLP JSON under "result") and lists the
// services (resource attribute service.name) they come from.
func traceSpans(body []byte) (int, []string, error) {
	var res struct {
		Result struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []struct {
						Key   string `json:"key"`
						Value struct {
							StringValue string `json:"stringValue"`
						} `json:"value"`
					} `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []json.RawMessage `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, nil, fmt.Errorf("the answer is not a trace: %w: %s", err, short(body))
	}
	var spans int
	var services []string
	for _, rs := range res.Result.ResourceSpans {
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" && !slices.Contains(services, a.Value.StringValue) {
				services = append(services, a.Value.StringValue)
			}
		}
		for _, ss := range rs.ScopeSpans {
			spans += len(ss.Spans)
		}
	}
	slices.Sort(services)
	return spans, services, nil
}

// sample is one line of Prometheus' text format: name{labels} value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

// value is the value of the series name with exactly labels; 0 when there is none.
func (ss samples) value(name string, labels map[string]string) float64 {
	for _, s := range ss {
		if s.name == name && len(s.labels) == len(labels) {
			match := true
			for k, v := range labels {
				if s.labels[k] != v {
					match = false
					break
				}
			}
			if match {
				return s.value
			}
		}
	}
	return 0
}

// scrape reads an admin port's /metrics.
func scrape(ctx context.Context, admin string) (samples, error) {
	a, err := do(ctx, http.MethodGet, admin+"/metrics", nil, nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics answered %d: %s", admin, a.status, short(a.body))
	}
	return parseMetrics(a.body)
}

// parseMetrics reads Prometheus' text exposition format (the prometheus/common parser) into
// samples as the format writes them: a histogram is its _bucket (with le), _sum and _count
// series, a summary its quantiles, _sum and _count.
func parseMetrics(body []byte) (samples, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var out samples
	add := func(name string, m *dto.Metric, value float64, extra ...string) {
		labels := make(map[string]string, len(m.GetLabel())+1)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(extra); i += 2 {
			labels[extra[i]] = extra[i+1]
		}
		out = append(out, sample{name: name, labels: labels, value: value})
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", m, float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				add(name+"_sum", m, h.GetSampleSum())
				add(name+"_count", m, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(name, m, q.GetValue(), "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))
				}
				add(name+"_sum", m, sm.GetSampleSum())
				add(name+"_count", m, float64(sm.GetSampleCount()))
			}
		}
	}
	return out, nil
}
