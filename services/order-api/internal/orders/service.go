package orders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// Validator judges and prices an order. It returns a *RejectedError when the order breaks
// rules, and an error wrapping ErrValidatorUnavailable when it could not judge the order.
type Validator interface {
	Validate(ctx context.Context, o Order) (PricedOrder, error)
}

// Publisher publishes an event to one broker and returns once that broker confirmed it, or
// ctx's deadline passed.
type Publisher interface {
	// Name names the broker in errors, logs and metrics, e.g. "kafka".
	Name() string
	Publish(ctx context.Context, e Event) error
}

// Event is one publication of an OrderPlaced event: the same ID and headers go to every broker.
type Event struct {
	// ID identifies this publication (the event-id header). A retried order gets a new ID but
	// keeps its order_id, which is what consumers deduplicate by.
	ID string
	// OrderPlaced is the event itself.
	OrderPlaced *ordersv1.OrderPlaced
	// Body is OrderPlaced encoded for the brokers (ordersv1.MarshalOrderPlaced), once for all of
	// them; a publisher encodes OrderPlaced itself when Body is nil.
	Body []byte
}

// Request asks to place an order.
type Request struct {
	Order Order
	// IdempotencyKey is the client's Idempotency-Key header, empty when it sent none.
	IdempotencyKey string
}

// Options tunes a Service.
type Options struct {
	// PublishTimeout bounds publishing to all brokers together.
	PublishTimeout time.Duration
	// Now returns the current time; nil means time.Now. Tests fix it.
	Now func() time.Time
}

// Service places orders. It is safe for concurrent use.
type Service struct {
	validator      Validator
	publishers     []Publisher
	deps           []dependency // those of validator and publishers that implement Health
	publishTimeout time.Duration
	now            func() time.Time
}

// NewService returns a Service that asks v and publishes to every one of publishers.
func NewService(v Validator, publishers []Publisher, opts Options) (*Service, error) {
	if v == nil {
		return nil, errors.New("orders: no validator")
	}
	// Without a publisher every order would be "placed" without reaching anyone.
	if len(publishers) == 0 {
		return nil, errors.New("orders: no publishers")
	}
	if opts.PublishTimeout <= 0 {
		return nil, fmt.Errorf("orders: publish timeout must be positive, got %s", opts.PublishTimeout)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		validator:      v,
		publishers:     publishers,
		deps:           dependenciesOf(v, publishers),
		publishTimeout: opts.PublishTimeout,
		now:            now,
	}, nil
}

// Place checks, prices and publishes the order, and returns the event every broker confirmed.
// Errors: *RejectedError (the order breaks rules), ErrValidatorUnavailable, ErrNotPublished.
//
// While a dependency is known to be down (see Health) Place fails at once, with
// ErrDependencyDown wrapped in ErrValidatorUnavailable or ErrNotPublished, before asking the
// validator or sending to any broker: waiting for the deadline would only tie up the caller,
// and publishing to the brokers that are up would leave the event on some brokers only.
func (s *Service) Place(ctx context.Context, req Request) (*ordersv1.OrderPlaced, error) {
	if vs := req.Order.Check(); len(vs) > 0 {
		return nil, &RejectedError{Violations: vs}
	}
	if err := s.down(); err != nil {
		return nil, err
	}
	priced, err := s.validator.Validate(ctx, req.Order)
	if err != nil {
		return nil, err
	}
	orderID, err := OrderID(req.Order.CustomerID, req.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	eventID, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("orders: event id: %w", err)
	}
	event := Event{
		ID: eventID.String(),
		OrderPlaced: &ordersv1.OrderPlaced{
			OrderId:        orderID,
			CustomerId:     req.Order.CustomerID,
			Items:          pricedItemsToProto(priced.Items),
			TotalCents:     priced.TotalCents,
			Currency:       priced.Currency,
			PlacedAt:       timestamppb.New(s.now().UTC()),
			IdempotencyKey: req.IdempotencyKey,
		},
	}
	// Encoded here, once: every broker gets the same bytes, and protojson is the dearest step
	// of a publish (a CPU profile under load showed it at a tenth of order-api's time when each
	// publisher encoded the event for itself).
	if event.Body, err = ordersv1.MarshalOrderPlaced(event.OrderPlaced); err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	if err := s.publish(ctx, event); err != nil {
		return nil, err
	}
	return event.OrderPlaced, nil
}

// publish hands the event to every broker at once and waits for all of them.
//
// The brokers get the whole deadline even when the client goes away or another broker already
// failed: a publish cut short leaves the event on one broker but not the other, and a RabbitMQ
// publish abandoned before its confirm costs a channel. Either way the client learns only "not
// placed, retry", so finishing what was started is the cheaper failure.
func (s *Service) publish(ctx context.Context, e Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.publishTimeout)
	defer cancel()

	errs := make([]error, len(s.publishers))
	var wg sync.WaitGroup
	for i, p := range s.publishers {
		wg.Go(func() {
			if err := p.Publish(ctx, e); err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.Name(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotPublished, err)
	}
	return nil
}

func pricedItemsToProto(items []PricedItem) []*ordersv1.PricedItem {
	out := make([]*ordersv1.PricedItem, len(items))
	for i, item := range items {
		out[i] = &ordersv1.PricedItem{
			Sku:            item.SKU,
			Quantity:       item.Quantity,
			UnitPriceCents: item.UnitPriceCents,
			LineTotalCents: item.LineTotalCents,
		}
	}
	return out
}

// orderIDNamespace is the UUID namespace of order_ids derived from an Idempotency-Key. It is
// part of the contract: changing it changes the order_id of every replayed request.
var orderIDNamespace = uuid.MustParse("cd845706-4f53-4fd3-b118-1c445cb23259")

// OrderID returns the order_id of an order. With an idempotency key it is the name-based UUID
// (version 5) of "<customerID>:<key>" in orderIDNamespace, so the same key from the same
// customer yields the same order_id on any replica, and the same key from another customer
// does not. customer_id cannot contain ':', so no two pairs share a name. Without a key it is a
// new time-ordered UUID (version 7).
func OrderID(customerID, idempotencyKey string) (string, error) {
	if idempotencyKey != "" {
		return uuid.NewSHA1(orderIDNamespace, []byte(customerID+":"+idempotencyKey)).String(), nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("orders: order id: %w", err)
	}
	return id.String(), nil
}
