package rabbitmq

import (
	"errors"
	"fmt"
	"maps"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Exchange kinds understood by RabbitMQ without plugins.
const (
	ExchangeDirect  = amqp.ExchangeDirect
	ExchangeFanout  = amqp.ExchangeFanout
	ExchangeTopic   = amqp.ExchangeTopic
	ExchangeHeaders = amqp.ExchangeHeaders
)

// QueueType selects the queue implementation (the x-queue-type argument).
type QueueType string

// Queue types available on RabbitMQ 3.10 and 4.x alike.
const (
	// QueueClassic is the broker default: a single-node queue.
	QueueClassic QueueType = "classic"
	// QueueQuorum is a replicated, durable queue (Raft); the right default for work queues.
	QueueQuorum QueueType = "quorum"
)

// Topology is a set of exchanges, queues and bindings that a service owns. It is declared as a
// whole, in that order, on every (re)connect: declaring what already exists with the same
// properties is a no-op, declaring it with different ones fails with PRECONDITION_FAILED.
//
// A binding fails when its exchange does not exist yet, and services start in any order: so a
// consumer lists the exchange it binds to as well, with the same properties as its owner
// declares it.
type Topology struct {
	Exchanges []Exchange
	Queues    []Queue
	Bindings  []Binding
}

// Exchange describes an exchange to declare.
type Exchange struct {
	Name string
	// Kind is one of ExchangeDirect, ExchangeFanout, ExchangeTopic or ExchangeHeaders.
	Kind string
	// Durable exchanges survive a broker restart.
	Durable    bool
	AutoDelete bool
	// Internal exchanges accept messages only from other exchanges.
	Internal bool
	Args     map[string]any
}

// Queue describes a queue to declare.
type Queue struct {
	Name string
	// Type defaults to the broker's default (classic).
	Type QueueType
	// Durable queues survive a broker restart; quorum queues must be durable.
	Durable bool
	// Exclusive and AutoDelete make the queue die with its connection or last consumer; quorum
	// queues support neither.
	Exclusive  bool
	AutoDelete bool
	// DeadLetterExchange receives the messages this queue rejects, expires or drops
	// (x-dead-letter-exchange).
	DeadLetterExchange string
	// DeadLetterRoutingKey replaces the routing key of dead-lettered messages
	// (x-dead-letter-routing-key); empty keeps the original one.
	DeadLetterRoutingKey string
	// MessageTTL expires messages that waited longer (x-message-ttl, whole milliseconds); zero
	// keeps them forever. With a dead-letter exchange it makes a delay queue for retries.
	MessageTTL time.Duration
	// Args holds further x-arguments (for example "x-delivery-limit" or "x-max-length"); the
	// typed fields above take precedence over the same keys here.
	Args map[string]any
}

// Binding routes messages from an exchange to a queue.
type Binding struct {
	Queue      string
	Exchange   string
	RoutingKey string
	Args       map[string]any
}

// Validate rejects declarations that the broker would refuse or that cannot work, before any
// network call.
func (t Topology) Validate() error {
	var errs []error
	for _, e := range t.Exchanges {
		switch {
		case e.Name == "":
			errs = append(errs, errors.New("exchange: name is required (the default exchange cannot be declared)"))
		case e.Kind != ExchangeDirect && e.Kind != ExchangeFanout && e.Kind != ExchangeTopic && e.Kind != ExchangeHeaders:
			errs = append(errs, fmt.Errorf("exchange %q: unknown kind %q", e.Name, e.Kind))
		}
		if err := amqp.Table(e.Args).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("exchange %q: args: %w", e.Name, err))
		}
	}
	for _, q := range t.Queues {
		if q.Name == "" {
			errs = append(errs, errors.New("queue: name is required (server-named queues do not survive a reconnect)"))
			continue
		}
		switch q.Type {
		case "", QueueClassic:
		case QueueQuorum:
			if !q.Durable || q.Exclusive || q.AutoDelete {
				errs = append(errs, fmt.Errorf("queue %q: a quorum queue must be durable, not exclusive, not auto-delete", q.Name))
			}
		default:
			errs = append(errs, fmt.Errorf("queue %q: unknown type %q", q.Name, q.Type))
		}
		if q.MessageTTL < 0 || q.MessageTTL%time.Millisecond != 0 {
			errs = append(errs, fmt.Errorf("queue %q: message TTL must be a non-negative number of milliseconds, got %s", q.Name, q.MessageTTL))
		}
		if q.DeadLetterRoutingKey != "" && q.DeadLetterExchange == "" {
			errs = append(errs, fmt.Errorf("queue %q: a dead-letter routing key needs a dead-letter exchange", q.Name))
		}
		if err := amqp.Table(q.Args).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("queue %q: args: %w", q.Name, err))
		}
	}
	for _, b := range t.Bindings {
		if b.Queue == "" || b.Exchange == "" {
			errs = append(errs, fmt.Errorf("binding %q -> %q: queue and exchange are required", b.Exchange, b.Queue))
		}
		if err := amqp.Table(b.Args).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("binding %q -> %q: args: %w", b.Exchange, b.Queue, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rabbitmq: invalid topology: %w", err)
	}
	return nil
}

// arguments returns the x-arguments of the queue declaration.
func (q Queue) arguments() amqp.Table {
	args := amqp.Table{}
	maps.Copy(args, q.Args)
	if q.Type != "" {
		args["x-queue-type"] = string(q.Type)
	}
	if q.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = q.DeadLetterExchange
	}
	if q.DeadLetterRoutingKey != "" {
		args["x-dead-letter-routing-key"] = q.DeadLetterRoutingKey
	}
	if q.MessageTTL > 0 {
		args["x-message-ttl"] = q.MessageTTL.Milliseconds()
	}
	if len(args) == 0 {
		return nil
	}
	return args
}

// declare runs the declarations on ch. The first failure closes ch (a channel exception), so
// it stops there.
func (t Topology) declare(ch *amqp.Channel) error {
	for _, e := range t.Exchanges {
		if err := ch.ExchangeDeclare(e.Name, e.Kind, e.Durable, e.AutoDelete, e.Internal, false, amqp.Table(e.Args)); err != nil {
			return fmt.Errorf("declare exchange %q: %w", e.Name, err)
		}
	}
	for _, q := range t.Queues {
		if _, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, q.arguments()); err != nil {
			return fmt.Errorf("declare queue %q: %w", q.Name, err)
		}
	}
	for _, b := range t.Bindings {
		if err := ch.QueueBind(b.Queue, b.RoutingKey, b.Exchange, false, amqp.Table(b.Args)); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q with key %q: %w", b.Queue, b.Exchange, b.RoutingKey, err)
		}
	}
	return nil
}

// mergeTopologies puts several topologies into one, so that every exchange is declared before
// any binding that needs it, whichever topology lists the binding.
func mergeTopologies(ts ...Topology) Topology {
	var all Topology
	for _, t := range ts {
		all.Exchanges = append(all.Exchanges, t.Exchanges...)
		all.Queues = append(all.Queues, t.Queues...)
		all.Bindings = append(all.Bindings, t.Bindings...)
	}
	return all
}
