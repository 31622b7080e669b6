package admin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/config"
)

func TestModule(t *testing.T) {
	var (
		srv    *admin.Server
		broker = &fakeBroker{}
	)
	app := fxtest.New(t,
		fx.Supply(config.Base{AdminAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}),
		fx.Supply(zaptest.NewLogger(t)),
		admin.Module,
		fx.Supply(broker),
		fx.Provide(
			admin.AsCheck(func(b *fakeBroker) admin.Check { return admin.Check{Name: "broker", Check: b.ping} }),
			admin.AsRoute(func() admin.Route {
				return admin.Route{Pattern: "GET /hello", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					_, _ = io.WriteString(w, "hi")
				})}
			}),
		),
		fx.Invoke(func(reg prometheus.Registerer) {
			reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "module_test_total", Help: "Registered through fx."}))
		}),
		fx.Populate(&srv),
	)
	app.RequireStart()
	base := "http://" + srv.Addr().String()

	code, body := fetch(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "the broker is down")
	assert.Contains(t, body, `"broker":"not connected"`)

	broker.up.Store(true)
	code, _ = fetch(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	code, body = fetch(t, base+"/hello")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hi", body)

	_, body = fetch(t, base+"/metrics")
	assert.Contains(t, body, "module_test_total 0")

	app.RequireStop()
}

type fakeBroker struct{ up atomic.Bool }

func (b *fakeBroker) ping(context.Context) error {
	if !b.up.Load() {
		return errors.New("not connected")
	}
	return nil
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
