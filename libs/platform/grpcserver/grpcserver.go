// Package grpcserver runs a service's gRPC API by the book: an OpenTelemetry stats handler
// (a server span per call), chained interceptors (request ID, Prometheus metrics, zap logging,
// panic recovery), the standard health service
// (grpc.health.v1.Health) and server reflection, so grpcurl works without .proto files.
//
// A service contributes its implementations as Service values through an fx value group and
// supplies the listen address as a Config:
//
//	fx.Provide(
//		func(c config.Config) grpcserver.Config { return grpcserver.Config{Addr: c.GRPCAddr} },
//		grpcserver.AsService(validation.NewServer), // *validation.Server has Register(grpc.ServiceRegistrar)
//	),
//	grpcserver.Module,
//
// Health reports SERVING for the server ("") and every registered service once Start has run,
// and NOT_SERVING from the moment Stop begins.
package grpcserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime/debug"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	grpcmiddleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	grpclogging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/backend-prep/backend-prep/libs/platform/internal/drain"
	"github.com/backend-prep/backend-prep/libs/platform/internal/serve"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// Config is what a service supplies to Module.
type Config struct {
	// Addr is the listen address, host:port; port 0 picks a free port (see Server.Addr).
	Addr string
}

// Service registers gRPC service implementations, typically with one generated call:
//
//	func (s *Server) Register(r grpc.ServiceRegistrar) { ordersv1.RegisterOrderValidationServer(r, s) }
type Service interface {
	Register(r grpc.ServiceRegistrar)
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(r grpc.ServiceRegistrar)

// Register calls f(r).
func (f ServiceFunc) Register(r grpc.ServiceRegistrar) { f(r) }

// RequestIDKey is the metadata key a client may set to carry its request ID into this server's
// logs; without it the server makes one up.
const RequestIDKey = "x-request-id"

// Server is the gRPC server.
type Server struct {
	cfg    Config
	log    *zap.Logger
	grpc   *grpc.Server
	health *health.Server

	loop serve.Loop
}

// New builds a server with services registered, and its metrics registered on reg. It does not
// listen yet. Extra options (message size limits, keepalive) are appended to the platform's.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer, services []Service, opts ...grpc.ServerOption) (*Server, error) {
	log = log.Named("grpc")
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	if err := reg.Register(metrics); err != nil {
		return nil, fmt.Errorf("grpcserver: register metrics: %w", err)
	}
	callLog := grpclogging.LoggerFunc(func(ctx context.Context, lvl grpclogging.Level, msg string, fields ...any) {
		logging.FromContext(ctx, log).Log(zapLevel(lvl), msg, zapFields(fields)...)
	})
	logOpts := []grpclogging.Option{grpclogging.WithLogOnEvents(grpclogging.FinishCall)}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logging.FromContext(ctx, log).Error("panic in gRPC handler",
			zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}

	// Outermost first. Recovery is innermost so a panic is a plain Internal error by the time the
	// logging and metrics interceptors see it.
	gs := grpc.NewServer(append([]grpc.ServerOption{
		// A server span per call, a child of the client's span (W3C traceparent in the metadata).
		// Health checks are probes, not work: they would bury the calls worth seeing.
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
		grpc.ChainUnaryInterceptor(
			unaryRequestID,
			metrics.UnaryServerInterceptor(),
			grpclogging.UnaryServerInterceptor(callLog, logOpts...),
			recovery.UnaryServerInterceptor(recoverOpts...),
		),
		grpc.ChainStreamInterceptor(
			streamRequestID,
			metrics.StreamServerInterceptor(),
			grpclogging.StreamServerInterceptor(callLog, logOpts...),
			recovery.StreamServerInterceptor(recoverOpts...),
		),
	}, opts...)...)

	for _, svc := range services {
		svc.Register(gs)
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	metrics.InitializeMetrics(gs)

	s := &Server{cfg: cfg, log: log, grpc: gs, health: hs}
	s.setServing(healthpb.HealthCheckResponse_NOT_SERVING) // until Start
	return s, nil
}

func (s *Server) setServing(st healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", st)
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, st)
	}
}

// Start listens before returning, so a taken port fails start-up, then serves in the background
// and reports SERVING.
func (s *Server) Start(ctx context.Context) error {
	err := s.loop.Start(ctx, "grpc server", s.cfg.Addr, s.log, func(ln net.Listener) error {
		if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("grpcserver: %w", err)
	}
	s.setServing(healthpb.HealthCheckResponse_SERVING)
	return nil
}

// Stop reports NOT_SERVING, then stops gracefully: no new RPCs, running ones may finish within a
// share of ctx's time (see package drain). RPCs still running then — a stuck stream, a health
// Watch — are cancelled with Stop, and Stop reports it.
func (s *Server) Stop(ctx context.Context) error {
	return s.loop.Stop(func() error {
		s.health.Shutdown()
		drainCtx, cancel := drain.Context(ctx)
		defer cancel()
		graceful := make(chan struct{})
		go func() {
			defer close(graceful)
			s.grpc.GracefulStop()
		}()
		select {
		case <-graceful:
			return nil
		case <-drainCtx.Done():
			s.grpc.Stop()
			<-graceful
			return fmt.Errorf("grpcserver: RPCs still running at the deadline were cancelled: %w", drainCtx.Err())
		}
	})
}

// Addr is the address the server listens on, nil before Start. Tests listen on port 0 and ask.
func (s *Server) Addr() net.Addr { return s.loop.Addr() }

// withRequestID puts the caller's request ID, or a new one, in the handler's context.
func withRequestID(ctx context.Context) context.Context {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(RequestIDKey); len(ids) > 0 {
			id = ids[0]
		}
	}
	if id == "" {
		id = newRequestID()
	}
	return logging.WithRequestID(ctx, id)
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func unaryRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withRequestID(ctx), req)
}

func streamRequestID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	wrapped := grpcmiddleware.WrapServerStream(ss)
	wrapped.WrappedContext = withRequestID(ss.Context())
	return handler(srv, wrapped)
}

func zapLevel(l grpclogging.Level) zapcore.Level {
	switch {
	case l >= grpclogging.LevelError:
		return zapcore.ErrorLevel
	case l >= grpclogging.LevelWarn:
		return zapcore.WarnLevel
	case l >= grpclogging.LevelInfo:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}

// zapFields converts the interceptor's alternating key/value list.
func zapFields(kv []any) []zap.Field {
	fields := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		fields = append(fields, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
	}
	return fields
}
