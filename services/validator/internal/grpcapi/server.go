// Package grpcapi is the validator's gRPC transport: it implements orders.v1.OrderValidation on
// top of the catalog and the validation rules, and translates between protobuf messages and the
// domain types. Broken rules become INVALID_ARGUMENT with a google.rpc.BadRequest detail, one
// field violation per rule, which is what lets order-api answer 422 field by field.
package grpcapi

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
	"github.com/backend-prep/backend-prep/services/validator/internal/validation"
)

// Server implements ordersv1.OrderValidationServer.
type Server struct {
	ordersv1.UnimplementedOrderValidationServer

	catalog   *catalog.Catalog
	validator *validation.Validator
	delay     time.Duration
}

var _ ordersv1.OrderValidationServer = (*Server)(nil)

// NewServer returns a server answering from c with the rules of v. It waits delay before every
// answer (see VALIDATOR_DELAY); a client whose deadline is shorter gets DEADLINE_EXCEEDED.
func NewServer(c *catalog.Catalog, v *validation.Validator, delay time.Duration) *Server {
	return &Server{catalog: c, validator: v, delay: delay}
}

// Register adds the OrderValidation service to r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	ordersv1.RegisterOrderValidationServer(r, s)
}

// ValidateOrder prices a valid order, or fails with INVALID_ARGUMENT listing every broken rule.
func (s *Server) ValidateOrder(ctx context.Context, req *ordersv1.ValidateOrderRequest) (*ordersv1.ValidateOrderResponse, error) {
	if err := s.pause(ctx); err != nil {
		return nil, err
	}
	priced, violations := s.validator.Validate(orderFromProto(req))
	if len(violations) > 0 {
		return nil, invalidArgument(violations)
	}
	return responseToProto(priced), nil
}

// ListProducts streams the catalog by SKU, one product per message, optionally one category only.
// It stops as soon as the client cancels or its deadline passes.
func (s *Server) ListProducts(req *ordersv1.ListProductsRequest, stream grpc.ServerStreamingServer[ordersv1.ListProductsResponse]) error {
	ctx := stream.Context()
	for _, p := range s.catalog.Products(req.GetCategory()) {
		if err := s.pause(ctx); err != nil {
			return err
		}
		if err := stream.Send(&ordersv1.ListProductsResponse{Product: productToProto(p, s.catalog.Currency())}); err != nil {
			return err // already a status: the stream is gone
		}
	}
	return nil
}

// pause waits the configured delay unless ctx ends first, and returns ctx's end as a gRPC status
// (DEADLINE_EXCEEDED or CANCELED) so no work is done for a caller that has gone.
func (s *Server) pause(ctx context.Context) error {
	if s.delay > 0 {
		timer := time.NewTimer(s.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return nil
}

// invalidArgument carries the violations in the gRPC rich error model: clients read the
// BadRequest detail; the message is for people reading logs or grpcurl output.
func invalidArgument(violations []validation.Violation) error {
	detail := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(violations))}
	for i, v := range violations {
		detail.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Reason}
	}
	msg := fmt.Sprintf("invalid order: %s: %s", violations[0].Field, violations[0].Reason)
	if more := len(violations) - 1; more > 0 {
		msg += fmt.Sprintf(" (and %d more)", more)
	}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(detail)
	if err != nil {
		return status.Errorf(codes.Internal, "attach violations to status: %v", err)
	}
	return st.Err()
}

func orderFromProto(req *ordersv1.ValidateOrderRequest) validation.Order {
	order := validation.Order{CustomerID: req.GetCustomerId()}
	if items := req.GetItems(); len(items) > 0 {
		order.Items = make([]validation.Item, len(items))
		for i, item := range items {
			order.Items[i] = validation.Item{SKU: item.GetSku(), Quantity: int(item.GetQuantity())}
		}
	}
	return order
}

// responseToProto narrows quantities back to int32, which cannot overflow: a priced order's
// quantities are at most validation.MaxQuantity.
func responseToProto(o validation.PricedOrder) *ordersv1.ValidateOrderResponse {
	resp := &ordersv1.ValidateOrderResponse{
		Items:      make([]*ordersv1.PricedItem, len(o.Items)),
		TotalCents: o.TotalCents,
		Currency:   o.Currency,
	}
	for i, item := range o.Items {
		resp.Items[i] = &ordersv1.PricedItem{
			Sku:            item.SKU,
			Quantity:       int32(item.Quantity),
			UnitPriceCents: item.UnitPriceCents,
			LineTotalCents: item.LineTotalCents,
		}
	}
	return resp
}

// productToProto narrows max_quantity to int32, which the catalog bounds by catalog.MaxQuantity.
func productToProto(p catalog.Product, currency string) *ordersv1.Product {
	return &ordersv1.Product{
		Sku:            p.SKU,
		Name:           p.Name,
		Category:       p.Category,
		UnitPriceCents: p.UnitPriceCents,
		Currency:       currency,
		MaxQuantity:    int32(p.MaxQuantity),
	}
}
