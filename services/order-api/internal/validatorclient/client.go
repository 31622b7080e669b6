// Package validatorclient is order-api's client of the validator service (orders.v1 gRPC): it
// gives every call a deadline, carries the request ID to the validator's logs, and maps the
// answer onto package orders — INVALID_ARGUMENT with its field violations becomes
// *orders.RejectedError, every other failure orders.ErrValidatorUnavailable.
package validatorclient

import (
	"context"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// requestIDKey is the gRPC metadata key under which the platform's gRPC server looks for the
// caller's request ID.
const requestIDKey = "x-request-id"

// reconnect bounds how long the client waits between attempts to reach a validator that went
// away. gRPC's default grows to two minutes; a validator restart should be noticed in about a
// second, and one small connection attempt per second costs nothing.
var reconnect = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   time.Second,
	},
	MinConnectTimeout: 5 * time.Second,
}

// Client calls the validator over one long-lived gRPC channel. It is safe for concurrent use.
type Client struct {
	addr    string
	conn    *grpc.ClientConn
	rpc     ordersv1.OrderValidationClient
	health  healthpb.HealthClient
	timeout time.Duration
}

var (
	_ orders.Validator = (*Client)(nil)
	_ orders.Health    = (*Client)(nil)
)

// New returns a client of the validator at addr (host:port) whose calls time out after timeout.
// It does not connect yet: the channel connects on first use and reconnects on its own, so
// order-api starts, and stays up, while the validator is away. Close it when done.
func New(addr string, timeout time.Duration, opts ...grpc.DialOption) (*Client, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("validatorclient: timeout must be positive, got %s", timeout)
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(reconnect),
		grpc.WithUnaryInterceptor(propagateRequestID),
		// A client span per call (not per readiness probe); its context travels in the metadata.
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
	}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("validatorclient: %s: %w", addr, err)
	}
	return &Client{
		addr:    addr,
		conn:    conn,
		rpc:     ordersv1.NewOrderValidationClient(conn),
		health:  healthpb.NewHealthClient(conn),
		timeout: timeout,
	}, nil
}

// Validate asks the validator to judge and price o, within the client's timeout.
func (c *Client) Validate(ctx context.Context, o orders.Order) (orders.PricedOrder, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.rpc.ValidateOrder(ctx, orderToProto(o))
	if err != nil {
		return orders.PricedOrder{}, mapError(err)
	}
	return pricedFromProto(resp), nil
}

// Ready reports whether the validator answers its health check as SERVING by ctx's deadline
// (and at most the client's timeout).
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: ordersv1.OrderValidation_ServiceDesc.ServiceName})
	if err != nil {
		return fmt.Errorf("validator health check: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("validator health check: %s", s)
	}
	return nil
}

// Down returns an error while the gRPC channel is in
// TRANSIENT_FAILURE — its last attempt to connect failed, so calls fail at once with
// UNAVAILABLE anyway — and nil in every other state: READY, CONNECTING, or IDLE (not connected
// because not used lately, or after the validator closed the connection; the next call
// connects). In TRANSIENT_FAILURE the channel keeps reconnecting by itself, at most a second
// apart (reconnect), and leaves the state once the validator answers. Down never blocks.
func (c *Client) Down() error {
	if s := c.conn.GetState(); s == connectivity.TransientFailure {
		return fmt.Errorf("validatorclient: %s unreachable (gRPC channel in %s)", c.addr, s)
	}
	return nil
}

// Close closes the channel; calls in flight fail.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("validatorclient: close: %w", err)
	}
	return nil
}

// mapError turns a failed ValidateOrder call into the error package orders expects.
func mapError(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return fmt.Errorf("%w: %w", orders.ErrValidatorUnavailable, err)
	}
	rejected := &orders.RejectedError{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				rejected.Violations = append(rejected.Violations, orders.Violation{Field: fv.GetField(), Reason: fv.GetDescription()})
			}
		}
	}
	if len(rejected.Violations) == 0 {
		// The contract promises field violations; without them the status message is all the
		// customer can be told, as a violation of the order as a whole (an empty field).
		rejected.Violations = []orders.Violation{{Field: "", Reason: st.Message()}}
	}
	return rejected
}

func propagateRequestID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := logging.RequestID(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, requestIDKey, id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func orderToProto(o orders.Order) *ordersv1.ValidateOrderRequest {
	req := &ordersv1.ValidateOrderRequest{CustomerId: o.CustomerID, Items: make([]*ordersv1.OrderItem, len(o.Items))}
	for i, item := range o.Items {
		req.Items[i] = &ordersv1.OrderItem{Sku: item.SKU, Quantity: saturateInt32(item.Quantity)}
	}
	return req
}

// saturateInt32 narrows a quantity without wrapping around, so an out-of-range quantity stays
// out of range and the validator rejects it.
func saturateInt32(n int64) int32 {
	return int32(min(max(n, math.MinInt32), math.MaxInt32))
}

func pricedFromProto(resp *ordersv1.ValidateOrderResponse) orders.PricedOrder {
	p := orders.PricedOrder{
		Items:      make([]orders.PricedItem, len(resp.GetItems())),
		TotalCents: resp.GetTotalCents(),
		Currency:   resp.GetCurrency(),
	}
	for i, item := range resp.GetItems() {
		p.Items[i] = orders.PricedItem{
			SKU:            item.GetSku(),
			Quantity:       item.GetQuantity(),
			UnitPriceCents: item.GetUnitPriceCents(),
			LineTotalCents: item.GetLineTotalCents(),
		}
	}
	return p
}
