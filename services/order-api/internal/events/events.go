// Package events publishes order-api's OrderPlaced events to Kafka and to RabbitMQ, adapting
// the libs/kafka producer and the libs/rabbitmq publisher to orders.Publisher.
//
// Both brokers get the same bytes and the same headers (docs/architecture.md, "Events"): the
// protojson body, content-type, event-type and event-id, and the request's trace context
// (traceparent), which libs/kafka and libs/rabbitmq write with the span of the publish. On Kafka the record key is
// the order_id, so every event of one order lands on one partition; on RabbitMQ the message is
// persistent and mandatory, its message ID is the event-id, and Publish returns only after the
// confirm.
//
// order-api owns both destinations and declares them at start: the topic with its partition
// count, and the durable topic exchange.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// Metrics measures publishing, per broker.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers order_publish_duration_seconds on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "order_publish_duration_seconds",
		Help: "Time from handing an OrderPlaced event to a broker to its confirmation (or failure), by broker and result.",
		// Confirms take milliseconds; the upper buckets show deadlines being hit.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"broker", "result"})}
	if err := reg.Register(m.duration); err != nil {
		return nil, fmt.Errorf("events: register metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) observe(broker string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.duration.WithLabelValues(broker, result).Observe(time.Since(start).Seconds())
}

// encoded is an event ready for either broker.
type encoded struct {
	body    []byte
	headers [][2]string // in this order on the wire
}

func encode(e orders.Event) (encoded, error) {
	body := e.Body
	if body == nil {
		var err error
		if body, err = ordersv1.MarshalOrderPlaced(e.OrderPlaced); err != nil {
			return encoded{}, fmt.Errorf("events: %w", err)
		}
	}
	return encoded{body: body, headers: [][2]string{
		{ordersv1.HeaderContentType, ordersv1.ContentType},
		{ordersv1.HeaderEventType, ordersv1.EventTypeOrderPlaced},
		{ordersv1.HeaderEventID, e.ID},
	}}, nil
}

// KafkaPublisher publishes OrderPlaced events to a Kafka topic, keyed by order_id.
type KafkaPublisher struct {
	producer *kafka.Producer
	topic    string
	metrics  *Metrics
}

var (
	_ orders.Publisher = (*KafkaPublisher)(nil)
	_ orders.Health    = (*KafkaPublisher)(nil)
)

// NewKafkaPublisher returns a publisher to topic through producer.
func NewKafkaPublisher(producer *kafka.Producer, topic string, m *Metrics) *KafkaPublisher {
	return &KafkaPublisher{producer: producer, topic: topic, metrics: m}
}

// Name is "kafka".
func (p *KafkaPublisher) Name() string { return "kafka" }

// Down reports that every broker is known to be unreachable (kafka.Producer.Down).
func (p *KafkaPublisher) Down() error { return p.producer.Down() }

// Publish returns once every in-sync replica has the event, or by ctx's deadline.
func (p *KafkaPublisher) Publish(ctx context.Context, e orders.Event) error {
	enc, err := encode(e)
	if err != nil {
		return err
	}
	msg := kafka.Message{
		Topic:   p.topic,
		Key:     []byte(e.OrderPlaced.GetOrderId()),
		Value:   enc.body,
		Headers: make([]kafka.Header, len(enc.headers)),
	}
	for i, h := range enc.headers {
		msg.Headers[i] = kafka.Header{Key: h[0], Value: []byte(h[1])}
	}
	start := time.Now()
	err = p.producer.Publish(ctx, msg)
	p.metrics.observe(p.Name(), start, err)
	return err
}

// RabbitMQPublisher publishes OrderPlaced events to a RabbitMQ exchange with the routing key
// order.placed.
type RabbitMQPublisher struct {
	publisher *rabbitmq.Publisher
	exchange  string
	metrics   *Metrics
}

var (
	_ orders.Publisher = (*RabbitMQPublisher)(nil)
	_ orders.Health    = (*RabbitMQPublisher)(nil)
)

// NewRabbitMQPublisher returns a publisher to exchange through publisher.
func NewRabbitMQPublisher(publisher *rabbitmq.Publisher, exchange string, m *Metrics) *RabbitMQPublisher {
	return &RabbitMQPublisher{publisher: publisher, exchange: exchange, metrics: m}
}

// Name is "rabbitmq".
func (p *RabbitMQPublisher) Name() string { return "rabbitmq" }

// Down reports that the connection to RabbitMQ is known to be lost (rabbitmq.Publisher.Down).
func (p *RabbitMQPublisher) Down() error { return p.publisher.Down() }

// Publish returns once the broker confirmed the event, or by ctx's deadline. An event that no
// queue is bound for fails with rabbitmq.ErrUnroutable: an order nobody would be notified of is
// not placed.
func (p *RabbitMQPublisher) Publish(ctx context.Context, e orders.Event) error {
	enc, err := encode(e)
	if err != nil {
		return err
	}
	headers := make(map[string]any, len(enc.headers))
	for _, h := range enc.headers {
		headers[h[0]] = h[1]
	}
	start := time.Now()
	err = p.publisher.Publish(ctx, p.exchange, ordersv1.RoutingKey, rabbitmq.Message{
		Body:        enc.body,
		ContentType: ordersv1.ContentType,
		MessageID:   e.ID,
		Type:        ordersv1.EventTypeOrderPlaced,
		Timestamp:   e.OrderPlaced.GetPlacedAt().AsTime(),
		Headers:     headers,
	})
	p.metrics.observe(p.Name(), start, err)
	return err
}

// Topic is the declaration of the Kafka topic order-api publishes to.
func Topic(name string, partitions, replicationFactor int) kafka.TopicSpec {
	return kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: replicationFactor}
}

// Exchange is the declaration of the RabbitMQ exchange order-api publishes to: a durable topic
// exchange, as every consumer that binds to it declares it too.
func Exchange(name string) rabbitmq.Topology {
	return rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Name: name, Kind: rabbitmq.ExchangeTopic, Durable: true}}}
}
