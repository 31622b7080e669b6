package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
)

func TestModule(t *testing.T) {
	var srv *grpcserver.Server
	app := fxtest.New(t,
		fx.Supply(grpcserver.Config{Addr: "127.0.0.1:0"}, zaptest.NewLogger(t)),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }),
		fx.Provide(grpcserver.AsService(func() *testService { return &testService{} })),
		grpcserver.Module,
		fx.Populate(&srv),
	)
	app.RequireStart()

	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = testpb.NewTestServiceClient(conn).EmptyCall(ctx, &testpb.Empty{})
	assert.NoError(t, err, "the service from the group is registered")

	app.RequireStop()
}
