package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// Step 5, gRPC: the validator serves orders.v1.OrderValidation (proto/orders/v1) — a unary
// ValidateOrder and a server-streaming ListProducts — and the standard health service.

const (
	knownSKU   = "BOOK-001"
	unknownSKU = "NOPE-404"
)

// grpcRun is what the checks of step 5 share: one client connection, and what they learnt.
type grpcRun struct {
	cfg       config
	conn      *grpc.ClientConn // nil until created
	bookPrice int64            // unit price of knownSKU from the catalog stream; 0 until known
}

func grpcChecks(cfg config) ([]check, func()) {
	g := &grpcRun{cfg: cfg}
	return []check{
		{
			name: "the validator at " + cfg.validator + " reports SERVING on the gRPC health service",
			run:  g.healthServing,
			hint: hintValidator,
		},
		{
			name: "ListProducts streams the catalog, " + knownSKU + " included",
			run:  g.catalogStreams,
			hint: hintValidator,
		},
		{
			name: "ValidateOrder rejects an unknown SKU with InvalidArgument and field violations",
			run:  g.unknownSKURejected,
			hint: hintValidator,
		},
		{
			name: "ValidateOrder prices a valid order in integer cents",
			run:  g.validOrderPriced,
			hint: hintValidator,
		},
	}, g.close
}

// healthServing creates the connection the other checks use — gRPC connects lazily, on the
// first call — and asks the standard health service about the server as a whole.
func (g *grpcRun) healthServing(ctx context.Context) (string, error) {
	conn, err := grpc.NewClient(g.cfg.validator, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("gRPC client for %s: %w", g.cfg.validator, err)
	}
	g.conn = conn

	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return "", fmt.Errorf("grpc.health.v1.Health/Check: %w", err)
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", fmt.Errorf("the server reports %s", res.GetStatus())
	}
	return "", nil
}

// catalogStreams reads the whole ListProducts stream, one product per message.
func (g *grpcRun) catalogStreams(ctx context.Context) (string, error) {
	if g.conn == nil {
		return "", blocked("a gRPC connection")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	stream, err := ordersv1.NewOrderValidationClient(g.conn).ListProducts(ctx, &ordersv1.ListProductsRequest{})
	if err != nil {
		return "", slowValidator(status.Code(err), fmt.Errorf("ListProducts: %w", err))
	}
	count := 0
	var book *ordersv1.Product
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break // the server ended the stream: that was the last product
		}
		if err != nil {
			return "", slowValidator(status.Code(err), fmt.Errorf("ListProducts, after %d products: %w", count, err))
		}
		count++
		if msg.GetProduct().GetSku() == knownSKU {
			book = msg.GetProduct()
		}
	}
	if book == nil {
		return "", withHint(fmt.Errorf("%d products, none is %s", count, knownSKU),
			"the default catalog has it: is CATALOG_PATH set to a catalog of your own?")
	}
	g.bookPrice = book.GetUnitPriceCents()
	return fmt.Sprintf("%d products, %s at %d %s cents", count, knownSKU, book.GetUnitPriceCents(), book.GetCurrency()), nil
}

// unknownSKURejected expects the gRPC rich error model: status INVALID_ARGUMENT with a
// google.rpc.BadRequest detail naming the offending field.
func (g *grpcRun) unknownSKURejected(ctx context.Context) (string, error) {
	if g.conn == nil {
		return "", blocked("a gRPC connection")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := ordersv1.NewOrderValidationClient(g.conn).ValidateOrder(ctx, &ordersv1.ValidateOrderRequest{
		CustomerId: "selfcheck",
		Items:      []*ordersv1.OrderItem{{Sku: unknownSKU, Quantity: 1}},
	})
	if err == nil {
		return "", fmt.Errorf("an order of %s was accepted", unknownSKU)
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return "", slowValidator(st.Code(), fmt.Errorf("got %s (%s), want InvalidArgument", st.Code(), st.Message()))
	}
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			if v.GetField() == "items[0].sku" {
				return fmt.Sprintf("%s: %s", v.GetField(), v.GetDescription()), nil
			}
		}
		return "", fmt.Errorf("InvalidArgument, but no violation names items[0].sku: %v", br.GetFieldViolations())
	}
	return "", fmt.Errorf("InvalidArgument (%s) without a google.rpc.BadRequest detail", st.Message())
}

// validOrderPriced checks the arithmetic of a priced order: every amount in integer cents.
func (g *grpcRun) validOrderPriced(ctx context.Context) (string, error) {
	if g.conn == nil {
		return "", blocked("a gRPC connection")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	const quantity = 2
	res, err := ordersv1.NewOrderValidationClient(g.conn).ValidateOrder(ctx, &ordersv1.ValidateOrderRequest{
		CustomerId: "selfcheck",
		Items:      []*ordersv1.OrderItem{{Sku: knownSKU, Quantity: quantity}},
	})
	if err != nil {
		return "", slowValidator(status.Code(err), fmt.Errorf("ValidateOrder: %w", err))
	}
	if len(res.GetItems()) != 1 {
		return "", fmt.Errorf("got %d priced lines for 1 ordered", len(res.GetItems()))
	}
	line := res.GetItems()[0]
	unit := line.GetUnitPriceCents()
	switch {
	case unit <= 0:
		return "", fmt.Errorf("unit price %d cents", unit)
	case g.bookPrice != 0 && unit != g.bookPrice:
		return "", fmt.Errorf("priced at %d cents, the catalog says %d", unit, g.bookPrice)
	case line.GetLineTotalCents() != unit*quantity:
		return "", fmt.Errorf("line total %d cents, want %d x %d = %d", line.GetLineTotalCents(), quantity, unit, unit*quantity)
	case res.GetTotalCents() != line.GetLineTotalCents():
		return "", fmt.Errorf("total %d cents, want the line total %d", res.GetTotalCents(), line.GetLineTotalCents())
	case res.GetCurrency() == "":
		return "", errors.New("no currency")
	}
	return fmt.Sprintf("%d x %s at %d = %d %s cents", quantity, knownSKU, unit, res.GetTotalCents(), res.GetCurrency()), nil
}

func (g *grpcRun) close() {
	if g.conn != nil {
		_ = g.conn.Close()
	}
}

// slowValidator gives a deadline exceeded its own hint: the validator is up but slower than the
// check's deadline — typically still running with VALIDATOR_DELAY from step 5's exercise — and
// "is the validator running?" would send the learner the wrong way.
func slowValidator(code codes.Code, err error) error {
	if code != codes.DeadlineExceeded {
		return err
	}
	return withHint(err, fmt.Sprintf("the validator answers, but not within %s: is it still running with "+
		"VALIDATOR_DELAY (step 5, exercise 2)? Restart it without", callTimeout))
}
