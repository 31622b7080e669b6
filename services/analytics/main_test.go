package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/config"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
)

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		// A child process of TestRecovery: the service itself, configured by its environment.
		main()
		return
	}
	brokertest.Main(m)
}

// waitFor bounds what a test waits for the group protocol, the broker and rebuilds; it all
// normally happens within seconds.
const waitFor = 60 * time.Second

// testConfig is the service's configuration for a test: the real broker, free ports, the
// given topic and group, and group timings tightened (the session timeout is the broker's
// minimum) so that rebalances take a second rather than half a minute.
func testConfig(t *testing.T, topic, group string) config.Config {
	t.Helper()
	return configFor(t, brokertest.KafkaBootstrap(t), topic, group)
}

func configFor(t *testing.T, bootstrap, topic, group string) config.Config {
	t.Helper()
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 20 * time.Second
	cfg.Topic = topic
	cfg.GroupID = group
	cfg.LagRefreshInterval = 200 * time.Millisecond
	cfg.BootstrapServers = bootstrap
	cfg.ClientID = "analytics-test"
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = 300 * time.Millisecond
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.RetryBackoff = 50 * time.Millisecond
	require.NoError(t, cfg.Validate())
	return cfg
}

// instance is one running analytics replica.
type instance struct {
	app     *fxtest.App
	http    *httpserver.Server
	admin   *admin.Server
	metrics prometheus.Gatherer
	stopped bool
}

// start runs the service's graph, as main builds it, until stop or the end of the test.
func start(t *testing.T, cfg config.Config) *instance {
	t.Helper()
	in := &instance{}
	in.app = fxtest.New(t,
		platform.Options(cfg, zaptest.NewLogger(t)),
		service(),
		fx.Populate(&in.http, &in.admin, &in.metrics),
	)
	in.app.RequireStart()
	t.Cleanup(in.stop)
	return in
}

// stop stops the replica gracefully: it leaves the group, so the others take over at once.
func (in *instance) stop() {
	if !in.stopped {
		in.stopped = true
		in.app.RequireStop()
	}
}

func (in *instance) get(t require.TestingT, addr fmt.Stringer, path string) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// stats answers GET /v1/stats.
func (in *instance) stats(t require.TestingT) httpapi.Response {
	code, body := in.get(t, in.http.Addr(), "/v1/stats")
	require.Equal(t, http.StatusOK, code, "GET /v1/stats: %s", body)
	var resp httpapi.Response
	require.NoError(t, json.Unmarshal(body, &resp))
	return resp
}

// ready reports whether GET /readyz answers 200.
func (in *instance) ready(t require.TestingT) bool {
	code, _ := in.get(t, in.admin.Addr(), "/readyz")
	return code == http.StatusOK
}

// metric sums the samples of a counter or gauge family, over all its series.
func (in *instance) metric(t require.TestingT, name string) float64 {
	families, err := in.metrics.Gather()
	require.NoError(t, err)
	var sum float64
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// series lists the label sets of a metric family, e.g. ["partition=0,topic=orders.v1"].
func (in *instance) series(t require.TestingT, name string) []string {
	families, err := in.metrics.Gather()
	require.NoError(t, err)
	var out []string
	for _, fam := range families {
		if fam.GetName() == name {
			for _, m := range fam.GetMetric() {
				out = append(out, labelString(m))
			}
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	pairs := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		pairs = append(pairs, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(pairs, ",")
}

// TestService_Graph starts the service as main composes it and checks what it serves: the stats
// contract, readiness with both checks, and the consumer's metrics.
func TestService_Graph(t *testing.T) {
	in := start(t, testConfig(t, newTopic(t), brokertest.UniqueName(t, "analytics")))

	// Ready once the group assigned the partitions and their (empty) logs were replayed; until
	// then GET /v1/stats answers 503 rather than zeros that look like an answer.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body := in.get(c, in.http.Addr(), "/v1/stats")
		if code == http.StatusServiceUnavailable {
			assert.False(c, in.ready(c), "a 503 comes with an unready replica")
			assert.Contains(c, string(body), `"status":503`)
		}
		require.Equal(c, http.StatusOK, code)
		assert.Len(c, in.stats(c).Partitions, 3)
		assert.True(c, in.ready(c))
	}, waitFor, 50*time.Millisecond)
	code, body := in.get(t, in.http.Addr(), "/v1/stats")
	require.Equal(t, http.StatusOK, code)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &fields))
	assert.ElementsMatch(t, []string{"orders", "revenue_cents", "by_sku", "partitions", "updated_at"}, keys(fields))
	assert.JSONEq(t, `0`, string(fields["orders"]))
	assert.JSONEq(t, `{}`, string(fields["by_sku"]))
	_, body = in.get(t, in.admin.Addr(), "/readyz")
	assert.JSONEq(t, `{"status":"ready","checks":{"http":"ok","kafka":"ok","stats":"ok"}}`, string(body))

	families, err := in.metrics.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	assert.Subset(t, names, []string{
		"analytics_events_processed_total",
		"analytics_events_malformed_total",
		"analytics_partitions_rebuilding",
		"http_requests_total",
	})

	in.stop()
}

func TestService_StartFailsWithoutBroker(t *testing.T) {
	// The graph builds without a broker (librdkafka connects in the background); start-up then
	// fails by its deadline rather than running a service that can never count anything.
	cfg := configFor(t, "127.0.0.1:1", "orders.v1", "analytics") // nothing listens on port 1
	app := fx.New(platform.Options(cfg, zaptest.NewLogger(t)), service())
	require.NoError(t, app.Err())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.Error(t, app.Start(ctx))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// newTopic creates a uniquely named topic of three partitions, deleted at the end of the test.
func newTopic(t *testing.T) string {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = brokertest.KafkaBootstrap(t)
	adm, err := kafka.NewAdmin(cfg)
	require.NoError(t, err)
	t.Cleanup(adm.Close)
	name := brokertest.UniqueName(t, "analytics")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, adm.EnsureTopic(ctx, kafka.TopicSpec{Name: name, Partitions: 3}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, adm.DeleteTopics(ctx, name))
	})
	return name
}

// TestService_DeclaresItsTopic: started before anything created its topic, analytics creates it
// as order-api would (3 partitions), so it owns its partitions and is ready rather than waiting
// for order-api; and it refuses to start on a topic with another partition count.
func TestService_DeclaresItsTopic(t *testing.T) {
	cfg := testConfig(t, brokertest.UniqueName(t, "analytics"), brokertest.UniqueName(t, "group"))
	adm, err := kafka.NewAdmin(cfg.Kafka())
	require.NoError(t, err)
	t.Cleanup(adm.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, adm.DeleteTopics(ctx, cfg.Topic))
	})

	in := start(t, cfg)
	require.Eventually(t, func() bool { return in.ready(t) }, waitFor, 100*time.Millisecond, "ready on a topic it created")
	assert.Equal(t, []int32{0, 1, 2}, in.stats(t).Partitions)
	in.stop()

	other := cfg
	other.TopicPartitions = 5
	app := fxtest.New(t, platform.Options(other, zaptest.NewLogger(t)), service())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err = app.Start(ctx)
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	require.ErrorIs(t, err, kafka.ErrTopicMismatch, "an existing topic with another partition count stops start-up")
}
