package platform_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
)

// serviceConfig is shaped like every service's config: Base plus the service's own variables.
type serviceConfig struct {
	config.Base
	HTTPAddr string
	GRPCAddr string
}

func testBase() config.Base {
	return config.Base{
		LogLevel:        zapcore.InfoLevel,
		LogFormat:       "json",
		AdminAddr:       "127.0.0.1:0",
		ShutdownTimeout: 5 * time.Second,
	}
}

func TestWholeGraph(t *testing.T) {
	cfg := serviceConfig{Base: testBase(), HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"}
	var (
		adminSrv *admin.Server
		httpSrv  *httpserver.Server
		grpcSrv  *grpcserver.Server
		gotCfg   serviceConfig
		gotBase  config.Base
	)
	app := fxtest.New(t,
		platform.Options(cfg, zaptest.NewLogger(t)),
		fx.Provide(
			func(c serviceConfig) httpserver.Config { return httpserver.Config{Addr: c.HTTPAddr} },
			func(c serviceConfig) grpcserver.Config { return grpcserver.Config{Addr: c.GRPCAddr} },
			httpserver.AsRoutes(func() httpserver.RoutesFunc {
				return func(e *echo.Echo) {
					e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "hello") })
				}
			}),
			admin.AsCheck(func() admin.Check {
				return admin.Check{Name: "dependency", Check: func(context.Context) error { return nil }}
			}),
		),
		httpserver.Module,
		grpcserver.Module,
		fx.Populate(&adminSrv, &httpSrv, &grpcSrv, &gotCfg, &gotBase),
	)
	app.RequireStart()

	assert.Equal(t, cfg, gotCfg, "the service's own config is injectable")
	assert.Equal(t, cfg.Base, gotBase, "and so is its Base")

	adminURL := "http://" + adminSrv.Addr().String()
	code, body := get(t, adminURL+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ready","checks":{"dependency":"ok","http":"ok"}}`, body)

	code, body = get(t, "http://"+httpSrv.Addr().String()+"/hello")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello", body)

	conn, err := grpc.NewClient(grpcSrv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, health.GetStatus())

	_, metrics := get(t, adminURL+"/metrics")
	assert.Contains(t, metrics, "go_goroutines ", "runtime metrics")
	assert.Contains(t, metrics, `http_requests_total{method="GET",route="/hello",status="200"} 1`, "HTTP metrics on the same registry")
	assert.Contains(t, metrics, `grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 1`, "gRPC metrics on the same registry")

	app.RequireStop()
}

func TestOptionsAcceptBaseAlone(t *testing.T) {
	var got config.Base
	app := fxtest.New(t, platform.Options(testBase(), zap.NewNop()), fx.Populate(&got))
	app.RequireStart()
	assert.Equal(t, testBase(), got)
	app.RequireStop()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
