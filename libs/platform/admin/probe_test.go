package admin_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
)

func TestProbeReady(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/readyz", r.URL.Path)
		if ready.Load() {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not ready","failed":["kafka"]}` + "\n{}"))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)

	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "[::]:" + port, "127.0.0.1:" + port} {
		assert.NoError(t, admin.ProbeReady(ctx, addr), addr)
	}

	ready.Store(false)
	err = admin.ProbeReady(ctx, ":"+port)
	require.Error(t, err)
	assert.Equal(t, `GET http://127.0.0.1:`+port+`/readyz: 503 Service Unavailable: {"status":"not ready","failed":["kafka"]}`, err.Error())

	assert.ErrorContains(t, admin.ProbeReady(ctx, "9090"), `admin address "9090"`)
}
