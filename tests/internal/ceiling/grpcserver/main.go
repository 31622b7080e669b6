// Command grpcserver is a grpc-go server that does nothing per call, for package ceiling's gRPC
// unary ceiling: the standard health service (grpc.health.v1.Health, status SERVING) and server
// reflection, no interceptor, default options. It prints "listening on ADDR" once it accepts
// calls and stops on SIGTERM or SIGINT.
//
//	grpcserver [-addr 127.0.0.1:0]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "grpcserver:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer()) // "" is SERVING from the start
	reflection.Register(s)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	fmt.Printf("listening on %s\n", l.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		s.Stop()
		return nil
	}
}
