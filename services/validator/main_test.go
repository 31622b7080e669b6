package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/services/validator/internal/config"
)

// running is the validator's graph, started on free ports.
type running struct {
	conn  *grpc.ClientConn
	admin string // base URL of the admin server
}

// start loads the configuration from the environment as main does, with free ports, and starts
// the graph; env adds variables for this test.
func start(t *testing.T, env map[string]string) running {
	t.Helper()
	t.Setenv("GRPC_ADDR", "127.0.0.1:0")
	t.Setenv("ADMIN_ADDR", "127.0.0.1:0")
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	var (
		grpcSrv  *grpcserver.Server
		adminSrv *admin.Server
	)
	app := fxtest.New(t, platform.Options(cfg, zaptest.NewLogger(t)), modules(), fx.Populate(&grpcSrv, &adminSrv))
	app.RequireStart()
	t.Cleanup(app.RequireStop)

	conn, err := grpc.NewClient(grpcSrv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return running{conn: conn, admin: "http://" + adminSrv.Addr().String()}
}

func callContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGraphServesTheValidator(t *testing.T) {
	r := start(t, nil)
	client := ordersv1.NewOrderValidationClient(r.conn)

	t.Run("ValidateOrder prices an order", func(t *testing.T) {
		resp, err := client.ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{
			CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 2}},
		})
		require.NoError(t, err)
		assert.Equal(t, int64(2598), resp.GetTotalCents())
		assert.Equal(t, "USD", resp.GetCurrency())
	})

	t.Run("violations survive the platform's interceptors", func(t *testing.T) {
		_, err := client.ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{CustomerId: "c-42"})
		st := status.Convert(err)
		assert.Equal(t, codes.InvalidArgument, st.Code())
		assert.Len(t, st.Details(), 1, "the BadRequest detail")
	})

	t.Run("health reports SERVING", func(t *testing.T) {
		health := healthpb.NewHealthClient(r.conn)
		for _, service := range []string{"", "orders.v1.OrderValidation"} {
			resp, err := health.Check(callContext(t), &healthpb.HealthCheckRequest{Service: service})
			require.NoError(t, err, "service %q", service)
			assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), "service %q", service)
		}
	})

	t.Run("reflection lists the services, as grpcurl sees them", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(r.conn).ServerReflectionInfo(callContext(t))
		require.NoError(t, err)
		require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		assert.Contains(t, names, "orders.v1.OrderValidation")
		assert.Contains(t, names, "grpc.health.v1.Health")
	})

	t.Run("readyz reports the catalog and the gRPC server ready", func(t *testing.T) {
		code, body := get(t, r.admin+"/readyz")
		assert.Equal(t, http.StatusOK, code, body)
		var readiness struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &readiness))
		assert.Equal(t, "ready", readiness.Status)
		assert.Equal(t, map[string]string{"catalog": "ok", "grpc": "ok"}, readiness.Checks)
	})

	t.Run("metrics count the calls", func(t *testing.T) {
		code, body := get(t, r.admin+"/metrics")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="ValidateOrder"`)
	})
}

func TestGraphHonoursValidatorDelay(t *testing.T) {
	r := start(t, map[string]string{"VALIDATOR_DELAY": "1m"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	_, err := ordersv1.NewOrderValidationClient(r.conn).ValidateOrder(ctx, &ordersv1.ValidateOrderRequest{
		CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 1}},
	})

	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

func TestGraphLoadsCatalogPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"currency":"EUR","products":[
		{"sku":"MUG-001","name":"Mug","category":"kitchen","unit_price_cents":899,"max_quantity":10}]}`), 0o600))
	r := start(t, map[string]string{"CATALOG_PATH": path})

	resp, err := ordersv1.NewOrderValidationClient(r.conn).ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{
		CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "MUG-001", Quantity: 3}},
	})

	require.NoError(t, err)
	assert.Equal(t, int64(2697), resp.GetTotalCents())
	assert.Equal(t, "EUR", resp.GetCurrency())
}

func TestGraphRefusesABadCatalog(t *testing.T) {
	tests := []struct {
		name    string
		content string // written to the file; no file when empty
		wantErr string
	}{
		{name: "missing file", wantErr: "no such file or directory"},
		{name: "duplicate sku", content: `{"currency":"USD","products":[
			{"sku":"MUG-001","name":"Mug","category":"kitchen","unit_price_cents":899,"max_quantity":10},
			{"sku":"MUG-001","name":"Mug","category":"kitchen","unit_price_cents":899,"max_quantity":10}]}`,
			wantErr: `products[1] (sku "MUG-001"): duplicate sku, first at products[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.json")
			if tt.content != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			}
			t.Setenv("CATALOG_PATH", path)
			t.Setenv("GRPC_ADDR", "127.0.0.1:0")
			t.Setenv("ADMIN_ADDR", "127.0.0.1:0")
			cfg, err := platformconfig.Load[config.Config]()
			require.NoError(t, err)

			app := fx.New(platform.Options(cfg, zaptest.NewLogger(t)), modules())

			require.Error(t, app.Err(), "start-up stops before anything listens")
			assert.ErrorContains(t, app.Err(), "CATALOG_PATH=")
			assert.ErrorContains(t, app.Err(), tt.wantErr)
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(callContext(t), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
