package rabbitmq

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by a Connection, Publisher or Consumer that its owner closed.
	ErrClosed = errors.New("rabbitmq: closed")

	// ErrNotConnected means no connection to the broker was available before the context
	// expired. Nothing was sent: retrying is safe.
	ErrNotConnected = errors.New("rabbitmq: not connected to the broker")

	// ErrUnconfirmed means a message was sent but its confirm never came: the channel or the
	// connection closed, or the context expired, first. The broker may or may not have the
	// message; a retry may duplicate it, which consumers absorb by deduplicating.
	ErrUnconfirmed = errors.New("rabbitmq: publish not confirmed")

	// ErrNacked means the broker refused responsibility for a message (basic.nack), for example
	// because a queue rejects publishes when full. Retrying later may succeed.
	ErrNacked = errors.New("rabbitmq: publish nacked by the broker")

	// ErrUnroutable means a mandatory message matched no queue and the broker returned it
	// (basic.return). A retry fails the same way until a queue is bound for it. Use errors.As
	// with *UnroutableError for the broker's reply.
	ErrUnroutable = errors.New("rabbitmq: message unroutable")
)

// UnroutableError is the broker's basic.return for a mandatory message that no queue took.
type UnroutableError struct {
	Exchange   string
	RoutingKey string
	ReplyCode  uint16
	ReplyText  string
}

func (e *UnroutableError) Error() string {
	return fmt.Sprintf("rabbitmq: message to exchange %q with routing key %q returned: %d %s",
		e.Exchange, e.RoutingKey, e.ReplyCode, e.ReplyText)
}

// Unwrap makes errors.Is(err, ErrUnroutable) hold.
func (e *UnroutableError) Unwrap() error { return ErrUnroutable }
