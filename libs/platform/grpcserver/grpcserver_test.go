package grpcserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/backend-prep/backend-prep/libs/platform/grpcserver"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// testService is a gRPC service whose behaviour each test chooses.
type testService struct {
	testpb.UnimplementedTestServiceServer
	empty     func(ctx context.Context) error
	streaming func(stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error
}

var _ testpb.TestServiceServer = (*testService)(nil)

func (s *testService) Register(r grpc.ServiceRegistrar) { testpb.RegisterTestServiceServer(r, s) }

func (s *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if s.empty != nil {
		if err := s.empty(ctx); err != nil {
			return nil, err
		}
	}
	return &testpb.Empty{}, nil
}

func (s *testService) StreamingOutputCall(_ *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	return s.streaming(stream)
}

const testServiceName = "grpc.testing.TestService"

type testServer struct {
	*grpcserver.Server
	logs *observer.ObservedLogs
	reg  *prometheus.Registry
	conn *grpc.ClientConn
}

// startServer starts a server with svc; the test stops it itself or at cleanup.
func startServer(t *testing.T, svc *testService) *testServer {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	s, err := grpcserver.New(grpcserver.Config{Addr: "127.0.0.1:0"}, zap.New(core), reg, []grpcserver.Service{svc})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &testServer{Server: s, logs: logs, reg: reg, conn: conn}
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stopCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHealthServingAfterStart(t *testing.T) {
	srv := startServer(t, &testService{})
	client := healthpb.NewHealthClient(srv.conn)

	for _, service := range []string{"", testServiceName} {
		resp, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err, "service %q", service)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), "service %q", service)
	}

	_, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}

func TestHealthNotServingOnceStopBegins(t *testing.T) {
	srv := startServer(t, &testService{})
	watch, err := healthpb.NewHealthClient(srv.conn).Watch(callCtx(t), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(stopCtx(t, 600*time.Millisecond)) }()

	next, err := watch.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, next.GetStatus())
	// The open Watch stream itself keeps GracefulStop waiting, so the fallback ends it.
	assert.ErrorContains(t, <-stopped, "cancelled")
}

func TestReflectionListsServices(t *testing.T) {
	srv := startServer(t, &testService{})
	stream, err := reflectionpb.NewServerReflectionClient(srv.conn).ServerReflectionInfo(callCtx(t))
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
	sort.Strings(names)
	assert.Subset(t, names, []string{testServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"})
}

func TestPanicBecomesInternal(t *testing.T) {
	var panicking atomic.Bool
	panicking.Store(true)
	srv := startServer(t, &testService{empty: func(context.Context) error {
		if panicking.Load() {
			panic("secret internal state")
		}
		return nil
	}})
	client := testpb.NewTestServiceClient(srv.conn)

	_, err := client.EmptyCall(callCtx(t), &testpb.Empty{})

	assert.Equal(t, codes.Internal, status.Code(err))
	assert.NotContains(t, err.Error(), "secret", "panic values stay in the log")
	panics := srv.logs.FilterMessage("panic in gRPC handler").All()
	require.Len(t, panics, 1)
	assert.Equal(t, "secret internal state", panics[0].ContextMap()["panic"])
	assert.Contains(t, panics[0].ContextMap()["stack"], "grpcserver_test.(*testService).EmptyCall")

	panicking.Store(false)
	_, err = client.EmptyCall(callCtx(t), &testpb.Empty{})
	assert.NoError(t, err, "the server keeps serving")
}

func TestCallsAreLoggedWithRequestID(t *testing.T) {
	seen := make(chan string, 1)
	srv := startServer(t, &testService{empty: func(ctx context.Context) error {
		seen <- logging.RequestID(ctx)
		return nil
	}})
	ctx := metadata.AppendToOutgoingContext(callCtx(t), grpcserver.RequestIDKey, "req-from-order-api")

	_, err := testpb.NewTestServiceClient(srv.conn).EmptyCall(ctx, &testpb.Empty{})
	require.NoError(t, err)

	assert.Equal(t, "req-from-order-api", <-seen)
	calls := srv.logs.FilterField(zap.String("grpc.method", "EmptyCall")).All()
	require.Len(t, calls, 1, "one line per call")
	assert.Equal(t, zapcore.InfoLevel, calls[0].Level)
	fields := calls[0].ContextMap()
	assert.Equal(t, "req-from-order-api", fields["request_id"])
	assert.Equal(t, "OK", fields["grpc.code"])
	assert.Equal(t, testServiceName, fields["grpc.service"])
}

func TestRequestIDGeneratedWhenAbsent(t *testing.T) {
	seen := make(chan string, 1)
	srv := startServer(t, &testService{empty: func(ctx context.Context) error {
		seen <- logging.RequestID(ctx)
		return nil
	}})

	_, err := testpb.NewTestServiceClient(srv.conn).EmptyCall(callCtx(t), &testpb.Empty{})
	require.NoError(t, err)
	assert.Len(t, <-seen, 32)
}

func TestMetricsCountCallsByCode(t *testing.T) {
	srv := startServer(t, &testService{empty: func(context.Context) error {
		return status.Error(codes.InvalidArgument, "unknown SKU")
	}})
	client := testpb.NewTestServiceClient(srv.conn)

	_, err := client.EmptyCall(callCtx(t), &testpb.Empty{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	assert.Equal(t, 1.0, handled(t, srv.reg, "EmptyCall", "InvalidArgument"))
	assert.Equal(t, 0.0, handled(t, srv.reg, "EmptyCall", "OK"), "series exist before the first call")
}

// handled reads grpc_server_handled_total for one method and code of the test service.
func handled(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_service"] == testServiceName && labels["grpc_method"] == method && labels["grpc_code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no grpc_server_handled_total series for %s %s", method, code)
	return 0
}

func TestStopWaitsForRunningCalls(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, &testService{empty: func(context.Context) error {
		close(entered)
		<-release
		return nil
	}})

	callErr := make(chan error, 1)
	go func() {
		_, err := testpb.NewTestServiceClient(srv.conn).EmptyCall(callCtx(t), &testpb.Empty{})
		callErr <- err
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(stopCtx(t, 10*time.Second)) }()
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", srv.Addr().String(), 100*time.Millisecond)
		if err == nil {
			_ = conn.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the listener closes first")
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the running call finished: %v", err)
	default:
	}

	close(release)
	assert.NoError(t, <-callErr)
	assert.NoError(t, <-stopped)
}

func TestStopFallsBackToStopWhenAStreamHangs(t *testing.T) {
	entered := make(chan struct{})
	srv := startServer(t, &testService{streaming: func(stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
		close(entered)
		<-stream.Context().Done() // a stream that never finishes on its own
		return stream.Context().Err()
	}})
	stream, err := testpb.NewTestServiceClient(srv.conn).StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	<-entered

	ctx := stopCtx(t, time.Second)
	err = srv.Stop(ctx)

	assert.ErrorContains(t, err, "RPCs still running at the deadline were cancelled")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, ctx.Err(), "Stop returned before the caller's deadline, leaving time for other hooks")
	_, err = stream.Recv()
	require.Error(t, err)
	assert.False(t, errors.Is(err, io.EOF), "the stream was cut off, not finished: %v", err)
}

func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	s, err := grpcserver.New(grpcserver.Config{Addr: taken.Addr().String()}, zap.NewNop(), prometheus.NewRegistry(), nil)
	require.NoError(t, err)

	assert.ErrorContains(t, s.Start(context.Background()), "grpcserver: listen")
}

func TestNewFailsOnASharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := grpcserver.New(grpcserver.Config{}, zap.NewNop(), reg, nil)
	require.NoError(t, err)

	_, err = grpcserver.New(grpcserver.Config{}, zap.NewNop(), reg, nil)
	assert.ErrorContains(t, err, "register metrics")
}
