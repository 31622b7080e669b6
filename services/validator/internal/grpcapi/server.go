// Package grpcapi is the validator's gRPC transport: it implements orders.v1.OrderValidation on
// top of the catalog and the validation rules, and translates between protobuf messages and the
// domain types. Broken rules become INVALID_ARGUMENT with a google.rpc.BadRequest detail, one
// field violation per rule, which is what lets order-api answer 422 field by field.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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

// PriceOrder reads an order streamed line by line and answers once, as ValidateOrder would answer
// the same order. It reads at most validation.MaxItems lines: the next one fails the call at
// once, so a client cannot make it hold an order of any size.
func (s *Server) PriceOrder(stream grpc.ClientStreamingServer[ordersv1.PriceOrderRequest, ordersv1.PriceOrderResponse]) error {
	var order validation.Order
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) { // the client closed its side: the order is complete
			break
		}
		if err != nil {
			return err // already a status: the call is over
		}
		if id := req.GetCustomerId(); id != "" {
			if order.CustomerID != "" && id != order.CustomerID {
				return invalidArgument([]validation.Violation{{Field: "customer_id", Reason: fmt.Sprintf(
					"customer_id changed from %q to %q on line %d: set it on the first message only", order.CustomerID, id, len(order.Items))}})
			}
			order.CustomerID = id
		}
		if len(order.Items) == validation.MaxItems {
			return invalidArgument([]validation.Violation{{Field: "items", Reason: fmt.Sprintf(
				"an order has at most %d items, this stream sent more", validation.MaxItems)}})
		}
		item := req.GetItem()
		order.Items = append(order.Items, validation.Item{SKU: item.GetSku(), Quantity: int(item.GetQuantity())})
	}
	if err := s.pause(stream.Context()); err != nil {
		return err
	}
	priced, violations := s.validator.Validate(order)
	if len(violations) > 0 {
		return invalidArgument(violations)
	}
	r := responseToProto(priced)
	return stream.SendAndClose(&ordersv1.PriceOrderResponse{Items: r.GetItems(), TotalCents: r.GetTotalCents(), Currency: r.GetCurrency()})
}

// QuoteOrder keeps one basket for the life of the stream: each request changes a line, and each is
// answered with the basket as it then stands. A change that breaks a rule is answered with the
// basket unchanged and the rules it broke; it does not end the stream.
func (s *Server) QuoteOrder(stream grpc.BidiStreamingServer[ordersv1.QuoteOrderRequest, ordersv1.QuoteOrderResponse]) error {
	ctx := stream.Context()
	var basket []validation.Item // by SKU
	quote := validation.PricedOrder{Currency: s.catalog.Currency()}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // the client is done: ending the handler ends the stream with OK
		}
		if err != nil {
			return err
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
		candidate := withQuantity(basket, req.GetSku(), int(req.GetQuantity()))
		resp := &ordersv1.QuoteOrderResponse{}
		switch priced, violations := s.price(candidate); {
		case len(violations) > 0:
			resp.Violations = quoteViolations(violations)
		default:
			basket, quote = candidate, priced
		}
		r := responseToProto(quote)
		resp.Items, resp.TotalCents, resp.Currency = r.GetItems(), r.GetTotalCents(), r.GetCurrency()
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// price prices a basket; an empty one costs nothing.
func (s *Server) price(basket []validation.Item) (validation.PricedOrder, []validation.Violation) {
	if len(basket) == 0 {
		return validation.PricedOrder{Currency: s.catalog.Currency()}, nil
	}
	return s.validator.ValidateItems(basket)
}

// withQuantity returns a copy of basket, kept by SKU, with sku's line set to quantity, or
// removed when quantity is 0.
func withQuantity(basket []validation.Item, sku string, quantity int) []validation.Item {
	out := make([]validation.Item, 0, len(basket)+1)
	for _, item := range basket {
		if item.SKU != sku {
			out = append(out, item)
		}
	}
	if quantity != 0 {
		out = append(out, validation.Item{SKU: sku, Quantity: quantity})
		slices.SortFunc(out, func(a, b validation.Item) int { return strings.Compare(a.SKU, b.SKU) })
	}
	return out
}

// quoteViolations names the request's own fields: the basket before the change was valid, so a
// rule broken by an items[i] line was broken by the change.
func quoteViolations(violations []validation.Violation) []*ordersv1.QuoteViolation {
	out := make([]*ordersv1.QuoteViolation, len(violations))
	for i, v := range violations {
		field := v.Field
		if _, rest, ok := strings.Cut(field, "]."); ok {
			field = rest
		}
		out[i] = &ordersv1.QuoteViolation{Field: field, Description: v.Reason}
	}
	return out
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
