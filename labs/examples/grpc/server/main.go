// Command server is a gRPC server for labs.v1.MessageService (proto/labs/v1/hello.proto): the
// learning path's Python gRPC server in Go.
//
//	go run ./labs/examples/grpc/server                    # listens on 127.0.0.1:50052
//	go run ./labs/examples/grpc/server --delay 2s         # answers slowly: try a client deadline
//
// The Go code for the messages and the service interface is generated from the .proto file by
// `make generate` into libs/genproto/labs/v1. This program implements the interface, registers
// it on a gRPC server with reflection (so grpcurl can list and call it) and a logging
// interceptor, and stops gracefully on Ctrl-C. The validator is this program grown up:
// services/validator/internal/grpcapi and libs/platform/grpcserver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	labsv1 "github.com/backend-prep/backend-prep/libs/genproto/labs/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// messageService implements labsv1.MessageServiceServer. Embedding the Unimplemented type keeps
// it compiling when the service gains methods: they answer UNIMPLEMENTED until written.
type messageService struct {
	labsv1.UnimplementedMessageServiceServer
	delay time.Duration
}

var _ labsv1.MessageServiceServer = (*messageService)(nil)

// SendMessage answers "Got: <content>". ctx ends when the client's deadline passes or it
// cancels; a handler that waits must give up then, or it works for nobody.
func (s *messageService) SendMessage(ctx context.Context, req *labsv1.SendMessageRequest) (*labsv1.SendMessageResponse, error) {
	if req.GetContent() == "" {
		// A status code tells the client what kind of failure this is; InvalidArgument means
		// "do not retry the same request".
		return nil, status.Error(codes.InvalidArgument, "content must not be empty")
	}
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &labsv1.SendMessageResponse{Reply: "Got: " + req.GetContent()}, nil
}

// logCalls is a unary interceptor: code that runs around every call, here to print one line
// with the method, the outcome and the time taken.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	began := time.Now()
	res, err := handler(ctx, req)
	fmt.Printf("%s: %s in %s\n", info.FullMethod, status.Code(err), time.Since(began).Round(time.Millisecond))
	return res, err
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50052", "address to listen on (the validator has 50051)")
	delay := flag.Duration("delay", 0, "wait this long before every answer")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	labsv1.RegisterMessageServiceServer(srv, &messageService{delay: *delay})
	reflection.Register(srv)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	fmt.Printf("listening on %s (Ctrl-C to stop)\n", lis.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// GracefulStop refuses new calls and waits for those in flight; a call that takes too long
	// should not hold the process forever, hence Stop after a few seconds.
	fmt.Println("stopping")
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Println("stopped")
	return nil
}
