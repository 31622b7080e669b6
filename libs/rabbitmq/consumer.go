package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Handler processes one delivery. Returning nil acknowledges it. Returning an error rejects it
// (basic.reject, which RabbitMQ counts as a failed delivery): by default without requeue, so
// the queue's dead-letter exchange takes it (or it is dropped when the queue has none); with
// requeue when the error is wrapped by Requeue. Retry-with-delay and parking belong in
// middleware around the handler, built from these two outcomes.
//
// ctx is cancelled when Stop runs out of time; a handler that honours it lets the consumer
// stop promptly (its message then goes back to the queue).
type Handler func(ctx context.Context, d Delivery) error

// Requeue marks err so that the delivery goes back to its queue instead of being
// dead-lettered. Use it for failures that another attempt may not hit (a quorum queue's
// x-delivery-limit bounds the attempts). Requeue(nil) is nil.
func Requeue(err error) error {
	if err == nil {
		return nil
	}
	return requeueError{err}
}

type requeueError struct{ err error }

func (e requeueError) Error() string { return "requeue: " + e.err.Error() }
func (e requeueError) Unwrap() error { return e.err }

// ConsumerConfig says what a Consumer reads and how much it takes at once.
type ConsumerConfig struct {
	// Queue to consume from. Declare it (with its bindings) through Connection.Declare first.
	Queue string
	// Tag is the consumer tag shown by the broker; empty generates a unique one.
	Tag string
	// Prefetch is how many unacknowledged deliveries the broker lets this consumer hold;
	// zero takes Config.Prefetch.
	Prefetch int
	// Workers is how many handlers run concurrently; zero means one per prefetched delivery.
	Workers int
}

// Consumer consumes one queue with manual acknowledgements and a pool of workers. When its
// channel or the connection is lost it subscribes again once the Connection has recovered;
// deliveries that were not acknowledged by then are redelivered by the broker (Redelivered).
type Consumer struct {
	conn     *Connection
	queue    string
	tag      string
	prefetch int
	workers  int
	handler  Handler
	log      *zap.Logger

	loop     context.Context // cancelled by Stop: no more (re)subscribing
	stopLoop context.CancelFunc
	work     context.Context // passed to handlers; cancelled when Stop runs out of time
	stopWork context.CancelFunc

	mu       sync.Mutex
	sub      *subscription // nil while not subscribed
	started  bool
	stopping bool
	done     chan struct{} // closed when the consuming goroutine returned; nil before Start
}

type subscription struct {
	ch         *amqp.Channel
	conn       *amqp.Connection
	deliveries <-chan amqp.Delivery
}

// NewConsumer returns a consumer that calls h for each delivery from cfg.Queue once started.
func NewConsumer(conn *Connection, cfg ConsumerConfig, h Handler, log *zap.Logger) (*Consumer, error) {
	if cfg.Queue == "" {
		return nil, errors.New("rabbitmq: consumer: queue is required")
	}
	if h == nil {
		return nil, errors.New("rabbitmq: consumer: handler is required")
	}
	if cfg.Prefetch < 0 || cfg.Workers < 0 {
		return nil, fmt.Errorf("rabbitmq: consumer: prefetch and workers must not be negative, got %d and %d", cfg.Prefetch, cfg.Workers)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = conn.cfg.Prefetch
	}
	if cfg.Workers == 0 {
		cfg.Workers = cfg.Prefetch
	}
	if cfg.Tag == "" {
		cfg.Tag = uniqueTag(conn.cfg.ConnectionName, cfg.Queue)
	}
	loop, stopLoop := context.WithCancel(context.Background())
	work, stopWork := context.WithCancel(context.Background())
	return &Consumer{
		conn:     conn,
		queue:    cfg.Queue,
		tag:      cfg.Tag,
		prefetch: cfg.Prefetch,
		workers:  cfg.Workers,
		handler:  h,
		log:      log.Named("rabbitmq.consumer").With(zap.String("queue", cfg.Queue), zap.String("consumer_tag", cfg.Tag)),
		loop:     loop,
		stopLoop: stopLoop,
		work:     work,
		stopWork: stopWork,
	}, nil
}

func uniqueTag(prefix, queue string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if prefix == "" {
		prefix = "consumer"
	}
	return prefix + "." + queue + "." + hex.EncodeToString(b)
}

// Start subscribes, waiting up to ctx for the connection, and returns once the broker
// accepted the consumer: messages published afterwards reach it.
func (c *Consumer) Start(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.stopping:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return errors.New("rabbitmq: consumer already started")
	}
	c.started = true
	c.mu.Unlock()

	sub, err := c.subscribe(ctx)
	if err != nil {
		c.mu.Lock()
		c.started = false // the caller may try again
		c.mu.Unlock()
		return fmt.Errorf("rabbitmq: consume from queue %q: %w", c.queue, err)
	}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		c.conn.closeChannel(sub.conn, sub.ch)
		return ErrClosed
	}
	c.sub = sub
	c.done = make(chan struct{})
	c.mu.Unlock()
	c.log.Info("consuming", zap.Int("prefetch", c.prefetch), zap.Int("workers", c.workers))
	// Start's ctx bounds only the subscribing: handlers get the consumer's own context, which
	// Stop cancels when it runs out of time.
	go c.run(sub) //nolint:contextcheck // see above
	return nil
}

// Stop cancels the consumer (basic.cancel) so that the broker sends nothing more, lets the
// handlers finish the deliveries already received, settles them and closes the channel. If
// ctx ends first, it cancels the handlers' context and closes the channel, so that whatever
// is still unacknowledged goes back to the queue, and returns an error. Stop is idempotent.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	first := !c.stopping
	c.stopping = true
	sub, done := c.sub, c.done
	c.mu.Unlock()

	c.stopLoop()
	if done == nil {
		c.stopWork()
		return nil
	}
	if first && sub != nil {
		disarm := c.conn.guard(sub.conn, "cancel consumer")
		// Closes the deliveries channel after the last delivery sent before basic.cancel-ok;
		// an error means the channel is already gone and run is resubscribing or exiting.
		if err := sub.ch.Cancel(c.tag, false); err != nil {
			c.log.Debug("cancel consumer", zap.Error(err))
		}
		disarm()
	}
	select {
	case <-done:
		c.stopWork()
		return nil
	case <-ctx.Done():
		c.stopWork()
		if sub != nil {
			c.conn.closeChannel(sub.conn, sub.ch)
		}
		return fmt.Errorf("rabbitmq: stop consumer on queue %q: in-flight handlers did not finish: %w", c.queue, ctx.Err())
	}
}

// Ready reports whether the consumer is subscribed.
func (c *Consumer) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopping:
		return ErrClosed
	case c.sub == nil || c.sub.ch.IsClosed():
		return fmt.Errorf("%w: consumer on queue %q is not subscribed", ErrNotConnected, c.queue)
	}
	return nil
}

func (c *Consumer) subscribe(ctx context.Context) (*subscription, error) {
	var deliveries <-chan amqp.Delivery
	ch, conn, err := c.conn.channel(ctx, func(ch *amqp.Channel) error {
		// Per-consumer prefetch (global=false); quorum queues support no other.
		if err := ch.Qos(c.prefetch, 0, false); err != nil {
			return fmt.Errorf("set prefetch: %w", err)
		}
		d, err := ch.Consume(c.queue, c.tag, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		deliveries = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &subscription{ch: ch, conn: conn, deliveries: deliveries}, nil
}

// run serves subscriptions until Stop, or until the Connection is closed.
func (c *Consumer) run(sub *subscription) {
	defer close(c.done)
	for {
		c.serve(sub)
		c.mu.Lock()
		c.sub = nil
		stopping := c.stopping
		c.mu.Unlock()
		// Every handled delivery is settled by now; the broker requeues anything else.
		c.conn.closeChannel(sub.conn, sub.ch)
		if stopping {
			c.log.Info("consumer stopped")
			return
		}
		c.log.Warn("consumer lost its channel, subscribing again")
		if sub = c.resubscribe(); sub == nil {
			return
		}
	}
}

// serve runs the workers until the deliveries channel closes: after basic.cancel, or when the
// channel or connection dies.
func (c *Consumer) serve(sub *subscription) {
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for d := range sub.deliveries {
				c.handle(d)
			}
		})
	}
	wg.Wait()
}

func (c *Consumer) resubscribe() *subscription {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.conn.cfg.ReconnectMin,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.conn.cfg.ReconnectMax,
	}
	for attempt := 1; ; attempt++ {
		if !sleep(c.loop, min(b.NextBackOff(), c.conn.cfg.ReconnectMax)) {
			return nil
		}
		// Waits for the Connection to recover, as long as it takes.
		sub, err := c.subscribe(c.loop)
		switch {
		case err == nil:
		case c.loop.Err() != nil:
			return nil
		case errors.Is(err, ErrClosed):
			c.log.Warn("connection closed, consumer gives up")
			return nil
		default:
			c.log.Warn("subscribe failed", zap.Int("attempt", attempt), zap.Error(err))
			continue
		}
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			c.conn.closeChannel(sub.conn, sub.ch)
			return nil
		}
		c.sub = sub
		c.mu.Unlock()
		c.log.Info("consuming again", zap.Int("attempt", attempt))
		return sub
	}
}

// handle runs the handler and settles the delivery from its result.
func (c *Consumer) handle(d amqp.Delivery) {
	err := c.invoke(newDelivery(d))
	if err == nil {
		if ackErr := d.Ack(false); ackErr != nil {
			c.log.Warn("ack failed, the broker will redeliver the message",
				zap.String("message_id", d.MessageId), zap.Error(ackErr))
		}
		return
	}
	var r requeueError
	requeue := errors.As(err, &r)
	c.log.Warn("handler failed, rejecting the message",
		zap.String("message_id", d.MessageId), zap.Bool("requeue", requeue),
		zap.Bool("redelivered", d.Redelivered), zap.Error(err))
	if rejectErr := d.Reject(requeue); rejectErr != nil {
		c.log.Warn("reject failed, the broker will redeliver the message",
			zap.String("message_id", d.MessageId), zap.Error(rejectErr))
	}
}

// invoke calls the handler, turning a panic into an error so that the message is rejected
// rather than the process lost.
func (c *Consumer) invoke(d Delivery) (err error) {
	ctx, span := startProcess(c.work, c.queue, d)
	defer func() { end(span, err) }() // after the recovery below has set err
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", zap.Any("panic", p), zap.Stack("stack"))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return c.handler(ctx, d)
}
