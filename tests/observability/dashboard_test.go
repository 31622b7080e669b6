// Package observability_test checks the observability the platform ships against the running
// system: every metric the provisioned Grafana dashboard queries is one the real services (and
// RabbitMQ's rabbitmq_prometheus plugin) expose.
package observability_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// Where the optional observability kustomization keeps what this test reads.
const (
	dashboardDir     = "manifests/optional/observability/grafana/dashboards"
	prometheusConfig = "manifests/optional/observability/prometheus/prometheus.yml"
)

// dashboardQuery is one PromQL expression of a dashboard panel.
type dashboardQuery struct {
	Where string // "<file>: <panel title>"
	Expr  string
}

// dashboardQueries reads every panel target of every dashboard JSON file in dashboardDir
// (including the panels of collapsed rows).
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(stack.RepoRoot(), dashboardDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboard in %s", dashboardDir)
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var queries []dashboardQuery
	var walk func(file string, panels []panel)
	walk = func(file string, panels []panel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				if strings.TrimSpace(target.Expr) != "" {
					queries = append(queries, dashboardQuery{Where: file + ": " + p.Title, Expr: target.Expr})
				}
			}
			walk(file, p.Panels)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var dashboard struct {
			Panels []panel `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(data, &dashboard), "%s", f)
		walk(filepath.Base(f), dashboard.Panels)
	}
	require.NotEmpty(t, queries, "the dashboards query nothing")
	return queries
}

// grafanaIntervals are the Grafana variables a dashboard query may use, each replaced by a
// duration so that the PromQL parser reads the expression as Prometheus will receive it.
// Any other variable fails the test: add it here, with a value of its kind, if a dashboard
// needs it.
var grafanaIntervals = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?`)

// dashboardPromQL returns the expression as Grafana sends it to Prometheus, its interval
// variables replaced by a duration.
func dashboardPromQL(expr string) (string, error) {
	out := grafanaIntervals.ReplaceAllString(expr, "1m")
	if strings.Contains(out, "$") {
		return "", fmt.Errorf("%q uses a Grafana variable this test does not know (see grafanaIntervals)", expr)
	}
	return out, nil
}

// dashboardMetricNames parses every dashboard query with Prometheus's own PromQL parser and
// returns each metric name a selector names, with the panels that use it. The names are as
// written: a histogram's _bucket, _sum and _count series keep their suffix, and
// dashboardMetricFamily maps them to their family.
func dashboardMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for _, q := range dashboardQueries(t) {
		promql, err := dashboardPromQL(q.Expr)
		require.NoError(t, err, q.Where)
		expr, err := parser.ParseExpr(promql)
		require.NoError(t, err, "%s: %q does not parse", q.Where, q.Expr)
		found := 0
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && name == "" {
					require.Equal(t, "=", m.Type.String(), "%s: a metric name matched by %s, not named, cannot be checked", q.Where, m.Type)
					name = m.Value
				}
			}
			require.NotEmpty(t, name, "%s: a selector without a metric name in %q", q.Where, q.Expr)
			if !slices.Contains(names[name], q.Where) {
				names[name] = append(names[name], q.Where)
			}
			found++
			return nil
		})
		require.Positive(t, found, "%s: %q selects no metric", q.Where, q.Expr)
	}
	return names
}

// dashboardMetricFamily finds the family of the exposition that provides the series name: the
// family of that name, or for name_bucket, name_sum and name_count the histogram (or, for
// _sum and _count, summary) family name.
func dashboardMetricFamily(name string, families map[string]*dto.MetricFamily) (*dto.MetricFamily, bool) {
	if f, ok := families[name]; ok && f.GetType() != dto.MetricType_HISTOGRAM && f.GetType() != dto.MetricType_SUMMARY {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := families[base]
		if !ok {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return f, true
		case dto.MetricType_SUMMARY:
			if suffix != "_bucket" {
				return f, true
			}
		}
	}
	return nil, false
}

func TestDashboardMetricNamesParsesThePromQLOfEveryPanel(t *testing.T) {
	names := dashboardMetricNames(t)
	// The panels the dashboard promises (docs/platform.md, "Metrics and traces").
	for _, want := range []string{
		"orders_accepted_total", "orders_rejected_total", "orders_failed_total",
		"order_publish_duration_seconds_bucket",
		"grpc_server_handling_seconds_bucket",
		"notifier_notifications_sent_total", "notifier_notifications_retried_total", "notifier_notifications_dead_lettered_total",
		"analytics_consumer_lag",
		"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages",
	} {
		assert.Contains(t, names, want)
	}
	_, err := dashboardPromQL(`rate(x[$__rate_interval]) / $other`)
	require.ErrorContains(t, err, "does not know")
}

func TestDashboardMetricFamilyMapsHistogramSeriesToTheirFamily(t *testing.T) {
	text := `# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 1
h_sum 0.5
h_count 1
# TYPE c_total counter
c_total 3
`
	families := parseExposition(t, "fixture", []byte(text))
	for name, want := range map[string]string{"h_bucket": "h", "h_sum": "h", "h_count": "h", "c_total": "c_total"} {
		f, ok := dashboardMetricFamily(name, families)
		require.True(t, ok, name)
		assert.Equal(t, want, f.GetName())
	}
	for _, name := range []string{"h", "c", "c_total_bucket", "missing"} {
		_, ok := dashboardMetricFamily(name, families)
		assert.False(t, ok, name)
	}
}

// TestDashboardQueriesOnlyMetricsTheSystemExposes runs the four services against real brokers
// (the shared Kafka and PostgreSQL of `make brokers`, or containers; a RabbitMQ of its own with
// the rabbitmq_prometheus plugin, which the shared one does not enable), makes an order of
// each outcome, and checks that every metric a dashboard query names is exposed where
// Prometheus scrapes it (prometheus.yml).
func TestDashboardQueriesOnlyMetricsTheSystemExposes(t *testing.T) {
	names := dashboardMetricNames(t)
	kafka := brokertest.KafkaBootstrap(t) // skips under -short, outside CI
	postgres := brokertest.PostgresURL(t)
	rabbit := startDashboardRabbitMQ(t)

	s := stack.New(t, kafka, rabbit.amqpURL, postgres)
	suffix := stack.UniqueSuffix()
	topic := "observability.orders." + suffix
	maps.Copy(s.Env["order-api"], map[string]string{"KAFKA_TOPIC": topic})
	maps.Copy(s.Env["notifier"], map[string]string{
		"NOTIFIER_JOURNAL_PATH": filepath.Join(t.TempDir(), "notifications.jsonl"),
	})
	maps.Copy(s.Env["analytics"], map[string]string{
		"KAFKA_TOPIC":        topic,
		"ANALYTICS_GROUP_ID": "observability.analytics." + suffix,
	})
	s.StartAll()

	// One order of each outcome, so that every labelled counter has a series: accepted,
	// rejected (malformed), and failed (the validator gone).
	require.Equal(t, http.StatusAccepted, postDashboardOrder(t, s.APIAddr, `{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":2}]}`))
	require.Equal(t, http.StatusBadRequest, postDashboardOrder(t, s.APIAddr, `{"customer_id":`))
	s.Procs["validator"].Terminate(t, 30*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, postDashboardOrder(t, s.APIAddr, `{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":1}]}`))
	s.Start("validator")

	// Where prometheus.yml scrapes each source.
	scrape := dashboardScrapePaths(t)
	sources := map[string]string{}
	for _, service := range stack.Services {
		sources[service] = "http://" + s.Admin[service] + scrape[service]
	}
	sources["rabbitmq"] = "http://" + rabbit.metricsAddr + scrape["rabbitmq"]

	// Some series appear a moment later (the consumer lag once analytics owns its partitions,
	// the notifier's once it has sent): poll until all are there, then report what is missing.
	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		exposed := map[string]map[string]*dto.MetricFamily{}
		for job, url := range sources {
			exposed[job] = scrapeDashboardSource(t, job, url)
		}
		missing = missing[:0]
		for name, where := range names {
			found := false
			for _, families := range exposed {
				if f, ok := dashboardMetricFamily(name, families); ok && len(f.GetMetric()) > 0 {
					found = true
				}
			}
			if !found {
				missing = append(missing, fmt.Sprintf("%s (used by %s)", name, strings.Join(where, "; ")))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "metrics the dashboard queries but no scraped source exposes")
	t.Logf("%d metric names of the dashboard, all exposed: %s", len(names), strings.Join(slices.Sorted(maps.Keys(names)), ", "))
}

// postDashboardOrder posts one order body to order-api and returns the status.
func postDashboardOrder(t *testing.T, apiAddr, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+apiAddr+"/v1/orders", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := stack.Client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	return res.StatusCode
}

// dashboardScrapePaths reads prometheus.yml: the metrics path of each job (Prometheus's default
// is /metrics).
func dashboardScrapePaths(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stack.RepoRoot(), prometheusConfig))
	require.NoError(t, err)
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			MetricsPath string `json:"metrics_path"`
		} `json:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	paths := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		paths[sc.JobName] = sc.MetricsPath
		if sc.MetricsPath == "" {
			paths[sc.JobName] = "/metrics"
		}
	}
	for _, job := range append(slices.Clone(stack.Services), "rabbitmq") {
		require.Contains(t, paths, job, "%s scrapes no job %q", prometheusConfig, job)
	}
	return paths
}

// scrapeDashboardSource GETs a metrics URL and parses the text exposition format.
func scrapeDashboardSource(t *testing.T, job, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	// The text format, which every source speaks.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	res, err := stack.Client.Do(req)
	require.NoError(t, err, "scrape %s", job)
	defer res.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "scrape %s (%s): %s", job, url, body.String())
	return parseExposition(t, job, body.Bytes())
}

func parseExposition(t *testing.T, job string, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err, "parse the metrics of %s", job)
	return families
}

// dashboardRabbitMQ is a RabbitMQ node of this test's own, with the rabbitmq_prometheus plugin.
type dashboardRabbitMQ struct {
	amqpURL     string
	metricsAddr string
}

// rabbitMQBin finds the directory of rabbitmq-server as scripts/brokers does: RABBITMQ_BIN_DIR,
// then Debian's and Fedora's /usr/lib/rabbitmq/bin, then PATH.
func rabbitMQBin() (string, error) {
	if dir := os.Getenv("RABBITMQ_BIN_DIR"); dir != "" {
		return dir, nil
	}
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err == nil {
		return "/usr/lib/rabbitmq/bin", nil
	}
	path, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		return "", fmt.Errorf("rabbitmq-server is not installed (make brokers needs it too: see README): %w", err)
	}
	return filepath.Dir(path), nil
}

// startDashboardRabbitMQ starts a RabbitMQ node on free loopback ports, with its state, its
// Erlang cookie and its epmd its own, and the rabbitmq_prometheus plugin, which the shared
// broker of `make brokers` does not enable. It is stopped, and its epmd too, when the test ends.
// A missing rabbitmq-server fails the test, as a missing broker does everywhere.
func startDashboardRabbitMQ(t *testing.T) dashboardRabbitMQ {
	t.Helper()
	bin, err := rabbitMQBin()
	require.NoError(t, err)
	state := stack.BrokersStateDir(t, "backend-prep-observability-rabbitmq-")
	port := func() string {
		_, p, err := net.SplitHostPort(stack.FreeAddr(t))
		require.NoError(t, err)
		return p
	}
	amqpPort, distPort, epmdPort, metricsPort := port(), port(), port(), port()
	node := "observability-" + stack.UniqueSuffix() + "@localhost"
	for _, dir := range []string{"home", "mnesia", "log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(state, dir), 0o755))
	}
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(state, name), []byte(content), 0o644))
	}
	write("enabled_plugins", "[rabbitmq_prometheus].\n")
	write("rabbitmq-env.conf", "")
	write("rabbitmq.conf", fmt.Sprintf("loopback_users.guest = true\nlog.console = false\nprometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = %s\n", metricsPort))

	cmd := exec.Command(filepath.Join(bin, "rabbitmq-server")) //nolint:noctx // stopped by signals, owned by the test
	cmd.Dir = state
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(state, "home"),
		"RABBITMQ_NODENAME=" + node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + amqpPort,
		"RABBITMQ_DIST_PORT=" + distPort,
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + epmdPort,
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(state, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(state, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(state, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(state, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(state, "log"),
		"RABBITMQ_PID_FILE=" + filepath.Join(state, "beam.pid"),
	}
	// A process group of its own: a kill at cleanup reaches the Erlang VM's helpers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc := stack.StartCommand(t, "rabbitmq", cmd)
	// Runs before StartCommand's kill (cleanups run last-in first-out): a graceful stop, then
	// the epmd the node started on its own port.
	t.Cleanup(func() {
		if proc.Running() {
			proc.Terminate(t, 60*time.Second)
		}
		if out, err := exec.Command("epmd", "-port", epmdPort, "-kill").CombinedOutput(); err != nil { //nolint:noctx // short, local
			t.Logf("epmd -port %s -kill: %v %s", epmdPort, err, out)
		}
	})

	r := dashboardRabbitMQ{
		amqpURL:     "amqp://guest:guest@127.0.0.1:" + amqpPort + "/",
		metricsAddr: "127.0.0.1:" + metricsPort,
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, _, err := stack.Get(r.metricsAddr, "/metrics")
		if err == nil && status == http.StatusOK {
			break
		}
		require.True(t, proc.Running(), "rabbitmq-server exited:\n%s", proc.Tail(30))
		require.True(t, time.Now().Before(deadline), "RabbitMQ's metrics port answers nothing after 90s:\n%s", proc.Tail(30))
		time.Sleep(250 * time.Millisecond)
	}
	return r
}
