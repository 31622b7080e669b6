package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

func TestMain(m *testing.M) { brokertest.Main(m) }

func TestGraphIsComplete(t *testing.T) {
	cfg := config.Config{Base: platformconfig.Base{ShutdownTimeout: time.Second}}
	require.NoError(t, fx.ValidateApp(platform.Options(cfg, zap.NewNop()), modules()))
}

// service is order-api running in-process on real brokers, with a stand-in validator.
type service struct {
	cfg config.Config
	// rabbitmqURL is the broker's own URL, even when order-api reaches it through a proxy.
	rabbitmqURL string
	validator   *validatortest.Server
	api         string // base URL of the HTTP API
	admin       string // base URL of the admin server
}

// startService runs the application's real graph (main's modules) on fresh, unique topic and
// exchange names, which it deletes when the test ends, and the test's database (postgresURL).
func startService(t *testing.T, validator *validatortest.Server) *service {
	t.Helper()
	return startServiceWith(t, validator, nil, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
}

// startServiceWith is startService with some variables of the environment replaced, logging to
// log.
func startServiceWith(t *testing.T, validator *validatortest.Server, replace map[string]string, log *zap.Logger) *service {
	t.Helper()
	rabbitmqURL := brokertest.RabbitMQURL(t) // before RABBITMQ_URL is replaced
	env := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": brokertest.KafkaBootstrap(t),
		"POSTGRES_URL":            postgresURL(t),
		"RABBITMQ_URL":            rabbitmqURL,
		"KAFKA_TOPIC":             brokertest.UniqueName(t, "orders"),
		"RABBITMQ_EXCHANGE":       brokertest.UniqueName(t, "orders"),
		"HTTP_ADDR":               "127.0.0.1:0",
		"ADMIN_ADDR":              "127.0.0.1:0",
		"VALIDATOR_ADDR":          validator.Addr,
		"VALIDATOR_TIMEOUT":       "500ms",
		"PUBLISH_TIMEOUT":         "10s",
		"RETRY_AFTER":             "2s",
		"SHUTDOWN_TIMEOUT":        "20s",
	}
	maps.Copy(env, replace)
	for name, value := range env {
		t.Setenv(name, value)
	}
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	t.Cleanup(func() { deleteTopic(t, cfg); deleteExchange(t, rabbitmqURL, cfg.RabbitMQExchange) })

	var (
		httpServer  *httpserver.Server
		adminServer *admin.Server
	)
	app := fxtest.New(t,
		platform.Options(cfg, log),
		modules(),
		fx.Populate(&httpServer, &adminServer),
	)
	app.RequireStart()
	t.Cleanup(app.RequireStop) // runs before the deletions registered above
	return &service{
		cfg:         cfg,
		rabbitmqURL: rabbitmqURL,
		validator:   validator,
		api:         "http://" + httpServer.Addr().String(),
		admin:       "http://" + adminServer.Addr().String(),
	}
}

func deleteTopic(t *testing.T, cfg config.Config) {
	a, err := kafka.NewAdmin(cfg.Kafka)
	if err != nil {
		t.Errorf("delete topic: %v", err)
		return
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.DeleteTopics(ctx, cfg.KafkaTopic); err != nil {
		t.Errorf("delete topic: %v", err)
	}
}

func deleteExchange(t *testing.T, url, exchange string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Errorf("delete exchange: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDelete(exchange, false, false)
	}
	if err != nil {
		t.Errorf("delete exchange: %v", err)
	}
}

// response is an HTTP answer, read in full.
type response struct {
	status int
	header http.Header
	body   string
}

func (s *service) placeOrder(t *testing.T, body, idempotencyKey, traceparent string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.api+"/v1/orders", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	return do(t, req)
}

func (s *service) get(t *testing.T, path string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.admin+path, nil)
	require.NoError(t, err)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// consumeTopic delivers every record of the topic, from its beginning, on the returned channel.
func consumeTopic(t *testing.T, cfg config.Config) <-chan *kafka.Message {
	t.Helper()
	records := make(chan *kafka.Message, 16)
	c, err := kafka.NewConsumer(cfg.Kafka, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "order-api-test"),
		Topics:  []string{cfg.KafkaTopic},
		Handler: func(ctx context.Context, msg *kafka.Message) error {
			select {
			case records <- msg:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		OnAssigned: func(_ context.Context, parts []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
			return kafka.StartAll(parts, kafka.OffsetBeginning), nil
		},
	}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return records
}

// bindQueue binds a fresh exclusive queue to the exchange for order.placed, as the notifier
// does, and delivers what reaches it.
func (s *service) bindQueue(t *testing.T) <-chan amqp.Delivery {
	t.Helper()
	cfg := s.cfg
	conn, err := amqp.Dial(s.rabbitmqURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, ordersv1.RoutingKey, cfg.RabbitMQExchange, false, nil))
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	return deliveries
}

func receive[T any](t *testing.T, from <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-from:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("no %s within a minute", what)
		var zero T
		return zero
	}
}

func header(m *kafka.Message, key string) string {
	v, _ := m.Header(key)
	return string(v)
}

// TestPlaceOrderOnRealBrokers follows orders through the real application on real Kafka and
// RabbitMQ: a broker failure answers 503 and a retry with the same Idempotency-Key places the
// same order; a placed order is on the topic (keyed by order_id, with the event headers and a
// protojson body) and on a queue bound to the exchange; with the validator gone the API answers
// 503 within its deadline, and recovers on its own when the validator is back.
func TestPlaceOrderOnRealBrokers(t *testing.T) {
	validator := validatortest.Start(t, &validatortest.Validator{})
	s := startService(t, validator)
	records := consumeTopic(t, s.cfg)
	const (
		body        = `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 2}]}`
		key         = "e2e-order-1"
		traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	orderID, err := orders.OrderID("c-42", key)
	require.NoError(t, err)

	ready := s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, ready.status, ready.body)
	assert.JSONEq(t, `{"status":"ready","checks":{"http":"ok","validator":"ok","kafka":"ok","rabbitmq":"ok","postgres":"ok"}}`, ready.body)

	// No queue is bound yet: RabbitMQ returns the mandatory message, so the order is not placed.
	failed := s.placeOrder(t, body, key, traceparent)
	require.Equal(t, http.StatusServiceUnavailable, failed.status, failed.body)
	assert.Equal(t, "2", failed.header.Get("Retry-After"))
	assert.Equal(t, "application/problem+json", failed.header.Get("Content-Type"))
	assert.Contains(t, failed.body, "retry after Retry-After with the same Idempotency-Key")

	deliveries := s.bindQueue(t)
	placed := s.placeOrder(t, body, key, traceparent)
	require.Equal(t, http.StatusAccepted, placed.status, placed.body)
	assert.JSONEq(t, `{"order_id": "`+orderID+`", "status": "accepted", "total_cents": 2598, "currency": "EUR",
		"items": [{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 1299, "line_total_cents": 2598}]}`, placed.body)

	// RabbitMQ has the placed order once.
	d := receive(t, deliveries, "RabbitMQ delivery")
	assert.Equal(t, ordersv1.ContentType, d.ContentType)
	assert.Equal(t, amqp.Persistent, d.DeliveryMode)
	assert.Equal(t, ordersv1.EventTypeOrderPlaced, d.Type)
	assert.Equal(t, amqp.Table{
		ordersv1.HeaderContentType: ordersv1.ContentType,
		ordersv1.HeaderEventType:   ordersv1.EventTypeOrderPlaced,
		ordersv1.HeaderEventID:     d.MessageId,
		ordersv1.HeaderTraceparent: traceparent,
	}, d.Headers)

	// Kafka has both attempts — the 503 may have been published, as the contract says — under
	// the same key, so consumers keep one order.
	first, second := receive(t, records, "first Kafka record"), receive(t, records, "second Kafka record")
	assert.Equal(t, orderID, string(first.Key))
	assert.Equal(t, orderID, string(second.Key))
	assert.Equal(t, first.Partition, second.Partition, "same key, same partition: exact deduplication")
	var record *kafka.Message
	for _, r := range []*kafka.Message{first, second} {
		if header(r, ordersv1.HeaderEventID) == d.MessageId {
			record = r
		}
	}
	require.NotNil(t, record, "the placed order's publication is on Kafka")
	assert.Equal(t, ordersv1.ContentType, header(record, ordersv1.HeaderContentType))
	assert.Equal(t, ordersv1.EventTypeOrderPlaced, header(record, ordersv1.HeaderEventType))
	assert.Equal(t, traceparent, header(record, ordersv1.HeaderTraceparent))
	assert.Equal(t, string(d.Body), string(record.Value), "both brokers carry the same bytes")

	var raw map[string]any
	require.NoError(t, json.Unmarshal(record.Value, &raw))
	assert.Equal(t, orderID, raw["order_id"], "protojson with proto field names")
	assert.Equal(t, "2598", raw["total_cents"], "int64 as a JSON string, as the proto3 JSON mapping says")
	assert.Equal(t, key, raw["idempotency_key"])
	event, err := ordersv1.UnmarshalOrderPlaced(record.Value)
	require.NoError(t, err)
	assert.Equal(t, "c-42", event.GetCustomerId())
	assert.WithinDuration(t, time.Now(), event.GetPlacedAt().AsTime(), time.Minute)

	// The validator goes away: 503 within its deadline, and readiness says why.
	validator.Stop()
	start := time.Now()
	down := s.placeOrder(t, body, "e2e-order-2", "")
	assert.Equal(t, http.StatusServiceUnavailable, down.status, down.body)
	assert.Equal(t, "2", down.header.Get("Retry-After"))
	assert.Less(t, time.Since(start), s.cfg.ValidatorTimeout+2*time.Second)
	notReady := s.get(t, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, notReady.status)
	assert.Contains(t, notReady.body, `"kafka":"ok"`)
	assert.NotContains(t, notReady.body, `"validator":"ok"`)

	// It comes back on the same address: order-api recovers without a restart.
	validatortest.StartAt(t, &validatortest.Validator{}, validator.Addr)
	require.Eventually(t, func() bool {
		return s.placeOrder(t, body, "e2e-order-2", "").status == http.StatusAccepted
	}, 30*time.Second, 200*time.Millisecond)

	metrics := s.get(t, "/metrics").body
	for _, want := range []string{
		`orders_accepted_total 2`,
		`orders_failed_total{reason="broker_unavailable"} 1`,
		`orders_failed_total{reason="validator_unavailable"}`,
		`order_publish_duration_seconds_count{broker="kafka",result="ok"}`,
		`order_publish_duration_seconds_count{broker="rabbitmq",result="error"} 1`,
	} {
		assert.Contains(t, metrics, want)
	}
}

// tcpProxy forwards connections to a broker until the test closes it — the broker is gone, its
// connections cut and new ones refused — and opens it again on the same address. The shared
// brokers stay up.
type tcpProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{addr: "127.0.0.1:0", target: target, conns: map[net.Conn]struct{}{}}
	p.Open(t)
	t.Cleanup(p.Close)
	return p
}

// Open listens on the proxy's address again.
func (p *tcpProxy) Open(t *testing.T) {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", p.addr)
	require.NoError(t, err)
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() { p.accept(ln) })
}

func (p *tcpProxy) accept(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[upstream] = struct{}{}, struct{}{}
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{client, upstream}, {upstream, client}} {
			p.wg.Go(func() {
				_, _ = io.Copy(pair[0], pair[1])
				_ = pair[0].Close()
				_ = pair[1].Close()
			})
		}
	}
}

// Close stops listening and cuts every connection, as a stopped broker would. Closing a closed
// proxy does nothing.
func (p *tcpProxy) Close() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// dependencyDown reads order_dependency_down for the dependency from /metrics.
func (s *service) dependencyDown(t *testing.T, dependency string) bool {
	t.Helper()
	return strings.Contains(s.get(t, "/metrics").body, `order_dependency_down{dependency="`+dependency+`"} 1`)
}

// failFast places orders while a dependency is known to be down and checks that each one is
// answered 503 at once: sequentially for the latency of each answer, then from 8 clients at
// once for the rate.
func (s *service) failFast(t *testing.T, body string) {
	t.Helper()
	const sequential = 50
	latencies := make([]time.Duration, sequential)
	for i := range latencies {
		start := time.Now()
		r := s.placeOrder(t, body, "", "")
		latencies[i] = time.Since(start)
		require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
		require.Equal(t, "2", r.header.Get("Retry-After"))
		require.Contains(t, r.body, "with the same Idempotency-Key")
	}
	slices.Sort(latencies)
	median, slowest := latencies[sequential/2], latencies[sequential-1]
	t.Logf("%d sequential 503s: median %s, slowest %s", sequential, median, slowest)
	assert.Less(t, median, 100*time.Millisecond)
	assert.Less(t, slowest, 250*time.Millisecond)

	const clients, each = 8, 25
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				r := s.placeOrder(t, body, "", "")
				assert.Equal(t, http.StatusServiceUnavailable, r.status)
			}
		})
	}
	wg.Wait()
	rate := float64(clients*each) / time.Since(start).Seconds()
	t.Logf("%d clients: %.0f 503s per second", clients, rate)
	assert.Greater(t, rate, 50.0, "hundreds per second, not one per publish timeout")
}

// TestOrdersFailFastWhileADependencyIsDown takes RabbitMQ (through a proxy the test closes) and
// then the validator away from the running application: once order-api knows — the gauge
// order_dependency_down says so — every order is answered 503 at once rather than after
// PUBLISH_TIMEOUT (10s here), and order-api places orders again by itself when the dependency is
// back. Each change is logged once. Kafka's side (all brokers down) is tested in libs/kafka: the
// broker's metadata names its own address, so a proxy in front of it cannot take it away.
func TestOrdersFailFastWhileADependencyIsDown(t *testing.T) {
	validator := validatortest.Start(t, &validatortest.Validator{})
	broker, err := url.Parse(brokertest.RabbitMQURL(t))
	require.NoError(t, err)
	rabbitmq := startTCPProxy(t, broker.Host)
	proxied := *broker
	proxied.Host = rabbitmq.addr
	core, logs := observer.New(zapcore.InfoLevel)
	s := startServiceWith(t, validator, map[string]string{
		"RABBITMQ_URL":           proxied.String(),
		"RABBITMQ_RECONNECT_MAX": "500ms",
	}, zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core())))
	s.bindQueue(t)
	const body = `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 1}]}`
	placed := s.placeOrder(t, body, "", "")
	require.Equal(t, http.StatusAccepted, placed.status, placed.body)

	t.Run("RabbitMQ", func(t *testing.T) {
		rabbitmq.Close()
		require.Eventually(t, func() bool { return s.dependencyDown(t, "rabbitmq") }, 10*time.Second, 10*time.Millisecond)
		s.failFast(t, body)

		rabbitmq.Open(t)
		back := time.Now()
		var last response
		require.Eventually(t, func() bool { last = s.placeOrder(t, body, "", ""); return last.status == http.StatusAccepted },
			30*time.Second, 20*time.Millisecond, "placed again without a restart: %+v", &last)
		t.Logf("RabbitMQ: first 202 %s after the broker was reachable again", time.Since(back).Round(time.Millisecond))
		assert.False(t, s.dependencyDown(t, "rabbitmq"))
	})

	t.Run("validator", func(t *testing.T) {
		validator.Stop()
		// The gRPC channel learns that the validator is gone when it next tries to reach it:
		// the readiness check's health call does.
		require.Eventually(t, func() bool {
			_ = s.get(t, "/readyz")
			return s.dependencyDown(t, "validator")
		}, 10*time.Second, 10*time.Millisecond)
		s.failFast(t, body)

		validatortest.StartAt(t, &validatortest.Validator{}, validator.Addr)
		back := time.Now()
		var last response
		require.Eventually(t, func() bool { last = s.placeOrder(t, body, "", ""); return last.status == http.StatusAccepted },
			30*time.Second, 20*time.Millisecond, "placed again without a restart: %+v", &last)
		t.Logf("validator: first 202 %s after it was back", time.Since(back).Round(time.Millisecond))
		assert.False(t, s.dependencyDown(t, "validator"))
	})

	metrics := s.get(t, "/metrics").body
	for _, want := range []string{
		`order_dependency_down{dependency="kafka"} 0`,
		`order_dependency_down{dependency="rabbitmq"} 0`,
		`order_dependency_down{dependency="validator"} 0`,
		`orders_failed_total{reason="broker_unavailable"}`,
		`orders_failed_total{reason="validator_unavailable"}`,
	} {
		assert.Contains(t, metrics, want)
	}
	// Changes are logged within a round of orders.Service.Watch (100ms).
	for _, dependency := range []string{"rabbitmq", "validator"} {
		require.Eventually(t, func() bool {
			return logs.FilterField(zap.String("dependency", dependency)).FilterMessageSnippet("dependency back").Len() > 0
		}, 5*time.Second, 10*time.Millisecond)
		changes := logs.FilterField(zap.String("dependency", dependency))
		assert.Equal(t, 1, changes.FilterMessageSnippet("dependency down").Len(), "%s: down logged once", dependency)
		assert.Equal(t, 1, changes.FilterMessageSnippet("dependency back").Len(), "%s: back logged once", dependency)
	}
	assert.Zero(t, logs.FilterField(zap.String("dependency", "kafka")).Len(), "kafka never went down")
}
