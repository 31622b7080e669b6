// Command consumer receives messages from a RabbitMQ queue and prints them: the learning path's
// `pika` consumer in Go, with manual acknowledgements (a message is removed from the queue only
// after it was handled) and a clean stop on Ctrl-C.
//
//	go run ./labs/examples/rabbitmq/consumer                          # queue hello, until Ctrl-C
//	go run ./labs/examples/rabbitmq/consumer --max 1 --timeout 30s
//	go run ./labs/examples/rabbitmq/consumer --queue news-a --exchange news --kind fanout
//	go run ./labs/examples/rabbitmq/consumer --queue my-orders --exchange orders --kind topic --binding-key 'order.*'
//	go run ./labs/examples/rabbitmq/consumer --queue notifier.order-placed.dlq --max 1 --headers
//	go run ./labs/examples/rabbitmq/consumer --queue small --prefetch 1 --reject --requeue --max 3 --timeout 5s
//
// With --exchange it declares that exchange and binds its queue to it: the way to add a second
// queue next to the notifier's, fed by the same exchange. The notifier is this program grown
// up: services/notifier, on libs/rabbitmq.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", envOr("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"), "AMQP URL (env RABBITMQ_URL)")
	queue := flag.String("queue", "hello", "queue to declare and consume")
	exchange := flag.String("exchange", "", "exchange to declare and bind the queue to; empty: no binding")
	kind := flag.String("kind", amqp.ExchangeDirect, "kind of --exchange: direct, topic or fanout")
	bindingKey := flag.String("binding-key", "", "binding key: the routing key (direct) or pattern (topic, e.g. 'order.*') to receive; fanout ignores it")
	maxMessages := flag.Int("max", 0, "stop after this many messages; 0: no limit")
	timeout := flag.Duration("timeout", 0, "stop after this long; 0: run until Ctrl-C")
	headers := flag.Bool("headers", false, "print each message's headers too (x-death, the notifier's notifier-*)")
	prefetch := flag.Int("prefetch", 10, "how many unacknowledged messages the broker may hand this consumer at once")
	reject := flag.Bool("reject", false, "refuse each message as failed (basic.reject) instead of acknowledging it")
	nack := flag.Bool("nack", false, "hand each message back without calling it failed (basic.nack) instead of acknowledging it")
	requeue := flag.Bool("requeue", false, "with --reject or --nack: ask the broker to put the message back in the queue")
	quiet := flag.Bool("quiet", false, "print no line per message: only, at the end, how many, how fast and how many were redelivered")
	flag.Parse()
	if *reject && *nack {
		return errors.New("--reject or --nack, not both")
	}
	if *requeue && !*reject && !*nack {
		return errors.New("--requeue needs --reject or --nack: an acknowledged message is gone")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	conn, err := amqp.DialConfig(*url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// amqp091-go's methods take no context: closing the connection when ctx ends makes any of
	// them that still waits for the broker return.
	stopClosing := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopClosing()
	ch, q, err := openQueue(conn, *queue)
	if err != nil {
		return err
	}
	if *exchange != "" {
		// Same properties as the producer's declaration, or the broker refuses it.
		if err := ch.ExchangeDeclare(*exchange, *kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare %s exchange %s: %w", *kind, *exchange, err)
		}
		if err := ch.QueueBind(q.Name, *bindingKey, *exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to exchange %s: %w", q.Name, *exchange, err)
		}
	}

	// Prefetch: the broker hands this consumer at most --prefetch unacknowledged messages at a
	// time; the rest wait in the queue for it or for another consumer of the same queue.
	if err := ch.Qos(*prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	// autoAck false: each message stays in the queue, invisible to others, until acknowledged.
	// If this program dies before acking, the broker delivers the message again.
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", q.Name, err)
	}
	fmt.Printf("waiting for messages on queue %s, %d already there (Ctrl-C to stop)\n", q.Name, q.Messages)

	received, redelivered := 0, 0
	var first time.Time // when the first message arrived
	summary := func() string {
		s := fmt.Sprintf("stopping after %d message(s)", received)
		if *quiet && received > 0 {
			elapsed := time.Since(first)
			s += fmt.Sprintf(": %d redelivered, %.0f/s over %s", redelivered, float64(received)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
		}
		return s
	}
	for *maxMessages == 0 || received < *maxMessages {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && *maxMessages > 0 {
				return fmt.Errorf("--timeout passed after %d of %d message(s)", received, *maxMessages)
			}
			fmt.Println(summary())
			return nil
		case d, ok := <-deliveries:
			if !ok && ctx.Err() != nil {
				deliveries = nil // stopping: the case above reports it
				continue
			}
			if !ok {
				return fmt.Errorf("the broker closed the delivery stream after %d message(s)", received)
			}
			if received == 0 {
				first = time.Now()
			}
			received++
			if d.Redelivered {
				redelivered++
			}
			if !*quiet {
				fmt.Printf("received %q (exchange %q, routing key %q, redelivered %v)\n",
					d.Body, d.Exchange, d.RoutingKey, d.Redelivered)
			}
			if *headers && !*quiet {
				printHeaders(d.Headers)
			}
			// While stopping, the connection may be closed already: the broker then delivers the
			// unacknowledged message again, to whoever consumes the queue next.
			// Refused without requeue, the broker dead-letters the message (to the queue's
			// x-dead-letter-exchange) or, without one, drops it. From RabbitMQ 4.3 a quorum queue
			// counts a reject as a failed delivery (x-delivery-count, towards x-delivery-limit)
			// and a nack not; before, it counted both.
			switch {
			case *reject:
				if err := d.Reject(*requeue); err != nil && ctx.Err() == nil {
					return fmt.Errorf("reject: %w", err)
				}
				if !*quiet {
					fmt.Printf("  rejected, requeue %v\n", *requeue)
				}
				continue
			case *nack:
				if err := d.Nack(false, *requeue); err != nil && ctx.Err() == nil {
					return fmt.Errorf("nack: %w", err)
				}
				if !*quiet {
					fmt.Printf("  nacked, requeue %v\n", *requeue)
				}
				continue
			}
			if err := d.Ack(false); err != nil && ctx.Err() == nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
	// Closing the connection (deferred) cancels the subscription; messages prefetched but not
	// acknowledged go back to the queue.
	fmt.Println(summary())
	return nil
}

// openQueue returns a channel and the queue to consume. The consumer owns its queue: it
// declares a missing one, so the program works whether it or the producer starts first. An
// existing queue is used as it is — the notifier's are quorum queues, and declaring one again
// without its x-queue-type argument would be refused (PRECONDITION_FAILED).
func openQueue(conn *amqp.Connection, name string) (*amqp.Channel, amqp.Queue, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, amqp.Queue{}, fmt.Errorf("open a channel: %w", err)
	}
	// A passive declaration only asks whether the queue exists.
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err == nil {
		return ch, q, nil
	}
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		return nil, amqp.Queue{}, fmt.Errorf("look up queue %s: %w", name, err)
	}
	// NOT_FOUND is a channel error: the broker closed that channel.
	if ch, err = conn.Channel(); err != nil {
		return nil, amqp.Queue{}, fmt.Errorf("open a channel: %w", err)
	}
	// Durable: the queue survives a broker restart.
	if q, err = ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		return nil, amqp.Queue{}, fmt.Errorf("declare queue %s: %w", name, err)
	}
	return ch, q, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// printHeaders prints a message's headers, one per line, sorted by name. x-death, which RabbitMQ
// adds each time it dead-letters a message, is a list of tables: one per queue and reason, with
// a count of how often.
func printHeaders(h amqp.Table) {
	if len(h) == 0 {
		fmt.Println("  (no headers)")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Printf("  %s: %s\n", k, formatValue(h[k]))
	}
}

// formatValue writes a header value the way Go would spell it: strings quoted, tables as
// {name: value, …} sorted by name, lists as [a, b], timestamps in UTC.
func formatValue(v any) string {
	switch v := v.(type) {
	case amqp.Table:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+": "+formatValue(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return strconv.Quote(v)
	case []byte:
		return strconv.Quote(string(v))
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	default:
		return fmt.Sprint(v)
	}
}
