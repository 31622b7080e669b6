// Command client calls labs.v1.MessageService/SendMessage (proto/labs/v1/hello.proto) and
// prints the reply: the learning path's Python gRPC client in Go, with a deadline on the call.
//
//	go run ./labs/examples/grpc/client                              # "Hello gRPC" to 127.0.0.1:50052
//	go run ./labs/examples/grpc/client --content hi
//	go run ./labs/examples/grpc/client --timeout 500ms              # against a server run with --delay 2s
//
// A failed call prints its status code — DeadlineExceeded, Unavailable, InvalidArgument — which
// is how a gRPC client decides what to do next. order-api calls the validator the same way:
// services/order-api/internal/validatorclient.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	labsv1 "github.com/backend-prep/backend-prep/libs/genproto/labs/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50052", "server address, host:port")
	content := flag.String("content", "Hello gRPC", "message to send")
	timeout := flag.Duration("timeout", 2*time.Second, "deadline of the call")
	flag.Parse()

	// NewClient does not connect yet: the connection is made, and kept, on the first call.
	// Plaintext is fine on localhost; across a network a client uses TLS credentials.
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("client for %s: %w", *addr, err)
	}
	defer conn.Close()

	// The deadline travels with the call (the grpc-timeout header): the server's context ends
	// at the same moment, so both sides stop waiting.
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	began := time.Now()
	res, err := labsv1.NewMessageServiceClient(conn).SendMessage(ctx, &labsv1.SendMessageRequest{Content: *content})
	if err != nil {
		st := status.Convert(err)
		return fmt.Errorf("SendMessage failed after %s: %s: %s", time.Since(began).Round(time.Millisecond), st.Code(), st.Message())
	}
	fmt.Println(res.GetReply())
	return nil
}
