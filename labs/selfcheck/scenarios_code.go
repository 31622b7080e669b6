package main

import (
	"context"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ackEarlyQueue is the queue the ack-early worker consumes; lab check fills it.
const ackEarlyQueue = "lab.ack-early"

// crashMessages is how many messages a crash test feeds a worker.
const crashMessages = 200

var ackEarly = scenario{
	name:  "ack-early",
	step:  3,
	needs: "the brokers (make brokers, make run or make up)",
	title: "a worker loses orders when it crashes",
	symptom: "The email worker in labs/_workspace/ack-early/main.go handles every message while it runs. " +
		"After it crashed once (kill -9) and started again, customers of most of the orders queued at " +
		"the time never got their email, and the queue was empty. `make lab ARGS='check ack-early'` " +
		"fills lab.ack-early with 200 messages, kills the worker once, and counts what was processed.",
	hints: []string{
		"After the crash the queue was empty: RabbitMQ thought every message had been handled. When does it think so?",
		"Compare the consumer with labs/examples/rabbitmq/consumer. What does the third argument of Consume mean?",
		"With automatic acknowledgement RabbitMQ forgets a message the moment it sends it, and sends as many as it can: a crash loses all of them. Acknowledge each message yourself, after the email is sent.",
		"Consume with autoAck false, call d.Ack(false) after sendEmail, and limit what is in flight with ch.Qos(prefetch, 0, false).",
	},
	inject: func(context.Context, config) error { return copyIncident("ack-early") },
	restore: func(ctx context.Context, cfg config) error {
		if err := removeIncident("ack-early"); err != nil {
			return err
		}
		return withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete(ackEarlyQueue, false, false, false)
			return err
		})
	},
	checks: func(cfg config) ([]check, func()) {
		dir, err := os.MkdirTemp("", "backend-prep-lab-")
		var bin string
		return []check{
			{
				name: "labs/_workspace/ack-early builds",
				run: func(ctx context.Context) (string, error) {
					if err != nil {
						return "", err
					}
					bin, err = buildIncident(ctx, "ack-early", dir)
					return "", err
				},
			},
			{
				name: "no message is lost when the worker crashes",
				run: func(ctx context.Context) (string, error) {
					if bin == "" {
						return "", blocked("the worker's binary")
					}
					return ackEarlyCrash(ctx, cfg, bin)
				},
				hint: "make lab ARGS='hint ack-early' gives one hint at a time",
			},
		}, func() { _ = os.RemoveAll(dir) }
	},
}

// ackEarlyCrash fills the worker's queue, runs the worker through a crash and counts what it
// processed.
func ackEarlyCrash(ctx context.Context, cfg config, bin string) (string, error) {
	err := withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclare(ackEarlyQueue, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueuePurge(ackEarlyQueue, false); err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		for i := range crashMessages {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", ackEarlyQueue, true, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent, ContentType: "text/plain", Body: fmt.Appendf(nil, "order-%03d", i),
			})
			if err != nil {
				return err
			}
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			if !ok {
				return fmt.Errorf("message %d: the broker refused it (nack)", i)
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fill %s: %w", ackEarlyQueue, err)
	}
	processed, err := survivesACrash(ctx, bin, []string{"--url", cfg.rabbitmq, "--queue", ackEarlyQueue},
		10, 0, 2*time.Second)
	if err != nil {
		return "", err
	}
	twice := 0
	for _, n := range processed {
		if n > 1 {
			twice++
		}
	}
	if lost := crashMessages - len(processed); lost > 0 {
		return "", fmt.Errorf("after one crash, %d of %d messages were never processed, and the queue is empty: "+
			"RabbitMQ had delivered them and forgotten them", lost, crashMessages)
	}
	return fmt.Sprintf("all %d processed across a crash; %d of them twice, which the email must tolerate",
		crashMessages, twice), nil
}
