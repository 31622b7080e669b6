package consume

import (
	"context"
	"errors"
	"fmt"
	"mime"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// SpanAttributeAttempt is the span attribute that says which attempt at a notification a
// delivery is: 1, then one more per retry.
const SpanAttributeAttempt = "app.notifier.attempt"

// ErrMalformed marks a message that no attempt can process: it is not an OrderPlaced event this
// version can read. It goes to the dead-letter queue at once.
var ErrMalformed = errors.New("malformed message")

// Message is an OrderPlaced event, decoded and checked, ready to be notified about.
type Message struct {
	Order notify.Order
	// Attempt is 1 on the first delivery and one more on each retry.
	Attempt int
}

// OrderHandler handles one Message; like a rabbitmq.Handler, it returns nil when done.
type OrderHandler func(ctx context.Context, m Message) error

// Bounds on the ids of an OrderPlaced, with room to spare over what order-api produces.
const (
	maxOrderIDLen    = 128
	maxCustomerIDLen = 64
)

// Decode reads each delivery as an OrderPlaced event and passes it to h. A delivery that is not
// one fails with ErrMalformed, without calling h: a wrong content-type or event-type, a body
// that is not the event's JSON, a missing order_id, customer_id or item, or an id too long to be
// one. Fields the event does not define are ignored: a newer producer may add some.
func Decode(h OrderHandler) rabbitmq.Handler {
	return func(ctx context.Context, d rabbitmq.Delivery) error {
		order, err := decode(d)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		attempt := Attempt(d)
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String(ordersv1.SpanAttributeOrderID, order.ID),
			attribute.Int(SpanAttributeAttempt, attempt),
		)
		return h(ctx, Message{Order: order, Attempt: attempt})
	}
}

func decode(d rabbitmq.Delivery) (notify.Order, error) {
	if d.ContentType != "" {
		if media, _, err := mime.ParseMediaType(d.ContentType); err != nil || media != ordersv1.ContentType {
			return notify.Order{}, fmt.Errorf("content type %q is not %s", d.ContentType, ordersv1.ContentType)
		}
	}
	// The header is the contract; the AMQP type property is accepted for hand-made messages.
	eventType, _ := d.Headers[ordersv1.HeaderEventType].(string)
	if eventType == "" {
		eventType = d.Type
	}
	if eventType != ordersv1.EventTypeOrderPlaced {
		return notify.Order{}, fmt.Errorf("event type %q is not %s", eventType, ordersv1.EventTypeOrderPlaced)
	}
	e, err := ordersv1.UnmarshalOrderPlaced(d.Body)
	if err != nil {
		return notify.Order{}, err
	}
	var missing []string
	if e.GetOrderId() == "" {
		missing = append(missing, "order_id")
	}
	if e.GetCustomerId() == "" {
		missing = append(missing, "customer_id")
	}
	if len(e.GetItems()) == 0 {
		missing = append(missing, "items")
	}
	if len(missing) > 0 {
		return notify.Order{}, fmt.Errorf("OrderPlaced without %v", missing)
	}
	// Ids are recorded, journaled and served: one absurd id must not bloat (or, in the journal,
	// break) that record. A customer_id is at most 64 characters; an order_id is a UUID.
	if len(e.GetOrderId()) > maxOrderIDLen {
		return notify.Order{}, fmt.Errorf("order_id longer than %d bytes", maxOrderIDLen)
	}
	if len(e.GetCustomerId()) > maxCustomerIDLen {
		return notify.Order{}, fmt.Errorf("customer_id longer than %d bytes", maxCustomerIDLen)
	}
	return notify.Order{
		ID:         e.GetOrderId(),
		CustomerID: e.GetCustomerId(),
		TotalCents: e.GetTotalCents(),
		Currency:   e.GetCurrency(),
	}, nil
}
