// Command price sends an order to the validator one line per message and prints the priced
// order it answers with: the client side of a client-streaming call
// (orders.v1.OrderValidation/PriceOrder).
//
//	go run ./labs/examples/grpc/price BOOK-001=2 BOOK-002=1          # the validator of make run
//	go run ./labs/examples/grpc/price --customer c-7 NOPE-1=1         # INVALID_ARGUMENT, with why
//
// The shape of every client-streaming call: Send each message, then CloseAndRecv, which closes
// the client's side and waits for the one answer. The server may end the call early (a 51st
// line, a changed customer); Send then returns io.EOF, and CloseAndRecv says why. One deadline
// covers the whole stream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "price:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50051", "the validator's gRPC address, host:port")
	customer := flag.String("customer", "c-42", "customer_id, sent with the first line")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of the whole stream")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: price [flags] SKU=QUANTITY...")
		flag.PrintDefaults()
	}
	flag.Parse()
	lines, err := parseLines(flag.Args())
	if err != nil {
		return err
	}

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("client for %s: %w", *addr, err)
	}
	defer conn.Close()

	// Ctrl-C or the deadline cancels the stream: the server's context ends with it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	stream, err := ordersv1.NewOrderValidationClient(conn).PriceOrder(ctx)
	if err != nil {
		return fmt.Errorf("open the stream: %w", err)
	}
	for i, line := range lines {
		req := &ordersv1.PriceOrderRequest{Item: line}
		if i == 0 {
			req.CustomerId = *customer
		}
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) { // the server ended the call: CloseAndRecv has its status
				fmt.Printf("the server ended the call after %d line(s)\n", i)
				break
			}
			return fmt.Errorf("send line %d: %w", i+1, err)
		}
		fmt.Printf("sent line %d: %s × %d\n", i+1, line.GetSku(), line.GetQuantity())
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		return describe(err)
	}
	for _, it := range res.GetItems() {
		fmt.Printf("%s × %d at %d = %d\n", it.GetSku(), it.GetQuantity(), it.GetUnitPriceCents(), it.GetLineTotalCents())
	}
	fmt.Printf("total %d cents %s\n", res.GetTotalCents(), res.GetCurrency())
	return nil
}

// parseLines reads SKU=QUANTITY arguments.
func parseLines(args []string) ([]*ordersv1.OrderItem, error) {
	if len(args) == 0 {
		return nil, errors.New("no order lines: give them as SKU=QUANTITY, e.g. BOOK-001=2")
	}
	lines := make([]*ordersv1.OrderItem, len(args))
	for i, arg := range args {
		sku, qty, ok := strings.Cut(arg, "=")
		n, err := strconv.ParseInt(qty, 10, 32)
		if !ok || sku == "" || err != nil {
			return nil, fmt.Errorf("%q: want SKU=QUANTITY, e.g. BOOK-001=2", arg)
		}
		lines[i] = &ordersv1.OrderItem{Sku: sku, Quantity: int32(n)}
	}
	return lines, nil
}

// describe turns a failed call into its code, its message and, for INVALID_ARGUMENT, every
// field violation of its google.rpc.BadRequest detail.
func describe(err error) error {
	st := status.Convert(err)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", st.Code(), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
			}
		}
	}
	return errors.New(b.String())
}
