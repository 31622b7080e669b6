package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/order-api/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency/idempotencytest"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatorclient"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

func TestMain(m *testing.M) { brokertest.Main(m) }

// broker stands in for a broker publisher: it records the events it confirms, or fails.
type broker struct {
	name string
	// fail, when set, is returned instead of confirming.
	fail error
	// hang makes Publish wait for its deadline, like a broker that never confirms.
	hang bool
	// discard confirms without recording, for long fuzzing runs.
	discard bool

	mu     sync.Mutex
	events []orders.Event
}

func (b *broker) Name() string { return b.name }

func (b *broker) Publish(ctx context.Context, e orders.Event) error {
	if b.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if b.fail != nil {
		return b.fail
	}
	if b.discard {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
	return nil
}

func (b *broker) published() []orders.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]orders.Event(nil), b.events...)
}

// api is the HTTP API as order-api serves it — the platform's echo with its middleware, the
// handler, the order logic and the gRPC validator client — with a stand-in validator and
// stand-in brokers.
type api struct {
	echo      *echo.Echo
	validator *validatortest.Validator
	kafka     *broker
	rabbitmq  *broker
}

type apiOptions struct {
	validator        *validatortest.Validator // nil: one that answers normally
	validatorAddr    string                   // overrides where the client connects
	validatorTimeout time.Duration
	publishTimeout   time.Duration
	kafka, rabbitmq  *broker
	// keys is the idempotency store; nil: a store of its own on the real PostgreSQL.
	keys *idempotency.Store
}

const retryAfter = 3 * time.Second

func newAPI(t testing.TB, opts apiOptions) *api {
	t.Helper()
	if opts.validator == nil {
		opts.validator = &validatortest.Validator{}
	}
	if opts.validatorAddr == "" {
		opts.validatorAddr = validatortest.Start(t, opts.validator).Addr
	}
	if opts.validatorTimeout == 0 {
		opts.validatorTimeout = 5 * time.Second
	}
	if opts.publishTimeout == 0 {
		opts.publishTimeout = 5 * time.Second
	}
	if opts.kafka == nil {
		opts.kafka = &broker{name: "kafka"}
	}
	if opts.rabbitmq == nil {
		opts.rabbitmq = &broker{name: "rabbitmq"}
	}

	client, err := validatorclient.New(opts.validatorAddr, opts.validatorTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	svc, err := orders.NewService(client, []orders.Publisher{opts.kafka, opts.rabbitmq}, orders.Options{PublishTimeout: opts.publishTimeout})
	require.NoError(t, err)
	if opts.keys == nil {
		opts.keys = openStore(t, idempotencytest.URL(t))
	}
	reg := prometheus.NewRegistry()
	h, err := httpapi.NewHandler(svc, opts.keys, reg, httpapi.Options{RetryAfter: retryAfter})
	require.NoError(t, err)
	e, err := httpserver.New(zap.NewNop(), reg)
	require.NoError(t, err)
	h.Register(e)
	return &api{echo: e, validator: opts.validator, kafka: opts.kafka, rabbitmq: opts.rabbitmq}
}

// openStore returns a migrated idempotency store on the database at url, as order-api opens it.
func openStore(t testing.TB, url string) *idempotency.Store {
	t.Helper()
	pool, err := idempotency.NewPool(idempotency.Config{URL: url})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	keys, err := idempotency.New(pool, idempotency.Options{Retention: time.Hour, Lease: 30 * time.Second, QueryTimeout: 2 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, keys.Migrate(ctx))
	return keys
}

// serve runs one request through the API.
func (a *api) serve(req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	a.echo.ServeHTTP(rec, req)
	return rec.Result()
}

// orderRequest is a POST /v1/orders with body as JSON and the given headers (name, value, …).
func orderRequest(body string, headers ...string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// problemBody is what every error response carries.
type problemBody struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail"`
	Violations []violation `json:"violations"`
}

type violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func readProblem(t testing.TB, resp *http.Response) problemBody {
	t.Helper()
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p problemBody
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), "a problem has only the documented members")
	return p
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
