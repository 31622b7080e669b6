package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Step 3, RabbitMQ: order-api publishes every order to the topic exchange "orders"; the notifier
// owns the quorum queue "notifier.order-placed", bound to it, and consumes it.

const (
	ordersExchange = "orders"
	notifierQueue  = "notifier.order-placed"
)

// rabbitmqRun is what the checks of step 3 share: one AMQP connection, and what they learnt.
type rabbitmqRun struct {
	cfg       config
	conn      *amqp.Connection // nil until connected, or after it was given up
	consumers int              // consumers of the notifier's queue; -1 until known
}

func rabbitmqChecks(cfg config) ([]check, func()) {
	r := &rabbitmqRun{cfg: cfg, consumers: -1}
	return []check{
		{
			name: "AMQP connects to " + redactURL(cfg.rabbitmq),
			run:  r.connects,
			hint: hintRabbitMQ,
		},
		{
			name: "exchange " + ordersExchange + " exists",
			run:  r.exchangeExists,
			hint: "order-api declares it when it starts (the publisher owns its exchange): " + hintOrderAPI,
		},
		{
			name: "queue " + notifierQueue + " exists",
			run:  r.queueExists,
			hint: "the notifier declares its queue and binds it to " + ordersExchange + " when it starts: " + hintNotifier,
		},
		{
			name: "queue " + notifierQueue + " has a consumer",
			run:  r.queueHasConsumer,
			hint: hintNotifier,
		},
		{
			name: "an order posted to order-api gets its notification",
			run:  r.orderNotified,
			hint: hintNotifier,
		},
	}, r.close
}

// connects opens the connection the other checks use.
func (r *rabbitmqRun) connects(ctx context.Context) (string, error) {
	conn, err := dialAMQP(ctx, r.cfg.rabbitmq)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.AccessRefused {
		return "", withHint(err, "RabbitMQ answers but refuses these credentials. Locally the user is guest/guest; "+
			"in the cluster it is in the Secret rabbitmq-credentials (the Tilt button reads it for you): "+
			"pass the URL with --rabbitmq or RABBITMQ_URL")
	}
	if err != nil {
		return "", err
	}
	r.conn = conn
	return fmt.Sprintf("RabbitMQ %v", conn.Properties["version"]), nil
}

// exchangeExists declares the exchange passively: the broker answers whether it exists,
// and creates nothing.
func (r *rabbitmqRun) exchangeExists(ctx context.Context) (string, error) {
	err := r.onChannel(ctx, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(ordersExchange, amqp.ExchangeTopic, true, false, false, false, nil)
	})
	return "", err
}

// queueExists declares the queue passively, which also tells its message and consumer counts.
func (r *rabbitmqRun) queueExists(ctx context.Context) (string, error) {
	var q amqp.Queue
	err := r.onChannel(ctx, func(ch *amqp.Channel) error {
		var err error
		q, err = ch.QueueDeclarePassive(notifierQueue, true, false, false, false, nil)
		return err
	})
	if err != nil {
		return "", err
	}
	r.consumers = q.Consumers
	return fmt.Sprintf("%d messages ready", q.Messages), nil
}

func (r *rabbitmqRun) queueHasConsumer(context.Context) (string, error) {
	switch {
	case r.consumers < 0:
		return "", blocked("the queue")
	case r.consumers == 0:
		return "", fmt.Errorf("it has no consumer: orders pile up in it until a notifier consumes them")
	case r.consumers == 1:
		return "1 consumer", nil
	default:
		return fmt.Sprintf("%d competing consumers share its messages", r.consumers), nil
	}
}

// orderNotified places an order and waits until the notifier says it notified the customer.
// Competing consumers share a queue's messages, and each notifier knows only the notifications
// it sent itself: with several consumers, it places one order per consumer — RabbitMQ hands
// them out in turn — and waits until the notifier it asks reports one of them. Without a
// consumer it places none: the order would wait in the queue, and be what the next exercise
// finds there.
func (r *rabbitmqRun) orderNotified(ctx context.Context) (string, error) {
	switch {
	case r.consumers < 0:
		return "", blocked("the queue")
	case r.consumers == 0:
		return "", blocked("a consumer of the queue (no order was placed, so none is left waiting in it)")
	}
	began := time.Now()
	var ids []string
	for range min(r.consumers, maxOrders) {
		o, err := placeOrder(ctx, r.cfg.orderAPI, newIdempotencyKey())
		if err != nil {
			return "", withHint(fmt.Errorf("place an order: %w", err), hintOrderAPI)
		}
		ids = append(ids, o.OrderID)
	}
	var n notification
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		for _, id := range ids {
			var err error
			if n, err = getNotification(ctx, r.cfg.notifier, id); err == nil {
				return true, nil
			} else if !errors.Is(err, errNotYet) {
				return false, err
			}
		}
		return false, errNotYet
	})
	if err != nil {
		return "", fmt.Errorf("no notification for order %s: %w", strings.Join(ids, ", "), err)
	}
	detail := fmt.Sprintf("order %s notified %s after it was posted, in %d attempt(s)",
		n.OrderID, time.Since(began).Round(time.Millisecond), n.Attempts)
	if len(ids) > 1 {
		detail += fmt.Sprintf("; %d orders placed, one per competing consumer", len(ids))
	}
	return detail, nil
}

// onChannel runs op on a channel of its own, because a failed passive declaration closes its
// channel (404 NOT_FOUND is a channel error). amqp091-go's methods take no context: if ctx
// ends first, the connection is closed under op, which makes it return.
func (r *rabbitmqRun) onChannel(ctx context.Context, op func(ch *amqp.Channel) error) error {
	if r.conn == nil {
		return blocked("an AMQP connection")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var opErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch, err := r.conn.Channel()
		if err != nil {
			opErr = err
			return
		}
		opErr = op(ch)
		_ = ch.Close() // already closed by the broker when op failed
	}()
	select {
	case <-done:
		return opErr
	case <-ctx.Done():
		_ = r.conn.Close()
		<-done
		r.conn = nil
		return fmt.Errorf("RabbitMQ did not answer in time: %w", ctx.Err())
	}
}

func (r *rabbitmqRun) close() {
	if r.conn != nil {
		_ = r.conn.CloseDeadline(time.Now().Add(callTimeout))
	}
}

// dialAMQP connects within ctx and callTimeout: TCP connect and AMQP handshake alike.
func dialAMQP(ctx context.Context, rawURL string) (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("selfcheck")
	conn, err := amqp.DialConfig(rawURL, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// amqp091-go clears the deadline once the handshake is done.
			deadline, _ := ctx.Deadline()
			if err := c.SetDeadline(deadline); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURL(rawURL), err)
	}
	return conn, nil
}

// redactURL hides the password of a URL that is printed.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "an invalid URL"
	}
	return u.Redacted()
}
