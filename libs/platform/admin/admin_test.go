package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
)

func newServer(t *testing.T, opts admin.Options) *admin.Server {
	t.Helper()
	if opts.Gatherer == nil {
		opts.Gatherer = admin.NewRegistry()
	}
	s, err := admin.NewServer(zaptest.NewLogger(t), opts)
	require.NoError(t, err)
	return s
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func decodeReadiness(t *testing.T, rec *httptest.ResponseRecorder) readiness {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body readiness
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	return body
}

func TestLivez(t *testing.T) {
	s := newServer(t, admin.Options{Checks: []admin.Check{{Name: "down", Check: fail("down")}}})

	rec := get(t, s.Handler(), "/livez")

	assert.Equal(t, http.StatusOK, rec.Code, "liveness does not depend on readiness")
	assert.Equal(t, "ok\n", rec.Body.String())
}

func pass(context.Context) error { return nil }

func fail(msg string) func(context.Context) error {
	return func(context.Context) error { return errors.New(msg) }
}

func TestReadyz(t *testing.T) {
	// hang ignores its context entirely, like a client without a deadline.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(context.Context) error { <-release; return nil }
	honourDeadline := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name       string
		checks     []admin.Check
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{
			name:       "no checks",
			wantCode:   http.StatusOK,
			wantStatus: "ready",
			wantChecks: map[string]string{},
		},
		{
			name:       "all checks pass",
			checks:     []admin.Check{{Name: "kafka", Check: pass}, {Name: "rabbitmq", Check: pass}},
			wantCode:   http.StatusOK,
			wantStatus: "ready",
			wantChecks: map[string]string{"kafka": "ok", "rabbitmq": "ok"},
		},
		{
			name:       "one check fails",
			checks:     []admin.Check{{Name: "kafka", Check: pass}, {Name: "rabbitmq", Check: fail("connection refused")}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"kafka": "ok", "rabbitmq": "connection refused"},
		},
		{
			name:       "a check that ignores its deadline",
			checks:     []admin.Check{{Name: "kafka", Check: pass}, {Name: "stuck", Check: hang}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"kafka": "ok", "stuck": "no answer within 250ms"},
		},
		{
			name:       "a check that gives up at its deadline",
			checks:     []admin.Check{{Name: "slow", Check: honourDeadline}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"slow": "no answer within 250ms"},
		},
		{
			name:       "a panicking check",
			checks:     []admin.Check{{Name: "buggy", Check: func(context.Context) error { panic("nil map") }}},
			wantCode:   http.StatusServiceUnavailable,
			wantStatus: "not ready",
			wantChecks: map[string]string{"buggy": "panic: nil map"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, admin.Options{Checks: tt.checks, CheckTimeout: 250 * time.Millisecond})

			rec := get(t, s.Handler(), "/readyz")

			assert.Equal(t, tt.wantCode, rec.Code)
			body := decodeReadiness(t, rec)
			assert.Equal(t, tt.wantStatus, body.Status)
			assert.Equal(t, tt.wantChecks, body.Checks)
		})
	}
}

func TestReadyzRunsChecksConcurrently(t *testing.T) {
	// Each check waits for the other to have started: run one after the other, the first would
	// wait for the second until the deadline.
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	meet := func(mine, theirs chan struct{}) func(context.Context) error {
		return func(ctx context.Context) error {
			close(mine)
			select {
			case <-theirs:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	s := newServer(t, admin.Options{
		Checks: []admin.Check{
			{Name: "a", Check: meet(aStarted, bStarted)},
			{Name: "b", Check: meet(bStarted, aStarted)},
		},
		CheckTimeout: 5 * time.Second,
	})

	rec := get(t, s.Handler(), "/readyz")

	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestNewServerRejectsBadChecksAndRoutes(t *testing.T) {
	ok := http.NotFoundHandler()
	tests := []struct {
		name    string
		opts    admin.Options
		wantErr string
	}{
		{"check without name", admin.Options{Checks: []admin.Check{{Check: pass}}}, "needs a name and a function"},
		{"check without function", admin.Options{Checks: []admin.Check{{Name: "kafka"}}}, "needs a name and a function"},
		{"two checks with one name", admin.Options{Checks: []admin.Check{{Name: "kafka", Check: pass}, {Name: "kafka", Check: pass}}}, `two readiness checks named "kafka"`},
		{"route clashing with a built-in", admin.Options{Routes: []admin.Route{{Pattern: "GET /livez", Handler: ok}}}, `route "GET /livez"`},
		{"route with an invalid pattern", admin.Options{Routes: []admin.Route{{Pattern: "GET", Handler: ok}}}, `route "GET"`},
		{"route without handler", admin.Options{Routes: []admin.Route{{Pattern: "/x"}}}, "has no handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Gatherer = admin.NewRegistry()
			_, err := admin.NewServer(zaptest.NewLogger(t), tt.opts)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := admin.NewRegistry()
	orders := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_accepted_total", Help: "Orders accepted."})
	reg.MustRegister(orders)
	orders.Add(3)
	s := newServer(t, admin.Options{Gatherer: reg})

	rec := get(t, s.Handler(), "/metrics")

	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, "go_goroutines ")
	assert.Contains(t, body, "process_start_time_seconds ")
	assert.Contains(t, body, "orders_accepted_total 3")
}

func TestProfiles(t *testing.T) {
	s := newServer(t, admin.Options{Gatherer: prometheus.NewRegistry()})

	index := get(t, s.Handler(), "/debug/pprof/")
	assert.Equal(t, http.StatusOK, index.Code)
	assert.Contains(t, index.Body.String(), "goroutine", "the index lists the profiles")

	heap := get(t, s.Handler(), "/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, heap.Code)
	assert.Contains(t, heap.Body.String(), "heap profile")

	cpu := get(t, s.Handler(), "/debug/pprof/profile?seconds=1")
	assert.Equal(t, http.StatusOK, cpu.Code, cpu.Body.String())
	assert.NotEmpty(t, cpu.Body.Bytes(), "a CPU profile")
}

func TestExtraRoutes(t *testing.T) {
	notifications := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "notification for %s", r.PathValue("order_id"))
	})
	s := newServer(t, admin.Options{Routes: []admin.Route{
		{Pattern: "GET /v1/notifications/{order_id}", Handler: notifications},
	}})

	rec := get(t, s.Handler(), "/v1/notifications/o-42")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "notification for o-42", rec.Body.String())

	rec = get(t, s.Handler(), "/v1/unknown")
	assert.Equal(t, http.StatusNotFound, rec.Code)
}

func TestStartListensAndStopCloses(t *testing.T) {
	s := newServer(t, admin.Options{Addr: "127.0.0.1:0"})
	require.Nil(t, s.Addr(), "no address before Start")

	require.NoError(t, s.Start(context.Background()))
	addr := s.Addr().String()

	resp, err := http.Get("http://" + addr + "/livez")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx))

	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "nothing listens after Stop")
}

func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })

	s := newServer(t, admin.Options{Addr: taken.Addr().String()})

	err = s.Start(context.Background())
	assert.ErrorContains(t, err, "admin: listen")
}
