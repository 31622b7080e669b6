package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

var noDeadline = scenario{
	name:  "no-deadline",
	step:  5,
	needs: "nothing: the check runs validators of its own",
	title: "checkout hangs while the validator is stuck",
	symptom: "The quote tool in labs/_workspace/no-deadline/main.go prices every checkout. When the " +
		"validator got stuck for a minute (a deploy gone wrong), every checkout hung for that minute, " +
		"and the web servers ran out of workers. `make lab ARGS='check no-deadline'` runs it against a " +
		"validator that never answers, and against one that answers in 200 ms.",
	hints: []string{
		"How long does the tool wait for an answer? Where would that be said in a gRPC call?",
		"A gRPC call waits as long as its context allows, and context.Background() allows forever.",
		"Give the call a deadline with context.WithTimeout: long enough for a normal answer (milliseconds; 200 ms in the check), short enough that a checkout fails fast and can retry or say so.",
		"ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second); defer cancel(), and pass ctx to ValidateOrder. A stuck validator then ends the call with codes.DeadlineExceeded.",
	},
	inject:  func(context.Context, config) error { return copyIncident("no-deadline") },
	restore: func(context.Context, config) error { return removeIncident("no-deadline") },
	checks: codeChecks("no-deadline",
		behaviour{"the tool gives up on a validator that never answers, within " + quoteLimit.String(), quoteGivesUp},
		behaviour{"the tool prices an order from a validator that answers in 200 ms", quoteAnswers},
	),
}

// quoteLimit is how long a checkout may wait for a price before it must have failed.
const quoteLimit = 5 * time.Second

// fakeValidator answers ValidateOrder as answer says, and counts the calls.
type fakeValidator struct {
	ordersv1.UnimplementedOrderValidationServer
	calls  *atomic.Int32
	answer func(ctx context.Context, call int32, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error)
}

func newFakeValidator(answer func(ctx context.Context, call int32, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error)) fakeValidator {
	return fakeValidator{calls: &atomic.Int32{}, answer: answer}
}

func (f fakeValidator) ValidateOrder(ctx context.Context, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	return f.answer(ctx, f.calls.Add(1), req)
}

// stuck never answers: the call ends when the caller gives up or the server stops.
func stuck(ctx context.Context, _ int32, _ *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// pricedAfter answers after delay, every product at 1299 cents.
func pricedAfter(delay time.Duration) func(context.Context, int32, *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	return func(ctx context.Context, _ int32, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		res := &ordersv1.ValidateOrderResponse{Currency: "USD"}
		for _, it := range req.GetItems() {
			line := int64(it.GetQuantity()) * 1299
			res.Items = append(res.Items, &ordersv1.PricedItem{Sku: it.GetSku(), Quantity: it.GetQuantity(), UnitPriceCents: 1299, LineTotalCents: line})
			res.TotalCents += line
		}
		return res, nil
	}
}

// withValidator serves f on a loopback port for the duration of op.
func withValidator(ctx context.Context, f fakeValidator, op func(addr string) (string, error)) (string, error) {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := grpc.NewServer()
	ordersv1.RegisterOrderValidationServer(srv, f)
	served := make(chan struct{})
	go func() { // owned here: Stop below ends it
		defer close(served)
		_ = srv.Serve(lis) // returns nil once stopped; the tool's run reports any other failure
	}()
	defer func() {
		srv.Stop() // cancels the calls still blocked in ValidateOrder
		<-served
	}()
	return op(lis.Addr().String())
}

// quoteRun is one run of the tool.
type quoteRun struct {
	out  string // stdout and stderr
	err  error  // how it exited
	hung bool   // still running at the limit, and killed
	took time.Duration
}

// runQuote runs the tool against addr for at most limit.
func runQuote(ctx context.Context, bin, addr string, limit time.Duration, args ...string) quoteRun {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"--addr", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	return quoteRun{out: strings.TrimSpace(buf.String()), err: err, hung: ctx.Err() != nil, took: time.Since(start)}
}

func quoteGivesUp(ctx context.Context, _ config, bin string) (string, error) {
	return withValidator(ctx, newFakeValidator(stuck), func(addr string) (string, error) {
		r := runQuote(ctx, bin, addr, quoteLimit)
		switch {
		case r.hung:
			return "", fmt.Errorf("still waiting for an answer after %s, and a stuck validator never sends one", quoteLimit)
		case r.err == nil:
			return "", fmt.Errorf("exited 0 without an answer: %q", r.out)
		case !strings.Contains(strings.ToLower(r.out), "deadline"):
			return "", fmt.Errorf("failed after %s, but not by its deadline: %q", r.took.Round(time.Millisecond), r.out)
		}
		return fmt.Sprintf("gave up after %s: %s", r.took.Round(10*time.Millisecond), lastLine(r.out)), nil
	})
}

func quoteAnswers(ctx context.Context, _ config, bin string) (string, error) {
	return withValidator(ctx, newFakeValidator(pricedAfter(200*time.Millisecond)), func(addr string) (string, error) {
		r := runQuote(ctx, bin, addr, quoteLimit)
		var exit *exec.ExitError
		switch {
		case r.hung:
			return "", fmt.Errorf("no price after %s from a validator that answers in 200 ms", quoteLimit)
		case errors.As(r.err, &exit):
			return "", fmt.Errorf("failed: %q (a deadline shorter than a normal answer fails every checkout)", r.out)
		case r.err != nil:
			return "", r.err
		case r.out != "priced 2598 USD":
			return "", fmt.Errorf("printed %q, want %q", r.out, "priced 2598 USD")
		}
		return r.out, nil
	})
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

var retryStorm = scenario{
	name:  "retry-storm",
	step:  5,
	needs: "nothing: the check runs validators of its own",
	title: "a wrong SKU multiplies the validator's load",
	symptom: "The validator's request rate jumps whenever customers paste a wrong SKU, and its dashboard shows " +
		"bursts of InvalidArgument, five at a time. The basket checker in labs/_workspace/retry-storm/main.go " +
		"calls it. `make lab ARGS='check retry-storm'` runs it against a validator that rejects an unknown SKU, " +
		"and against one that is unavailable for its first call.",
	hints: []string{
		"Count the calls the checker makes for one invalid basket. Which errors can a retry cure?",
		"gRPC status codes say whether trying again can help: look up InvalidArgument and Unavailable in the codes package.",
		"Retry only what is transient (Unavailable, and DeadlineExceeded for an idempotent call); return anything else at once, with its details: status.Code(err).",
		"In the loop: if status.Code(err) != codes.Unavailable { return fmt.Errorf(\"validate the basket: %w\", err) } before sleeping and trying again.",
	},
	inject:  func(context.Context, config) error { return copyIncident("retry-storm") },
	restore: func(context.Context, config) error { return removeIncident("retry-storm") },
	checks: codeChecks("retry-storm",
		behaviour{"an invalid basket costs the validator one call", invalidCalledOnce},
		behaviour{"a call that finds the validator unavailable is retried", unavailableRetried},
	),
}

// rejectUnknown prices BOOK-001 and rejects any other SKU as the validator does: InvalidArgument
// with a field violation.
func rejectUnknown(ctx context.Context, call int32, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	for i, it := range req.GetItems() {
		if it.GetSku() != knownSKU {
			st, err := status.New(codes.InvalidArgument, "invalid order").WithDetails(&errdetails.BadRequest{
				FieldViolations: []*errdetails.BadRequest_FieldViolation{{
					Field: fmt.Sprintf("items[%d].sku", i), Description: "no product with this sku in the catalog",
				}},
			})
			if err != nil {
				return nil, err
			}
			return nil, st.Err()
		}
	}
	return pricedAfter(0)(ctx, call, req)
}

func invalidCalledOnce(ctx context.Context, _ config, bin string) (string, error) {
	f := newFakeValidator(rejectUnknown)
	return withValidator(ctx, f, func(addr string) (string, error) {
		r := runQuote(ctx, bin, addr, quoteLimit, "--sku", unknownSKU)
		calls := f.calls.Load()
		switch {
		case r.hung:
			return "", fmt.Errorf("no answer after %s", quoteLimit)
		case r.err == nil:
			return "", fmt.Errorf("accepted a basket the validator rejected: %q", r.out)
		case calls > 1:
			return "", fmt.Errorf("one invalid basket cost the validator %d calls: a retry cannot make it valid, "+
				"and at 1,000 checkouts a second the validator would get %d,000", calls, calls)
		case !strings.Contains(r.out, "InvalidArgument"):
			return "", fmt.Errorf("failed without saying why the basket is invalid: %q", r.out)
		}
		return fmt.Sprintf("1 call: %s", lastLine(r.out)), nil
	})
}

func unavailableRetried(ctx context.Context, _ config, bin string) (string, error) {
	f := newFakeValidator(func(ctx context.Context, call int32, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
		if call == 1 {
			return nil, status.Error(codes.Unavailable, "the validator is restarting")
		}
		return pricedAfter(0)(ctx, call, req)
	})
	return withValidator(ctx, f, func(addr string) (string, error) {
		r := runQuote(ctx, bin, addr, quoteLimit, "--sku", knownSKU)
		switch {
		case r.hung:
			return "", fmt.Errorf("no answer after %s", quoteLimit)
		case r.err != nil:
			return "", fmt.Errorf("gave up after %d call(s) on a validator that answers the second: %q", f.calls.Load(), r.out)
		case r.out != "priced 1299 USD":
			return "", fmt.Errorf("printed %q, want %q", r.out, "priced 1299 USD")
		}
		return fmt.Sprintf("%d calls: %s", f.calls.Load(), r.out), nil
	})
}
