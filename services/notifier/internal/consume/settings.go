// Package consume is the notifier's AMQP side: the queues and exchanges it owns, and the chain
// of handlers that turns each OrderPlaced delivery into a notification, retrying transient
// failures with a delay and parking what cannot be processed in a dead-letter queue.
//
// The path of a message:
//
//	orders ──order.placed──▶ Q ──handler──▶ ack (sent, or a duplicate)
//	                         │
//	                         ├─ transient failure, attempts left: publish to X.retry [wait.<delay>]
//	                         │     ──▶ Q.retry.<delay> (TTL = delay) ──expired──▶ X.retry [ready] ──▶ Q
//	                         ├─ malformed, or the last attempt failed: publish to X.dlx ──▶ Q.dlq
//	                         └─ rejected by the broker's safety nets (delivery limit) ──DLX──▶ Q.dlq
//
// where Q is the work queue (notifier.order-placed) and X stands for the same prefix.
package consume

import (
	"errors"
	"fmt"
	"time"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

// DeliveryLimit is the x-delivery-limit of the work queue: how many times the broker hands out
// a message that comes back unacknowledged (a consumer died holding it, or a publish of the
// retry path failed) before dead-lettering it. RabbitMQ 4 defaults to 20; 3.x has no default,
// so it is set explicitly to behave the same on both. It is no retry budget: failed attempts
// are counted by the attempts header, against Settings.MaxAttempts.
const DeliveryLimit = 20

// readyKey routes messages whose retry delay expired back to the work queue.
const readyKey = "ready"

// Settings name the broker objects the notifier owns and say how failures are retried.
type Settings struct {
	// Exchange and RoutingKey are where OrderPlaced events are published
	// (ordersv1.Exchange, ordersv1.RoutingKey).
	Exchange   string
	RoutingKey string
	// Queue is the work queue; the retry and dead-letter exchanges and queues are named after it.
	Queue string
	// RetryDelay is how long a message waits before its next attempt.
	RetryDelay time.Duration
	// MaxAttempts bounds the attempts per message; after the last one fails, it is dead-lettered.
	MaxAttempts int
	// QueueType is the type of the notifier's queues: quorum (the default, when empty) or
	// classic, which keeps no replica and lacks the quorum queue's safety nets (see Topology).
	QueueType rabbitmq.QueueType
}

// queueType is QueueType with its default.
func (s Settings) queueType() rabbitmq.QueueType {
	if s.QueueType == "" {
		return rabbitmq.QueueQuorum
	}
	return s.QueueType
}

// RetryExchange routes failed messages into the delay queue and, once delayed, back to Queue.
func (s Settings) RetryExchange() string { return s.Queue + ".retry" }

// RetryQueue holds messages for RetryDelay. The delay is part of its name because a queue's TTL
// cannot change once declared: a new delay gets a new queue, and the old one drains.
func (s Settings) RetryQueue() string { return s.Queue + ".retry." + s.RetryDelay.String() }

// DeadLetterExchange receives what is given up on, and routes it to DeadLetterQueue.
func (s Settings) DeadLetterExchange() string { return s.Queue + ".dlx" }

// DeadLetterQueue keeps what is given up on, for a person to look at.
func (s Settings) DeadLetterQueue() string { return s.Queue + ".dlq" }

// retryKey routes into the delay queue of this RetryDelay only.
func (s Settings) retryKey() string { return "wait." + s.RetryDelay.String() }

// Validate reports settings the topology cannot be built from.
func (s Settings) Validate() error {
	var errs []error
	if s.Exchange == "" || s.RoutingKey == "" || s.Queue == "" {
		errs = append(errs, errors.New("exchange, routing key and queue are required"))
	}
	if s.RetryDelay < time.Millisecond || s.RetryDelay%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("retry delay must be a whole number of milliseconds, at least 1ms, got %s", s.RetryDelay))
	}
	if s.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts must be at least 1, got %d", s.MaxAttempts))
	}
	if t := s.queueType(); t != rabbitmq.QueueQuorum && t != rabbitmq.QueueClassic {
		errs = append(errs, fmt.Errorf("queue type must be quorum or classic, got %q", t))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	return nil
}

// SourceTopology is the exchange the notifier consumes from, with the properties its owner,
// order-api, declares it with. The notifier declares it too when its RabbitMQ user may (see
// DeclareTopology), so that either service may start first; with a user of its own, which may
// bind to the exchange but not declare it, the exchange must exist already (the platform
// declares it: the cluster's definitions, scripts/brokers).
func (s Settings) SourceTopology() rabbitmq.Topology {
	return rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Name: s.Exchange, Kind: rabbitmq.ExchangeTopic, Durable: true}}}
}

// Topology is what the notifier owns and declares on every (re)connect, and its binding to the
// exchange of SourceTopology. Every name starts with Queue, which is what the notifier's RabbitMQ
// user may configure ("notifier." by default).
//
// Every queue is a quorum queue (unless QueueType says classic): replicated, and durable like
// the persistent messages in it.
// Dead-lettering between them is at-least-once (x-dead-letter-strategy, which needs
// x-overflow=reject-publish): the broker keeps a message until the target queue confirmed it,
// instead of dropping it when the target is briefly unavailable. Both work on RabbitMQ 3.10+.
//
// With QueueType classic (NOTIFIER_QUEUE_TYPE=classic, for comparing the two) the queues are
// classic ones, which support neither: dead-lettering is at-most-once and no delivery limit
// stops a message that kills every consumer it reaches.
func (s Settings) Topology() rabbitmq.Topology {
	qt := s.queueType()
	atLeastOnce := func(extra map[string]any) map[string]any {
		if qt != rabbitmq.QueueQuorum {
			return nil
		}
		args := map[string]any{"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
		for k, v := range extra {
			args[k] = v
		}
		return args
	}
	return rabbitmq.Topology{
		Exchanges: []rabbitmq.Exchange{
			{Name: s.RetryExchange(), Kind: rabbitmq.ExchangeDirect, Durable: true},
			{Name: s.DeadLetterExchange(), Kind: rabbitmq.ExchangeFanout, Durable: true},
		},
		Queues: []rabbitmq.Queue{
			{
				Name: s.Queue, Type: qt, Durable: true,
				DeadLetterExchange: s.DeadLetterExchange(),
				Args:               atLeastOnce(map[string]any{"x-delivery-limit": int64(DeliveryLimit)}),
			},
			{
				Name: s.RetryQueue(), Type: qt, Durable: true,
				MessageTTL:           s.RetryDelay,
				DeadLetterExchange:   s.RetryExchange(),
				DeadLetterRoutingKey: readyKey,
				Args:                 atLeastOnce(nil),
			},
			{Name: s.DeadLetterQueue(), Type: qt, Durable: true},
		},
		Bindings: []rabbitmq.Binding{
			{Queue: s.Queue, Exchange: s.Exchange, RoutingKey: s.RoutingKey},
			{Queue: s.Queue, Exchange: s.RetryExchange(), RoutingKey: readyKey},
			{Queue: s.RetryQueue(), Exchange: s.RetryExchange(), RoutingKey: s.retryKey()},
			{Queue: s.DeadLetterQueue(), Exchange: s.DeadLetterExchange()},
		},
	}
}
