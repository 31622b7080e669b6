package observability_test

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// tracingCostRound is how long each configuration is loaded per round; the rounds alternate the
// configurations (A B C A B C) so that drift of the box (a broker compacting, the page cache)
// falls on all of them alike.
const (
	tracingCostRound   = 15 * time.Second
	tracingCostRounds  = 2
	tracingCostWarmUp  = 3 * time.Second
	tracingCostClients = 64
)

// BenchmarkTracingCost measures what tracing costs POST /v1/orders: three copies of the system
// on the same brokers, one with tracing off, one exporting every trace, one exporting a tenth,
// each loaded in turn by 64 clients sending as fast as they are answered (vegeta, no pacing).
// The spans go to an OTLP receiver in this process, so exporting costs what it costs against a
// real collector: encoding, batching, HTTP. It prints accepted orders/s, p50 and p99 per
// configuration and the ratio to tracing off; nothing is asserted (figures, not a pass/fail).
//
//	go test -run '^$' -bench TracingCost -benchtime 1x ./tests/observability
func BenchmarkTracingCost(b *testing.B) {
	receiver := startOTLPReceiver(b)
	receiver.discard = true
	configs := []struct {
		name string
		env  map[string]string
	}{
		{"tracing off", nil},
		{"sampling 1.0", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.server.URL}},
		{"sampling 0.1", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.server.URL,
			"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":     "0.1",
		}},
	}
	systems := make([]*stack.Stack, len(configs))
	for i, c := range configs {
		s := stack.New(b, brokertest.KafkaBootstrap(b), brokertest.RabbitMQURL(b), brokertest.PostgresURL(b))
		suffix := stack.UniqueSuffix()
		maps.Copy(s.Env["order-api"], map[string]string{"KAFKA_TOPIC": "cost.orders." + suffix, "RABBITMQ_EXCHANGE": "cost.exchange." + suffix})
		maps.Copy(s.Env["notifier"], map[string]string{
			"RABBITMQ_EXCHANGE":     "cost.exchange." + suffix,
			"NOTIFIER_QUEUE":        "cost.notifier." + suffix,
			"NOTIFIER_JOURNAL_PATH": filepath.Join(b.TempDir(), "notifications.jsonl"),
		})
		maps.Copy(s.Env["analytics"], map[string]string{"KAFKA_TOPIC": "cost.orders." + suffix, "ANALYTICS_GROUP_ID": "cost.analytics." + suffix})
		for _, env := range s.Env {
			env["LOG_LEVEL"] = "warn" // the access log would cost more than what is measured
			maps.Copy(env, c.env)
		}
		s.StartAll()
		systems[i] = s
	}

	results := make([]vegeta.Metrics, len(configs))
	rates := make([][]float64, len(configs)) // accepted orders/s of each round, timed on its own
	for round := range tracingCostRounds {
		for i, c := range configs {
			b.Logf("round %d/%d: %s", round+1, tracingCostRounds, c.name)
			if round == 0 {
				attack(systems[i].APIAddr, tracingCostWarmUp)
			}
			rs := attack(systems[i].APIAddr, tracingCostRound)
			for _, r := range rs {
				results[i].Add(r)
			}
			rates[i] = append(rates[i], acceptedPerSecond(rs))
		}
	}

	fmt.Printf("\nPOST /v1/orders, %d clients, %d×%s per configuration\n", tracingCostClients, tracingCostRounds, tracingCostRound)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "configuration\taccepted/s\tvs off\tp50\tp99\tnot 202\t")
	for i := range results {
		results[i].Close()
	}
	throughput := make([]float64, len(configs))
	for i := range configs {
		for _, r := range rates[i] {
			throughput[i] += r / float64(len(rates[i]))
		}
	}
	for i, c := range configs {
		m := results[i]
		notAccepted := 0
		for code, n := range m.StatusCodes {
			if code != "202" {
				notAccepted += n
			}
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%s\t%s\t%d\t\n", c.name, throughput[i], throughput[i]/throughput[0],
			m.Latencies.P50.Round(100*time.Microsecond), m.Latencies.P99.Round(100*time.Microsecond), notAccepted)
		b.ReportMetric(throughput[i], strings.ReplaceAll(c.name, " ", "_")+"_orders/s")
	}
	_ = w.Flush()
	receiver.mu.Lock()
	fmt.Printf("spans received: %d\n", receiver.count)
	receiver.mu.Unlock()
}

// acceptedPerSecond is the 202s of one load per second of that load: from its first request to
// its last answer. (vegeta's Metrics.Throughput over several loads would count the time between
// them, when the other configurations were loaded, too.)
func acceptedPerSecond(rs []*vegeta.Result) float64 {
	var first, last time.Time
	accepted := 0
	for _, r := range rs {
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if end := r.End(); end.After(last) {
			last = end
		}
		if r.Code == http.StatusAccepted {
			accepted++
		}
	}
	if !last.After(first) {
		return 0
	}
	return float64(accepted) / last.Sub(first).Seconds()
}

// attack sends POST /v1/orders from tracingCostClients clients for d, each as soon as its last
// one was answered.
func attack(apiAddr string, d time.Duration) []*vegeta.Result {
	target := vegeta.Target{
		Method: http.MethodPost,
		URL:    "http://" + apiAddr + "/v1/orders",
		Body:   []byte(`{"customer_id": "c-cost", "items": [{"sku": "BOOK-001", "quantity": 1}]}`),
		Header: http.Header{"Content-Type": []string{"application/json"}},
	}
	attacker := vegeta.NewAttacker(
		vegeta.Workers(tracingCostClients), vegeta.MaxWorkers(tracingCostClients),
		vegeta.Connections(tracingCostClients), vegeta.Timeout(10*time.Second),
	)
	var out []*vegeta.Result
	for r := range attacker.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{}, d, "orders") {
		out = append(out, r)
	}
	return out
}
