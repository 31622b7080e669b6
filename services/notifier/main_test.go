package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/config"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
)

func TestMain(m *testing.M) { brokertest.Main(m) }

// The whole service graph, as main builds it, against the real broker: it starts, becomes
// ready, notifies a published order, answers for it on the admin port and stops cleanly.
func TestServiceGraph(t *testing.T) {
	names := uniqueNames(t)
	svc := start(t, loadConfig(t, nil), names)

	status, _ := get(t, svc.url+"/readyz")
	assert.Equal(t, http.StatusOK, status, "ready once connected and subscribed")
	status, body := get(t, svc.url+"/v1/notifications/o-graph")
	assert.Equal(t, http.StatusNotFound, status, body)

	publishOrder(t, svc.publisher, names.Exchange, "o-graph")

	n := waitNotification(t, svc.url, "o-graph")
	assert.Equal(t, "c-42", n.CustomerID)
	assert.Equal(t, 1, n.Attempts)
	assert.Equal(t, time.UTC, n.SentAt.Location())
	_, metrics := get(t, svc.url+"/metrics")
	assert.Contains(t, metrics, "notifier_notifications_sent_total 1\n")
	assert.Contains(t, metrics, `notifier_notifications_dead_lettered_total{reason="malformed"} 0`+"\n")

	svc.stop(t)
	assert.ErrorIs(t, svc.conn.Ready(context.Background()), rabbitmq.ErrClosed, "the connection is closed on stop")
}

// With NOTIFIER_JOURNAL_PATH, a restarted notifier still knows what it sent: it answers for the
// order at once and does not notify it again when the order is delivered once more.
func TestRestartWithAJournalRemembersWhatWasSent(t *testing.T) {
	names := uniqueNames(t)
	cfg := loadConfig(t, map[string]string{"NOTIFIER_JOURNAL_PATH": filepath.Join(t.TempDir(), "notifications.jsonl")})
	first := start(t, cfg, names)
	publishOrder(t, first.publisher, names.Exchange, "o-journaled")
	sent := waitNotification(t, first.url, "o-journaled")
	first.stop(t)

	second := start(t, cfg, names)

	status, body := get(t, second.url+"/v1/notifications/o-journaled")
	require.Equal(t, http.StatusOK, status, body)
	publishOrder(t, second.publisher, names.Exchange, "o-journaled") // delivered again
	publishOrder(t, second.publisher, names.Exchange, "o-marker")
	waitNotification(t, second.url, "o-marker")
	// Deliveries are handled concurrently: the duplicate may settle just after the marker.
	var metrics string
	require.Eventually(t, func() bool {
		_, metrics = get(t, second.url+"/metrics")
		return strings.Contains(metrics, "notifier_notifications_duplicate_total 1\n")
	}, 5*time.Second, 20*time.Millisecond, "the second delivery counts as a duplicate")
	assert.Contains(t, metrics, "notifier_notifications_sent_total 1\n", "only the marker was sent")
	again := waitNotification(t, second.url, "o-journaled")
	assert.Equal(t, sent.SentAt, again.SentAt, "the first notification is the one on record")
}

type running struct {
	app       *fxtest.App
	url       string
	publisher *rabbitmq.Publisher
	conn      *rabbitmq.Connection
	stopped   bool
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.app.RequireStop()
	r.stopped = true
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	t.Setenv("RABBITMQ_URL", brokertest.RabbitMQURL(t))
	t.Setenv("ADMIN_ADDR", "127.0.0.1:0")
	t.Setenv("NOTIFIER_RETRY_DELAY", "200ms")
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	return cfg
}

// uniqueNames gives the test an exchange and queues of its own, removed when it ends.
func uniqueNames(t *testing.T) consume.Settings {
	t.Helper()
	s := loadConfig(t, nil).Consume()
	s.Exchange, s.Queue = brokertest.UniqueName(t, "orders"), brokertest.UniqueName(t, "notifier")
	t.Cleanup(func() { deleteTopology(t, s) })
	return s
}

// start runs the service graph of main with the names of the test.
func start(t *testing.T, cfg config.Config, names consume.Settings) *running {
	t.Helper()
	var (
		adminServer *admin.Server
		r           running
	)
	r.app = fxtest.New(t,
		platform.Options(cfg, zaptest.NewLogger(t)),
		modules,
		fx.Decorate(func(s consume.Settings) consume.Settings {
			s.Exchange, s.Queue = names.Exchange, names.Queue
			return s
		}),
		fx.Populate(&adminServer, &r.publisher, &r.conn),
	)
	r.app.RequireStart()
	t.Cleanup(func() {
		if !r.stopped {
			r.app.RequireStop()
		}
	})
	r.url = "http://" + adminServer.Addr().String()
	return &r
}

type notification struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Attempts   int       `json:"attempts"`
	SentAt     time.Time `json:"sent_at"`
}

func waitNotification(t *testing.T, baseURL, orderID string) notification {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		var status int
		status, body = get(t, baseURL+"/v1/notifications/"+orderID)
		return status == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "order %s never notified", orderID)
	var n notification
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	assert.Equal(t, orderID, n.OrderID)
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func publishOrder(t *testing.T, pub *rabbitmq.Publisher, exchange, orderID string) {
	t.Helper()
	body, err := ordersv1.MarshalOrderPlaced(&ordersv1.OrderPlaced{
		OrderId:    orderID,
		CustomerId: "c-42",
		Items:      []*ordersv1.PricedItem{{Sku: "BOOK-001", Quantity: 1, UnitPriceCents: 1299, LineTotalCents: 1299}},
		TotalCents: 1299,
		Currency:   "EUR",
		PlacedAt:   timestamppb.Now(),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, pub.Publish(ctx, exchange, ordersv1.RoutingKey, rabbitmq.Message{
		Body:        body,
		ContentType: ordersv1.ContentType,
		MessageID:   "evt-" + orderID,
		Headers:     map[string]any{ordersv1.HeaderEventType: ordersv1.EventTypeOrderPlaced},
	}))
}

// deleteTopology removes the queues and exchanges declared under the names of s.
func deleteTopology(t *testing.T, s consume.Settings) {
	t.Helper()
	conn, err := rabbitmq.NewConnection(rabbitmq.Config{
		URL: brokertest.RabbitMQURL(t), DialTimeout: 5 * time.Second, Heartbeat: 10 * time.Second,
		OperationTimeout: 5 * time.Second, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second,
		PublishTimeout: 5 * time.Second, PublisherChannels: 1, Prefetch: 1,
	}, zaptest.NewLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Start(ctx))
	defer conn.Close(ctx)
	ch, err := conn.Channel(ctx)
	require.NoError(t, err)
	defer ch.Close()
	var errs []string
	for _, q := range []string{s.Queue, s.RetryQueue(), s.DeadLetterQueue()} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			errs = append(errs, fmt.Sprintf("queue %s: %v", q, err))
		}
	}
	for _, x := range []string{s.Exchange, s.RetryExchange(), s.DeadLetterExchange()} {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			errs = append(errs, fmt.Sprintf("exchange %s: %v", x, err))
		}
	}
	assert.Empty(t, errs, strings.Join(errs, "; "))
}
