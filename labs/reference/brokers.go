package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	amqp "github.com/rabbitmq/amqp091-go"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// kafkaProducer is one long-lived librdkafka producer with order-api's settings.
type kafkaProducer struct {
	p      *kafka.Producer
	topic  string
	events sync.WaitGroup // the goroutine draining p.Events()
}

func newKafka(ctx context.Context, cfg config) (*kafkaProducer, error) {
	// libs/kafka's producer settings (NewProducer and commonConfig), at order-api's defaults.
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":                  cfg.kafkaBootstrap,
		"client.id":                          "backend-prep",
		"topic.metadata.refresh.interval.ms": 10_000,
		"enable.idempotence":                 true,
		"acks":                               "all",
		"delivery.timeout.ms":                30_000,
		"linger.ms":                          int(cfg.kafkaLinger.Milliseconds()),
		"compression.type":                   "lz4",
		"partitioner":                        "murmur2_random",
		"go.delivery.report.fields":          "none",
		"reconnect.backoff.max.ms":           1000,
		// The Go client's own buffers, a million entries each by default: 24 MB of heap.
		"go.events.channel.size":  1000,
		"go.produce.channel.size": 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	k := &kafkaProducer{p: p, topic: cfg.kafkaTopic}
	// Delivery reports go to each message's own channel; everything else librdkafka reports
	// (errors, mostly) arrives here, and must be read or it piles up. Close ends the loop.
	k.events.Go(func() {
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				fmt.Fprintln(os.Stderr, "reference: kafka:", e)
			}
		}
	})
	// A broker must answer before the first order: librdkafka connects in the background.
	ms := int(time.Until(deadline(ctx)).Milliseconds())
	if _, err := p.GetMetadata(nil, false, max(ms, 1)); err != nil {
		_ = k.close(time.Second)
		return nil, fmt.Errorf("kafka %s: no broker answered: %w", cfg.kafkaBootstrap, err)
	}
	return k, nil
}

// publish sends one event keyed by its order_id and waits for acks=all, or ctx's end. A message
// whose wait ended may still be delivered later, as order-api's.
func (k *kafkaProducer) publish(ctx context.Context, orderID, eventID string, body []byte) error {
	delivered := make(chan kafka.Event, 1) // buffered: librdkafka never waits for us
	err := k.p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &k.topic, Partition: kafka.PartitionAny},
		Key:            []byte(orderID),
		Value:          body,
		Headers: []kafka.Header{
			{Key: ordersv1.HeaderContentType, Value: []byte(ordersv1.ContentType)},
			{Key: ordersv1.HeaderEventType, Value: []byte(ordersv1.EventTypeOrderPlaced)},
			{Key: ordersv1.HeaderEventID, Value: []byte(eventID)},
		},
	}, delivered)
	if err != nil {
		return fmt.Errorf("kafka: produce: %w", err)
	}
	select {
	case ev := <-delivered:
		m, ok := ev.(*kafka.Message)
		if !ok {
			return fmt.Errorf("kafka: unexpected delivery event %v", ev)
		}
		if m.TopicPartition.Error != nil {
			return fmt.Errorf("kafka: deliver: %w", m.TopicPartition.Error)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: waiting for the acknowledgement: %w", ctx.Err())
	}
}

// close flushes what is still queued for up to timeout, drops the rest, and releases the
// producer.
func (k *kafkaProducer) close(timeout time.Duration) error {
	var err error
	if left := k.p.Flush(int(timeout.Milliseconds())); left > 0 {
		err = fmt.Errorf("kafka: %d messages not delivered by the end of the flush", left)
		_ = k.p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight)
		k.p.Flush(100) // hands the purged messages' reports to their publishers
	}
	k.p.Close() // closes Events(): the draining goroutine returns
	k.events.Wait()
	return err
}

// rabbitPool publishes with publisher confirms over a fixed pool of channels of one connection.
// A channel carries one publish at a time, so its confirm (and a basic.return before it)
// belongs to the message just sent; at most len(pool) publishes wait for a confirm at once.
type rabbitPool struct {
	conn     *amqp.Connection
	exchange string
	slots    chan *confirmChannel
	size     int
	retired  sync.WaitGroup // closes of channels given up mid-publish
}

// confirmChannel is one slot of the pool: a confirm-mode channel, nil until opened.
type confirmChannel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
}

func newRabbit(ctx context.Context, cfg config) (*rabbitPool, error) {
	left := time.Until(deadline(ctx))
	if left <= 0 {
		return nil, fmt.Errorf("rabbitmq: dial: %w", context.DeadlineExceeded)
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("reference")
	conn, err := amqp.DialConfig(cfg.rabbitURL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: props,
		Dial:       amqp.DefaultDial(left), // TCP connect and AMQP handshake
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial: %w", err) // amqp091-go's errors never hold the password
	}
	r := &rabbitPool{conn: conn, exchange: cfg.rabbitExchange, slots: make(chan *confirmChannel, cfg.rabbitChannels), size: cfg.rabbitChannels}
	// amqp091-go's synchronous methods take no context: when ctx ends first, dropping the
	// connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	defer stop()

	// The exchange is declared by whoever runs the system; check it is there.
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclarePassive(cfg.rabbitExchange, amqp.ExchangeTopic, true, false, false, false, nil)
		if err == nil {
			err = ch.Close()
		}
	}
	if err != nil {
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			return nil, fmt.Errorf("rabbitmq: exchange %q does not exist: declare it (a durable topic exchange) or start the system that does: %w",
				cfg.rabbitExchange, err)
		}
		return nil, fmt.Errorf("rabbitmq: check exchange %q: %w", cfg.rabbitExchange, err)
	}
	for range cfg.rabbitChannels {
		s := &confirmChannel{}
		if err := s.open(conn); err != nil {
			_ = conn.CloseDeadline(time.Now().Add(time.Second))
			return nil, fmt.Errorf("rabbitmq: open a confirm channel: %w", err)
		}
		r.slots <- s
	}
	return r, nil
}

func (s *confirmChannel) open(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return fmt.Errorf("enable publisher confirms: %w", err)
	}
	s.ch, s.returns = ch, returns
	return nil
}

// publish sends the event persistent and mandatory, and waits for its confirm or ctx's end.
func (r *rabbitPool) publish(ctx context.Context, eventID string, placedAt time.Time, body []byte) error {
	var s *confirmChannel
	select {
	case s = <-r.slots:
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: waiting for a free channel: %w", ctx.Err())
	}
	defer func() { r.slots <- s }()

	if s.ch == nil || s.ch.IsClosed() {
		// A channel the broker closed (or one retired below): open another, within ctx.
		stop := context.AfterFunc(ctx, func() { _ = r.conn.CloseDeadline(time.Now()) })
		err := s.open(r.conn)
		stop()
		if err != nil {
			s.ch = nil
			return fmt.Errorf("rabbitmq: open a confirm channel: %w", err)
		}
	}
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, r.exchange, ordersv1.RoutingKey, true, false, amqp.Publishing{
		Headers: amqp.Table{
			ordersv1.HeaderContentType: ordersv1.ContentType,
			ordersv1.HeaderEventType:   ordersv1.EventTypeOrderPlaced,
			ordersv1.HeaderEventID:     eventID,
		},
		ContentType:  ordersv1.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    eventID,
		Timestamp:    placedAt.UTC(),
		Type:         ordersv1.EventTypeOrderPlaced,
		Body:         body,
	})
	if err != nil {
		r.retire(s)
		return fmt.Errorf("rabbitmq: publish: %w", err)
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		// A late confirm would be taken for the next message's: give the channel up.
		r.retire(s)
		return fmt.Errorf("rabbitmq: waiting for the confirm: %w", ctx.Err())
	}
	if !dc.Acked() {
		r.retire(s)
		return errors.New("rabbitmq: the broker did not confirm the message (nack, or the channel closed)")
	}
	// The broker sends basic.return before the basic.ack of an unroutable mandatory message,
	// and amqp091-go hands them over in that order.
	select {
	case ret := <-s.returns:
		return fmt.Errorf("rabbitmq: no queue is bound to exchange %q for routing key %q: %s",
			ret.Exchange, ret.RoutingKey, ret.ReplyText)
	default:
		return nil
	}
}

// retire closes the slot's channel in the background, reading any return still due so that the
// connection is never blocked on it; the slot opens a new channel on its next use.
func (r *rabbitPool) retire(s *confirmChannel) {
	ch, returns := s.ch, s.returns
	s.ch, s.returns = nil, nil
	r.retired.Go(func() {
		for range returns { // closed with the channel
		}
	})
	r.retired.Go(func() { _ = ch.Close() }) // bounded by heartbeats, and by close ending the connection
}

// down says why publishing cannot work any more: the connection is gone and never comes back.
func (r *rabbitPool) down() error {
	if r.conn.IsClosed() {
		return errors.New("rabbitmq: connection closed")
	}
	return nil
}

// close closes every channel and then the connection, within timeout.
func (r *rabbitPool) close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = r.conn.CloseDeadline(time.Now()) })
	defer stop()
	for range r.size {
		select {
		case s := <-r.slots:
			if s.ch != nil {
				_ = s.ch.Close()
			}
		case <-ctx.Done(): // a request still holds its slot: the connection's close ends it
		}
	}
	err := r.conn.CloseDeadline(time.Now().Add(time.Until(deadline(ctx))))
	r.retired.Wait() // the connection is closed: every retired channel's Close has returned
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: close: %w", err)
	}
	return nil
}

// deadline is ctx's deadline; every context this program passes here has one.
func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(startTimeout)
	}
	return d
}
