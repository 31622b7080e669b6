// Command producer publishes messages to RabbitMQ: the learning path's `pika` producer in Go,
// with what real code adds — a deadline on everything, persistent messages and publisher
// confirms, so "sent" means "the broker has it".
//
//	go run ./labs/examples/rabbitmq/producer                        # "Hello RabbitMQ!" to queue hello
//	go run ./labs/examples/rabbitmq/producer --count 5 --body hi
//	go run ./labs/examples/rabbitmq/producer --exchange news --kind fanout
//	go run ./labs/examples/rabbitmq/producer --queue small --queue-arg x-max-length=3 --queue-arg x-overflow=reject-publish --count 5
//
// Without --exchange it declares the queue and publishes through the default exchange, which
// routes a message to the queue named by its routing key — exactly what the Python snippet does.
// With --exchange it declares that exchange and publishes to it; the consumers declare and bind
// their own queues (see ../consumer). --queue-arg gives a queue it declares its arguments (a
// length limit, a queue type); a queue that exists keeps the ones it was declared with. A message
// the broker refuses (a nack: a full queue that rejects publishes) is reported, and the others are
// still sent. The services do the same with a connection that survives
// broker restarts: libs/rabbitmq.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", envOr("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"), "AMQP URL (env RABBITMQ_URL)")
	queue := flag.String("queue", "hello", "queue to declare and publish to, when no --exchange is given")
	exchange := flag.String("exchange", "", "exchange to declare and publish to; empty means the default exchange")
	kind := flag.String("kind", amqp.ExchangeDirect, "kind of --exchange: direct, topic or fanout")
	routingKey := flag.String("routing-key", "", "routing key; defaults to --queue when publishing to the default exchange")
	body := flag.String("body", "Hello RabbitMQ!", "message body")
	count := flag.Int("count", 1, "number of messages to publish")
	queueArgs := amqp.Table{}
	flag.Func("queue-arg", "name=value: an argument of the queue, when it declares it (repeatable; e.g. x-max-length=3, x-overflow=reject-publish, x-queue-type=quorum)",
		func(v string) error { return setArg(queueArgs, v) })
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for the whole run")
	flag.Parse()

	// One context carries both the deadline and Ctrl-C: every blocking step below gives up when
	// it ends.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// DefaultDial bounds the TCP connect and the AMQP handshake.
	conn, err := amqp.DialConfig(*url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close() // closes the channel too
	// amqp091-go's methods take no context. Closing the connection when ctx ends (deadline or
	// Ctrl-C) makes any of them that still waits for the broker return with an error.
	stopClosing := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopClosing()

	// A channel is a lightweight session inside the TCP connection; AMQP work happens on channels.
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	// Confirm mode: the broker acknowledges every message once it has taken responsibility
	// for it (stored it in every queue it was routed to).
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("enable publisher confirms: %w", err)
	}
	// A mandatory message that no queue is bound for comes back here instead of vanishing.
	returns := ch.NotifyReturn(make(chan amqp.Return, *count))

	key := *routingKey
	if *exchange == "" {
		// Declaring is idempotent: it creates the queue unless it exists with the same
		// properties. Durable: the queue survives a broker restart. An existing queue with other
		// properties (a quorum queue) is refused, so ask first, with a passive declaration, on
		// a channel of its own: a NOT_FOUND answer closes the channel it came on.
		q, err := queueInfo(conn, *queue, queueArgs)
		if err != nil {
			return err
		}
		fmt.Printf("queue %s: %d message(s) waiting, %d consumer(s)\n", q.Name, q.Messages, q.Consumers)
		if key == "" {
			key = q.Name
		}
	} else {
		// The publisher owns its exchange; queues are the consumers' business.
		if err := ch.ExchangeDeclare(*exchange, *kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare %s exchange %s: %w", *kind, *exchange, err)
		}
	}

	refused := 0
	for i := 1; i <= *count; i++ {
		msg := *body
		if *count > 1 {
			msg = fmt.Sprintf("%s #%d", *body, i)
		}
		err := publish(ctx, ch, returns, *exchange, key, msg)
		if errors.Is(err, errNacked) {
			refused++
			fmt.Printf("sent %q to exchange %q with routing key %q: refused (nack): the broker did not store it\n", msg, *exchange, key)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("sent %q to exchange %q with routing key %q: confirmed\n", msg, *exchange, key)
	}
	if refused > 0 {
		return fmt.Errorf("the broker refused %d of %d message(s)", refused, *count)
	}
	return nil
}

// errNacked is a publish the broker confirmed negatively: it did not take the message.
var errNacked = errors.New("the broker refused the message (nack)")

// setArg parses name=value into args: a whole number becomes an integer (RabbitMQ wants numbers
// for limits and lengths), anything else a string.
func setArg(args amqp.Table, v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want name=value", v)
	}
	if n, err := strconv.ParseInt(value, 10, 32); err == nil {
		args[name] = int32(n)
		return nil
	}
	args[name] = value
	return nil
}

// publish sends one persistent, mandatory message and waits for the broker's confirm.
func publish(ctx context.Context, ch *amqp.Channel, returns <-chan amqp.Return, exchange, key, body string) error {
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key,
		true,  // mandatory: return the message if no queue is bound for it
		false, // immediate: not supported by RabbitMQ
		amqp.Publishing{
			ContentType:  "text/plain",
			DeliveryMode: amqp.Persistent, // written to disk in a durable queue
			Timestamp:    time.Now().UTC(),
			Body:         []byte(body),
		})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("wait for the confirm: %w", err)
	}
	if !acked {
		return errNacked
	}
	// The broker sends a return before the confirm of the same message, so it is here by now.
	select {
	case r := <-returns:
		return fmt.Errorf("no queue is bound to exchange %q for routing key %q: the broker returned the message (%d %s)",
			r.Exchange, r.RoutingKey, r.ReplyCode, r.ReplyText)
	default:
		return nil
	}
}

// queueInfo returns the queue's message and consumer counts, declaring it with args when it is
// missing.
func queueInfo(conn *amqp.Connection, name string, args amqp.Table) (amqp.Queue, error) {
	ch, err := conn.Channel()
	if err != nil {
		return amqp.Queue{}, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return declareQueue(conn, name, args)
	}
	if err != nil {
		return amqp.Queue{}, fmt.Errorf("look up queue %s: %w", name, err)
	}
	return q, nil
}

func declareQueue(conn *amqp.Connection, name string, args amqp.Table) (amqp.Queue, error) {
	ch, err := conn.Channel()
	if err != nil {
		return amqp.Queue{}, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare(name, true, false, false, false, args)
	if err != nil {
		return amqp.Queue{}, fmt.Errorf("declare queue %s: %w", name, err)
	}
	return q, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
