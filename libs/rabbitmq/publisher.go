package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Message is one message to publish. Publish always sends it persistent (delivery mode 2) and
// mandatory, so that it survives a broker restart once confirmed and is never dropped silently
// for lack of a queue.
type Message struct {
	Body []byte
	// ContentType is the MIME type of Body, e.g. "application/json".
	ContentType     string
	ContentEncoding string
	// MessageID identifies the message for consumers that deduplicate.
	MessageID     string
	CorrelationID string
	// Type names the kind of event, e.g. "orders.v1.OrderPlaced".
	Type  string
	AppID string
	// Timestamp defaults to the time of publishing (UTC, whole seconds on the wire).
	Timestamp time.Time
	// Headers must hold AMQP-compatible values: strings, integers, floats, bools, byte slices,
	// time.Time, nested maps and slices of those.
	Headers map[string]any
}

// Publisher publishes with publisher confirms over a pool of channels. A channel carries one
// publish at a time, so a confirm, a nack or a basic.return always belongs to the message just
// sent on it, and at most PublisherChannels publishes wait for their confirm concurrently.
//
// Channels are opened lazily and reopened after the connection recovers. While the broker is
// unreachable, Publish waits for the connection until its context ends and then fails with
// ErrNotConnected; it does not fail fast. Give it the deadline the caller can afford, or ask
// Down first to fail at once while the connection is known to be lost.
//
// It is safe for concurrent use.
type Publisher struct {
	conn    *Connection
	log     *zap.Logger
	timeout time.Duration
	size    int
	slots   chan *confirmChannel

	closed    chan struct{}
	closeOnce sync.Once
	abandoned sync.WaitGroup // closes of channels given up with a publish in flight
}

// confirmChannel is one slot of the pool; its channel is nil until first used or after it died.
type confirmChannel struct {
	ch      *amqp.Channel
	conn    *amqp.Connection
	returns chan amqp.Return
	closes  chan *amqp.Error
}

// NewPublisher returns a publisher on conn with the pool size and default timeout of the
// connection's Config. It opens no channel yet.
func NewPublisher(conn *Connection, log *zap.Logger) *Publisher {
	size := conn.cfg.PublisherChannels
	slots := make(chan *confirmChannel, size)
	for range size {
		slots <- &confirmChannel{}
	}
	return &Publisher{
		conn:    conn,
		log:     log.Named("rabbitmq.publisher"),
		timeout: conn.cfg.PublishTimeout,
		size:    size,
		slots:   slots,
		closed:  make(chan struct{}),
	}
}

// Publish sends msg to exchange with routingKey and returns once the broker confirmed it,
// i.e. once every queue it was routed to has it (persisted, for durable queues). Without a
// deadline on ctx, PublishTimeout applies. Errors:
//   - ErrUnroutable: no queue is bound for the routing key (the message was returned).
//   - ErrNacked: the broker refused the message.
//   - ErrNotConnected: no connection before ctx ended; nothing was sent.
//   - ErrUnconfirmed: sent, but the channel or connection closed, or ctx ended, before the
//     confirm; the broker may have the message.
//   - ErrClosed: the publisher was closed.
func (p *Publisher) Publish(ctx context.Context, exchange, routingKey string, msg Message) error {
	if err := amqp.Table(msg.Headers).Validate(); err != nil {
		return fmt.Errorf("rabbitmq: publish: headers: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	ctx, span := startSend(ctx, exchange, routingKey, &msg)
	err := p.publishOn(ctx, exchange, routingKey, msg)
	end(span, err)
	return err
}

// publishOn publishes msg on a free channel of the pool.
func (p *Publisher) publishOn(ctx context.Context, exchange, routingKey string, msg Message) error {

	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	var slot *confirmChannel
	select {
	case <-p.closed:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: publish to exchange %q: waiting for a free channel: %w", exchange, ctx.Err())
	case slot = <-p.slots:
	}
	defer func() { p.slots <- slot }()

	if err := p.publish(ctx, slot, exchange, routingKey, msg); err != nil {
		return fmt.Errorf("rabbitmq: publish to exchange %q with routing key %q: %w", exchange, routingKey, err)
	}
	return nil
}

func (p *Publisher) publish(ctx context.Context, s *confirmChannel, exchange, routingKey string, msg Message) error {
	if s.ch == nil || s.ch.IsClosed() {
		if err := p.open(ctx, s); err != nil {
			return err
		}
	}

	timestamp := msg.Timestamp
	if timestamp.IsZero() {
		timestamp = time.Now()
	}
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, routingKey, true, false, amqp.Publishing{
		Headers:         amqp.Table(msg.Headers),
		ContentType:     msg.ContentType,
		ContentEncoding: msg.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		CorrelationId:   msg.CorrelationID,
		MessageId:       msg.MessageID,
		Timestamp:       timestamp.UTC(),
		Type:            msg.Type,
		AppId:           msg.AppID,
		Body:            msg.Body,
	})
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err // checked before sending: the channel is intact
	default:
		// A failed write shuts the connection down; the broker drops partial messages. Close the
		// channel anyway in case the connection survived, so failures cannot pile up channels.
		p.abandon(s)
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}

	select {
	case <-dc.Done():
	case <-ctx.Done():
		// A late confirm or return would be taken for the next message's: retire the channel.
		p.abandon(s)
		return fmt.Errorf("%w: %w", ErrUnconfirmed, ctx.Err())
	}

	if dc.Acked() {
		// The broker sends basic.return before the basic.ack of an unroutable mandatory
		// message, and amqp091-go hands them over in that order.
		select {
		case r, ok := <-s.returns:
			if ok {
				return &UnroutableError{Exchange: r.Exchange, RoutingKey: r.RoutingKey, ReplyCode: r.ReplyCode, ReplyText: r.ReplyText}
			}
		default:
		}
		return nil
	}
	// amqp091-go resolves pending confirms as nacks when the channel shuts down.
	if s.ch.IsClosed() {
		s.ch = nil
		select {
		case reason, ok := <-s.closes:
			if ok && reason != nil {
				return fmt.Errorf("%w: channel closed: %w", ErrUnconfirmed, reason)
			}
		default:
		}
		return fmt.Errorf("%w: channel closed", ErrUnconfirmed)
	}
	return ErrNacked
}

// open puts a fresh confirm-mode channel into s, waiting up to ctx for a connection.
func (p *Publisher) open(ctx context.Context, s *confirmChannel) error {
	returns := make(chan amqp.Return, 1)
	closes := make(chan *amqp.Error, 1)
	ch, conn, err := p.conn.channel(ctx, func(ch *amqp.Channel) error {
		ch.NotifyReturn(returns)
		ch.NotifyClose(closes)
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("enable publisher confirms: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*s = confirmChannel{ch: ch, conn: conn, returns: returns, closes: closes}
	p.log.Debug("confirm channel opened")
	return nil
}

// abandon retires the channel of s without waiting for its close.
func (p *Publisher) abandon(s *confirmChannel) {
	ch, conn := s.ch, s.conn
	s.ch = nil
	p.abandoned.Go(func() { p.conn.closeChannel(conn, ch) })
}

// Down reports, without blocking, whether the Publisher's connection is known to be lost (see
// Connection.Down): an error wrapping ErrNotConnected, or nil.
func (p *Publisher) Down() error { return p.conn.Down() }

// Ready reports whether the Publisher's connection is up: nil, or why publishing would fail.
func (p *Publisher) Ready(ctx context.Context) error { return p.conn.Ready(ctx) }

// Close waits for in-flight publishes (up to ctx) and closes the pool's channels. Publish
// fails with ErrClosed afterwards. It does not close the Connection.
func (p *Publisher) Close(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() { err = p.close(ctx) })
	return err
}

func (p *Publisher) close(ctx context.Context) error {
	close(p.closed)
	for range p.size {
		select {
		case s := <-p.slots:
			if s.ch != nil {
				p.conn.closeChannel(s.conn, s.ch)
			}
		case <-ctx.Done():
			return fmt.Errorf("rabbitmq: close publisher: waiting for in-flight publishes: %w", ctx.Err())
		}
	}
	done := make(chan struct{})
	go func() {
		p.abandoned.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: close publisher: %w", ctx.Err())
	}
}
