package orders_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// validatorFunc adapts a function to orders.Validator.
type validatorFunc func(ctx context.Context, o orders.Order) (orders.PricedOrder, error)

func (f validatorFunc) Validate(ctx context.Context, o orders.Order) (orders.PricedOrder, error) {
	return f(ctx, o)
}

// pricing prices BOOK-001 at 12.99 and fails the test for anything else.
func pricing(t *testing.T) orders.Validator {
	return validatorFunc(func(_ context.Context, o orders.Order) (orders.PricedOrder, error) {
		p := orders.PricedOrder{Currency: "EUR"}
		for _, item := range o.Items {
			require.Equal(t, "BOOK-001", item.SKU)
			line := 1299 * item.Quantity
			p.Items = append(p.Items, orders.PricedItem{SKU: item.SKU, Quantity: int32(item.Quantity), UnitPriceCents: 1299, LineTotalCents: line})
			p.TotalCents += line
		}
		return p, nil
	})
}

// publisher records what it was given and answers with publish.
type publisher struct {
	name    string
	publish func(ctx context.Context) error

	mu     sync.Mutex
	events []orders.Event
}

func (p *publisher) Name() string { return p.name }

func (p *publisher) Publish(ctx context.Context, e orders.Event) error {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
	if p.publish == nil {
		return nil
	}
	return p.publish(ctx)
}

func (p *publisher) published() []orders.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]orders.Event(nil), p.events...)
}

var fixedNow = time.Date(2025, 1, 31, 13, 0, 0, 0, time.FixedZone("CET", 3600))

func newService(t *testing.T, v orders.Validator, timeout time.Duration, pubs ...orders.Publisher) *orders.Service {
	t.Helper()
	s, err := orders.NewService(v, pubs, orders.Options{PublishTimeout: timeout, Now: func() time.Time { return fixedNow }})
	require.NoError(t, err)
	return s
}

func TestPlacePublishesOneEventToEveryBroker(t *testing.T) {
	kafka, rabbit := &publisher{name: "kafka"}, &publisher{name: "rabbitmq"}
	s := newService(t, pricing(t), time.Minute, kafka, rabbit)
	order := orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 2}, {SKU: "BOOK-001", Quantity: 1}}}

	placed, err := s.Place(context.Background(), orders.Request{Order: order, IdempotencyKey: "k-1"})
	require.NoError(t, err)

	wantID, err := orders.OrderID("c-42", "k-1")
	require.NoError(t, err)
	assert.Equal(t, wantID, placed.GetOrderId())
	assert.Equal(t, "c-42", placed.GetCustomerId())
	assert.Equal(t, int64(3*1299), placed.GetTotalCents())
	assert.Equal(t, "EUR", placed.GetCurrency())
	assert.Equal(t, "k-1", placed.GetIdempotencyKey())
	assert.Equal(t, fixedNow.UTC(), placed.GetPlacedAt().AsTime())
	require.Len(t, placed.GetItems(), 2)
	assert.Equal(t, int64(2*1299), placed.GetItems()[0].GetLineTotalCents())

	require.Len(t, kafka.published(), 1)
	require.Len(t, rabbit.published(), 1)
	event := kafka.published()[0]
	assert.Equal(t, event, rabbit.published()[0], "both brokers get the same publication")
	assert.Same(t, placed, event.OrderPlaced)
	assert.Len(t, event.ID, 36, "the event-id is a UUID")
	assert.NotEqual(t, placed.GetOrderId(), event.ID)
	// Encoded once, for every broker: the bytes are the event's wire encoding.
	decoded, err := ordersv1.UnmarshalOrderPlaced(event.Body)
	require.NoError(t, err)
	assert.True(t, proto.Equal(placed, decoded), "Body encodes OrderPlaced")
}

func TestPlaceRejectsBrokenRulesWithoutAskingTheValidator(t *testing.T) {
	asked := false
	v := validatorFunc(func(context.Context, orders.Order) (orders.PricedOrder, error) {
		asked = true
		return orders.PricedOrder{}, nil
	})
	p := &publisher{name: "kafka"}
	s := newService(t, v, time.Minute, p)

	_, err := s.Place(context.Background(), orders.Request{Order: orders.Order{CustomerID: "c-42"}})

	var rejected *orders.RejectedError
	require.ErrorAs(t, err, &rejected)
	assert.Equal(t, []orders.Violation{{Field: "items", Reason: "must hold 1 to 50 items"}}, rejected.Violations)
	assert.False(t, asked)
	assert.Empty(t, p.published())
}

func TestPlacePassesTheValidatorsVerdictOn(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"rejected", &orders.RejectedError{Violations: []orders.Violation{{Field: "items[0].sku", Reason: "unknown SKU"}}}},
		{"unavailable", errors.Join(orders.ErrValidatorUnavailable, context.DeadlineExceeded)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validatorFunc(func(context.Context, orders.Order) (orders.PricedOrder, error) {
				return orders.PricedOrder{}, tt.err
			})
			p := &publisher{name: "kafka"}
			s := newService(t, v, time.Minute, p)

			_, err := s.Place(context.Background(), orders.Request{Order: validOrder()})

			assert.ErrorIs(t, err, tt.err)
			assert.Empty(t, p.published(), "nothing is published for an order the validator did not accept")
		})
	}
}

func TestPlacePublishesToTheBrokersConcurrently(t *testing.T) {
	// Each publisher waits until the other one has started: published one after the other, they
	// would wait for each other until the deadline.
	kafkaStarted, rabbitStarted := make(chan struct{}), make(chan struct{})
	waitFor := func(mine, other chan struct{}) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			close(mine)
			select {
			case <-other:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	kafka := &publisher{name: "kafka", publish: waitFor(kafkaStarted, rabbitStarted)}
	rabbit := &publisher{name: "rabbitmq", publish: waitFor(rabbitStarted, kafkaStarted)}
	s := newService(t, pricing(t), 10*time.Second, kafka, rabbit)

	_, err := s.Place(context.Background(), orders.Request{Order: validOrder()})
	require.NoError(t, err)
}

func TestPlaceFailsUnlessEveryBrokerConfirmed(t *testing.T) {
	brokerDown := errors.New("broker down")
	tests := []struct {
		name           string
		kafka, rabbit  func(ctx context.Context) error
		wantInError    []string
		wantDeadlineEx bool
	}{
		{
			name:        "Kafka fails",
			kafka:       func(context.Context) error { return brokerDown },
			wantInError: []string{"kafka: broker down"},
		},
		{
			name:        "RabbitMQ fails",
			rabbit:      func(context.Context) error { return brokerDown },
			wantInError: []string{"rabbitmq: broker down"},
		},
		{
			name:        "both fail",
			kafka:       func(context.Context) error { return brokerDown },
			rabbit:      func(context.Context) error { return brokerDown },
			wantInError: []string{"kafka: broker down", "rabbitmq: broker down"},
		},
		{
			name:           "RabbitMQ does not confirm before the deadline",
			rabbit:         func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantInError:    []string{"rabbitmq: context deadline exceeded"},
			wantDeadlineEx: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kafka := &publisher{name: "kafka", publish: tt.kafka}
			rabbit := &publisher{name: "rabbitmq", publish: tt.rabbit}
			s := newService(t, pricing(t), 50*time.Millisecond, kafka, rabbit)

			_, err := s.Place(context.Background(), orders.Request{Order: validOrder()})

			require.ErrorIs(t, err, orders.ErrNotPublished)
			for _, want := range tt.wantInError {
				assert.ErrorContains(t, err, want)
			}
			assert.Equal(t, tt.wantDeadlineEx, errors.Is(err, context.DeadlineExceeded))
			assert.Len(t, kafka.published(), 1, "a failing broker does not stop the other one")
			assert.Len(t, rabbit.published(), 1)
		})
	}
}

func TestPlaceFinishesPublishingWhenTheClientGoesAway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := validatorFunc(func(ctx context.Context, o orders.Order) (orders.PricedOrder, error) {
		priced, err := pricing(t).Validate(ctx, o)
		cancel() // the client disconnects once the order is priced
		return priced, err
	})
	var deadline time.Time
	p := &publisher{name: "kafka", publish: func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		return ctx.Err()
	}}
	s := newService(t, v, time.Minute, p)

	_, err := s.Place(ctx, orders.Request{Order: validOrder()})

	require.NoError(t, err, "the publish context survives the client's cancellation")
	assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 10*time.Second, "but keeps the publish deadline")
}

func TestNewServiceRefusesAnIncompleteSetUp(t *testing.T) {
	p := &publisher{name: "kafka"}
	_, err := orders.NewService(pricing(t), nil, orders.Options{PublishTimeout: time.Second})
	assert.ErrorContains(t, err, "no publishers")
	_, err = orders.NewService(nil, []orders.Publisher{p}, orders.Options{PublishTimeout: time.Second})
	assert.ErrorContains(t, err, "no validator")
	_, err = orders.NewService(pricing(t), []orders.Publisher{p}, orders.Options{})
	assert.ErrorContains(t, err, "publish timeout")
}
