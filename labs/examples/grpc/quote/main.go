// Command quote keeps a basket priced live by the validator: the client side of a bidirectional
// streaming call (orders.v1.OrderValidation/QuoteOrder). Each change sets one SKU's quantity
// (0 removes it); each is answered by a quote of the whole basket.
//
//	go run ./labs/examples/grpc/quote BOOK-001=2 NOPE-1=1 BOOK-001=0
//	go run ./labs/examples/grpc/quote                 # changes typed on standard input: BOOK-001=2
//
// The two directions are independent: one goroutine sends the changes, this one receives the
// quotes until Recv returns io.EOF — the server's end of the stream, after the client closed its
// side with CloseSend. A deadline (--timeout) or Ctrl-C cancels the whole stream, both ways.
package main

import (
	"bufio"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quote:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50051", "the validator's gRPC address, host:port")
	timeout := flag.Duration("timeout", time.Minute, "deadline of the whole stream")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: quote [flags] [SKU=QUANTITY...]   (without arguments: one change per line of standard input)")
		flag.PrintDefaults()
	}
	flag.Parse()

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("client for %s: %w", *addr, err)
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	stream, err := ordersv1.NewOrderValidationClient(conn).QuoteOrder(ctx)
	if err != nil {
		return fmt.Errorf("open the stream: %w", err)
	}

	// The sender, owned by run: it ends when the changes do (then it closes the client's side)
	// or when ctx does; run waits for it before returning. The changes come from the arguments
	// or from a reader of standard input, which stops at the end of its input or with ctx — but a
	// read already waiting on a terminal cannot be interrupted: it ends with the process.
	changes := make(chan string)
	go readChanges(ctx, flag.Args(), changes)
	sent := make(chan error, 1)
	go func() { sent <- sendChanges(ctx, stream, changes) }()

	quotes := 0
	for {
		q, err := stream.Recv()
		if errors.Is(err, io.EOF) { // the server ended the stream: every change was answered
			break
		}
		if err != nil {
			ended := ctx.Err() // before cancel: did our deadline or Ctrl-C end the stream?
			cancel()           // stops the sender too
			st := status.Convert(err)
			msg := st.Message()
			switch {
			case st.Code() == codes.DeadlineExceeded:
				// Both sides hold the deadline, and the one that notices first words it: the
				// client "context deadline exceeded", the server's reset "stream terminated by
				// RST_STREAM with error code: CANCEL" — possibly a moment before our own timer
				// has fired, so ctx.Err() may still be nil. Say it the same way each time.
				msg = context.DeadlineExceeded.Error()
			case st.Code() == codes.Canceled && ended != nil:
				msg = ended.Error() // Ctrl-C
			}
			err = fmt.Errorf("after %d quote(s): %s: %s", quotes, st.Code(), msg)
			if sendErr := <-sent; sendErr != nil && status.Code(sendErr) != st.Code() {
				err = errors.Join(err, sendErr) // a failure of its own, not this one seen again
			}
			return err
		}
		quotes++
		printQuote(q)
	}
	if err := <-sent; err != nil {
		return err
	}
	fmt.Printf("%d quote(s); the server ended the stream\n", quotes)
	return nil
}

// readChanges passes on the changes given as arguments, or else the lines of standard input, and
// closes changes at their end.
func readChanges(ctx context.Context, args []string, changes chan<- string) {
	defer close(changes)
	pass := func(change string) bool {
		select {
		case changes <- change:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if len(args) > 0 {
		for _, arg := range args {
			if !pass(arg) {
				return
			}
		}
		return
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if line := strings.TrimSpace(in.Text()); line != "" && !pass(line) {
			return
		}
	}
}

// sendChanges sends each change as one message until there are no more, then closes the
// client's side of the stream. A change that does not parse is reported and skipped: a typo on
// the terminal is not the end of the basket.
func sendChanges(ctx context.Context, stream grpc.BidiStreamingClient[ordersv1.QuoteOrderRequest, ordersv1.QuoteOrderResponse], changes <-chan string) error {
	for {
		select {
		case <-ctx.Done():
			return nil // Recv reports why
		case change, ok := <-changes:
			if !ok {
				return stream.CloseSend()
			}
			req, err := parseChange(change)
			if err != nil {
				fmt.Fprintln(os.Stderr, "quote:", err)
				continue
			}
			if err := stream.Send(req); err != nil {
				if errors.Is(err, io.EOF) { // the stream is over: Recv reports why
					return nil
				}
				return fmt.Errorf("send %s: %w", change, err)
			}
		}
	}
}

// parseChange reads SKU=QUANTITY.
func parseChange(s string) (*ordersv1.QuoteOrderRequest, error) {
	sku, qty, ok := strings.Cut(s, "=")
	n, err := strconv.ParseInt(qty, 10, 32)
	if !ok || sku == "" || err != nil {
		return nil, fmt.Errorf("%q: want SKU=QUANTITY, e.g. BOOK-001=2 (0 removes the line)", s)
	}
	return &ordersv1.QuoteOrderRequest{Sku: sku, Quantity: int32(n)}, nil
}

func printQuote(q *ordersv1.QuoteOrderResponse) {
	for _, v := range q.GetViolations() {
		fmt.Printf("refused: %s: %s\n", v.GetField(), v.GetDescription())
	}
	lines := make([]string, len(q.GetItems()))
	for i, it := range q.GetItems() {
		lines[i] = fmt.Sprintf("%s × %d", it.GetSku(), it.GetQuantity())
	}
	basket := strings.Join(lines, ", ")
	if basket == "" {
		basket = "empty"
	}
	fmt.Printf("basket: %s; total %d cents %s\n", basket, q.GetTotalCents(), q.GetCurrency())
}
