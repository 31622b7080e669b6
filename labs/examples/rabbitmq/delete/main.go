// Command delete removes queues and exchanges from RabbitMQ by name: the clean-up after an
// exercise. rabbitmqctl can delete a queue (delete_queue) but not an exchange; an AMQP client
// can do both, and this is one.
//
//	go run ./labs/examples/rabbitmq/delete --queue news-a --queue news-b --exchange news
//
// By default it deletes only what nobody uses: a queue with no consumer (asked first: quorum
// queues do not implement AMQP's if-unused), an exchange with no queue bound to it (if-unused). Queues go first, so that an exchange whose only bindings
// were theirs is unused by the time its turn comes. A queue is deleted with the messages in it;
// the broker says how many. A queue that does not exist is reported as such; RabbitMQ answers the
// deletion of an exchange that does not exist with the same delete-ok as any other.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// names is a flag that may be given several times.
type names []string

func (n *names) String() string { return strings.Join(*n, ",") }

func (n *names) Set(v string) error {
	if v == "" {
		return errors.New("a name cannot be empty")
	}
	*n = append(*n, v)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "delete:", err)
		os.Exit(1)
	}
}

func run() error {
	var queues, exchanges names
	url := flag.String("url", envOr("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"), "AMQP URL (env RABBITMQ_URL)")
	flag.Var(&queues, "queue", "a queue to delete (repeatable)")
	flag.Var(&exchanges, "exchange", "an exchange to delete (repeatable)")
	ifUnused := flag.Bool("if-unused", true, "delete only a queue without consumers and an exchange without bindings")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for the whole run")
	flag.Parse()
	if len(queues)+len(exchanges) == 0 {
		return errors.New("nothing to delete: name it with --queue and --exchange")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	conn, err := amqp.DialConfig(*url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// amqp091-go's methods take no context: closing the connection when ctx ends makes a call
	// that still waits for the broker return with an error.
	stopClosing := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopClosing()

	// A refusal (in use, not found) closes the channel it came on: each deletion gets its own,
	// and one refusal does not stop the others.
	var failed []error
	for _, q := range queues {
		err := onChannel(conn, func(ch *amqp.Channel) error {
			// Quorum queues refuse if-unused on delete (540 NOT_IMPLEMENTED): ask for the
			// consumers first, with a passive declaration, and delete unconditionally.
			info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			var amqpErr *amqp.Error
			if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
				fmt.Printf("no queue %q: nothing to delete\n", q)
				return nil
			}
			if err != nil {
				return err
			}
			if *ifUnused && info.Consumers > 0 {
				return fmt.Errorf("in use by %d consumer(s); stop them first (or --if-unused=false)", info.Consumers)
			}
			n, err := ch.QueueDelete(q, false, false, false)
			if err != nil {
				return err
			}
			fmt.Printf("deleted queue %q, and the %d message(s) in it\n", q, n)
			return nil
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("queue %q: %w", q, err))
		}
	}
	for _, x := range exchanges {
		err := onChannel(conn, func(ch *amqp.Channel) error {
			if err := ch.ExchangeDelete(x, *ifUnused, false); err != nil {
				return err
			}
			fmt.Printf("deleted exchange %q\n", x)
			return nil
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("exchange %q: %w", x, err))
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("gave up: %w", ctx.Err())
	}
	return errors.Join(failed...)
}

// onChannel runs op on a channel of its own and closes it.
func onChannel(conn *amqp.Connection, op func(ch *amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close() //nolint:errcheck // after a refusal the broker has closed it already
	return op(ch)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
