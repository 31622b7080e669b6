// Package validatortest runs an in-process stand-in for the validator service, for order-api's
// tests: a real gRPC server on a loopback port with the orders.v1.OrderValidation API and the
// standard health service, a small fixed catalog, and switches that make it slow or failing.
//
// It answers the way the validator's contract says: an order naming an unknown SKU fails with
// INVALID_ARGUMENT carrying a google.rpc.BadRequest with one field violation per unknown SKU;
// a known order is priced line by line in integer cents.
package validatortest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// Currency is the currency of the Catalog.
const Currency = "EUR"

// Catalog is the stand-in's catalog: unit prices in cents by SKU.
var Catalog = map[string]int64{
	"BOOK-001": 1299,
	"BOOK-002": 2450,
	"MUG-001":  899,
	"TEE-001":  1999,
}

// Validator implements ordersv1.OrderValidationServer on Catalog. Its zero value answers
// normally; set the fields before serving to change that.
type Validator struct {
	ordersv1.UnimplementedOrderValidationServer

	// Fail, when not codes.OK, is returned as the status of every ValidateOrder call.
	Fail codes.Code
	// Block makes every ValidateOrder call wait until the caller gives up (its deadline or
	// cancellation), like a validator that hangs.
	Block bool

	calls         atomic.Int64
	lastRequestID atomic.Value // string
}

var _ ordersv1.OrderValidationServer = (*Validator)(nil)

// Calls returns how many ValidateOrder calls the validator received.
func (v *Validator) Calls() int64 { return v.calls.Load() }

// LastRequestID returns the x-request-id metadata of the latest ValidateOrder call.
func (v *Validator) LastRequestID() string {
	id, _ := v.lastRequestID.Load().(string)
	return id
}

// ValidateOrder prices the order or rejects its unknown SKUs.
func (v *Validator) ValidateOrder(ctx context.Context, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	v.calls.Add(1)
	if ids := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(ids) > 0 {
		v.lastRequestID.Store(ids[0])
	}
	if v.Block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if v.Fail != codes.OK {
		return nil, status.Error(v.Fail, "validator stand-in told to fail")
	}
	resp := &ordersv1.ValidateOrderResponse{Currency: Currency}
	var violations []*errdetails.BadRequest_FieldViolation
	for i, item := range req.GetItems() {
		price, ok := Catalog[item.GetSku()]
		if !ok {
			violations = append(violations, &errdetails.BadRequest_FieldViolation{
				Field:       fmt.Sprintf("items[%d].sku", i),
				Description: fmt.Sprintf("unknown SKU %q", item.GetSku()),
			})
			continue
		}
		line := price * int64(item.GetQuantity())
		resp.Items = append(resp.Items, &ordersv1.PricedItem{
			Sku: item.GetSku(), Quantity: item.GetQuantity(), UnitPriceCents: price, LineTotalCents: line,
		})
		resp.TotalCents += line
	}
	if len(violations) > 0 {
		st, err := status.New(codes.InvalidArgument, "invalid order").
			WithDetails(&errdetails.BadRequest{FieldViolations: violations})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "attach details: %v", err)
		}
		return nil, st.Err()
	}
	return resp, nil
}

// Server is a running stand-in.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string

	grpc     *grpc.Server
	served   chan struct{}
	stopOnce sync.Once
}

// Start serves v on a free loopback port until the test ends.
func Start(t testing.TB, v *Validator) *Server {
	t.Helper()
	return StartAt(t, v, "127.0.0.1:0")
}

// StartAt serves v on addr until the test ends (or Stop). Restarting a stopped validator on the
// address it had shows how clients recover.
func StartAt(t testing.TB, v *Validator, addr string) *Server {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("validatortest: listen on %s: %v", addr, err)
	}
	gs := grpc.NewServer()
	ordersv1.RegisterOrderValidationServer(gs, v)
	hs := health.NewServer()
	hs.SetServingStatus(ordersv1.OrderValidation_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)

	s := &Server{Addr: lis.Addr().String(), grpc: gs, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops serving at once, failing calls in flight, as a killed validator would. It is
// idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.grpc.Stop()
		select {
		case <-s.served:
		case <-time.After(5 * time.Second):
		}
	})
}
