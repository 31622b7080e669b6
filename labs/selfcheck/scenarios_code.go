package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
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
	inject:  func(context.Context, config) error { return copyIncident("ack-early") },
	restore: removeIncidentAndQueues("ack-early", ackEarlyQueue),
	checks:  codeChecks("ack-early", behaviour{"no message is lost when the worker crashes", ackEarlyCrash}),
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
			if err := publishConfirmed(ctx, ch, ackEarlyQueue, amqp.Publishing{
				ContentType: "text/plain", MessageId: fmt.Sprintf("order-%03d", i), Body: fmt.Appendf(nil, "order-%03d", i),
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fill %s: %w", ackEarlyQueue, err)
	}
	processed, err := survivesACrash(ctx, bin, []string{"--url", cfg.rabbitmq, "--queue", ackEarlyQueue},
		10, 0, 2*time.Second, 2*time.Second)
	if err != nil {
		return "", err
	}
	twice := processedTwice(processed)
	if lost := crashMessages - len(processed); lost > 0 {
		return "", fmt.Errorf("after one crash, %d of %d messages were never processed, and the queue is empty: "+
			"RabbitMQ had delivered them and forgotten them", lost, crashMessages)
	}
	return fmt.Sprintf("all %d processed across a crash; %d of them twice, which the email must tolerate",
		crashMessages, twice), nil
}

// commitEarlyPrefix names the topics commit-early's checks create, one per run.
const commitEarlyPrefix = "lab.commit-early."

var commitEarly = scenario{
	name:  "commit-early",
	step:  4,
	needs: "the brokers (make brokers, make run or make up)",
	title: "a dashboard misses orders after a crash",
	symptom: "The dashboard updater in labs/_workspace/commit-early/main.go reads order events from Kafka. " +
		"After it crashed once (kill -9) and started again, its totals were short of many orders, " +
		"although the consumer group's lag was 0. `make lab ARGS='check commit-early'` writes 200 " +
		"events to a topic of their own, kills the updater once, and counts what was processed.",
	hints: []string{
		"The lag was 0 after the restart: the group had committed offsets past orders it never processed. Who commits, and when?",
		"With enable.auto.commit, librdkafka commits in the background every auto.commit.interval.ms. Which offsets does it commit: the ones processed, or the ones Poll returned?",
		"By default (enable.auto.offset.store=true) an offset is stored for the next commit as soon as Poll returns its message. Here Poll hands messages to a goroutine and reads on: the offsets run ahead of the work.",
		"Set \"enable.auto.offset.store\": false and store each message's offset yourself once the dashboard was updated: c.StoreMessage(m) after updateDashboard, in the goroutine.",
	},
	inject: func(context.Context, config) error { return copyIncident("commit-early") },
	restore: func(ctx context.Context, cfg config) error {
		if err := removeIncident("commit-early"); err != nil {
			return err
		}
		return withAdmin(cfg, func(admin *kafka.AdminClient) error { return deleteTopics(ctx, admin, commitEarlyPrefix) })
	},
	checks: codeChecks("commit-early", behaviour{"no order is lost when the updater crashes", commitEarlyCrash}),
}

// behaviour is a check of a code incident's program: it runs the built binary.
type behaviour struct {
	name string
	run  func(ctx context.Context, cfg config, bin string) (string, error)
}

// codeChecks are the checks of an incident in code: the learner's copy builds, then behaves.
func codeChecks(name string, behaviours ...behaviour) func(cfg config) ([]check, func()) {
	return func(cfg config) ([]check, func()) {
		dir, err := os.MkdirTemp("", "backend-prep-lab-")
		var bin string
		checks := []check{{
			name: "labs/_workspace/" + name + " builds",
			run: func(ctx context.Context) (string, error) {
				if err != nil {
					return "", err
				}
				bin, err = buildIncident(ctx, name, dir)
				return "", err
			},
		}}
		for _, b := range behaviours {
			checks = append(checks, check{
				name: b.name,
				run: func(ctx context.Context) (string, error) {
					if bin == "" {
						return "", blocked("the program's binary")
					}
					return b.run(ctx, cfg, bin)
				},
				hint: "make lab ARGS='hint " + name + "' gives one hint at a time",
			})
		}
		return checks, func() { _ = os.RemoveAll(dir) }
	}
}

// commitEarlyCrash writes the events to a topic of their own, runs the updater through a crash
// and counts what it processed.
func commitEarlyCrash(ctx context.Context, cfg config, bin string) (string, error) {
	topic := fmt.Sprintf("%s%d", commitEarlyPrefix, time.Now().UnixNano())
	err := withAdmin(cfg, func(admin *kafka.AdminClient) error {
		// Earlier runs' topics are of no use any more.
		if err := deleteTopics(ctx, admin, commitEarlyPrefix); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		res, err := admin.CreateTopics(cctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
			kafka.SetAdminOperationTimeout(callTimeout))
		if err != nil {
			return err
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return e
		}
		return nil
	})
	if err == nil {
		err = produceEvents(ctx, cfg, topic)
	}
	if err != nil {
		return "", fmt.Errorf("prepare topic %s: %w", topic, err)
	}
	// The pause lets an automatic commit happen (every second) before the crash. The second run
	// gets its partition once the crashed member's session timed out (6 s) and the group
	// rebalanced.
	processed, err := survivesACrash(ctx, bin, []string{"--bootstrap", cfg.kafka, "--topic", topic, "--group", topic},
		10, 1500*time.Millisecond, 20*time.Second, 3*time.Second)
	if err != nil {
		return "", err
	}
	twice := processedTwice(processed)
	if lost := crashMessages - len(processed); lost > 0 {
		return "", fmt.Errorf("after one crash, %d of %d events were never processed, and the group's committed offset is past them", lost, crashMessages)
	}
	return fmt.Sprintf("all %d processed across a crash; %d of them twice, which the dashboard must tolerate", crashMessages, twice), nil
}

// produceEvents writes crashMessages events to topic, acknowledged by every in-sync replica.
func produceEvents(ctx context.Context, cfg config, topic string) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": cfg.kafka, "acks": "all", "log_level": 2})
	if err != nil {
		return err
	}
	defer p.Close()
	reports := make(chan kafka.Event, crashMessages)
	for i := range crashMessages {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value:          fmt.Appendf(nil, "order-%03d", i),
		}, reports)
		if err != nil {
			return err
		}
	}
	deadline := time.After(maxWait)
	for range crashMessages {
		select {
		case ev := <-reports:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				return m.TopicPartition.Error
			}
		case <-deadline:
			return fmt.Errorf("events not acknowledged within %s", maxWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// deleteTopics deletes every topic whose name starts with prefix.
func deleteTopics(ctx context.Context, admin *kafka.AdminClient, prefix string) error {
	md, err := admin.GetMetadata(nil, true, int(callTimeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var names []string
	for name := range md.Topics {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := admin.DeleteTopics(ctx, names, kafka.SetAdminOperationTimeout(callTimeout)); err != nil {
		return fmt.Errorf("delete topics %v: %w", names, err)
	}
	return nil
}

// The queues of poison-message: the check declares the first with the second as its
// dead-letter queue.
const (
	poisonQueue  = "lab.poison-message"
	poisonDLQ    = poisonQueue + ".dlq"
	poisonOrders = 50
)

var poisonMessage = scenario{
	name:  "poison-message",
	step:  6,
	needs: "the brokers (make brokers, make run or make up)",
	title: "one bad message stops all shipping",
	symptom: "No order has shipped for an hour; the shipping worker (labs/_workspace/poison-message/main.go) " +
		"is running, busy, and logging the same line again and again, and its queue keeps growing. " +
		"`make lab ARGS='check poison-message'` puts one unreadable message and 50 orders in " +
		"lab.poison-message and gives the worker 10 s.",
	hints: []string{
		"Which message is the worker busy with? Read its log: it is the same one every time.",
		"A message that cannot be read now will not be readable in a second either. What does Nack with requeue do with it, and where does it go in the queue?",
		"With a prefetch of 1, a requeued message comes straight back to the same worker, ahead of everything else. Take it out of the way instead: the queue has a dead-letter exchange.",
		"Reject it without requeueing: d.Nack(false, false) (or d.Reject(false)). RabbitMQ dead-letters it to lab.poison-message.dlq, where a person can look at it, and the worker moves on.",
	},
	inject:  func(context.Context, config) error { return copyIncident("poison-message") },
	restore: removeIncidentAndQueues("poison-message", poisonQueue, poisonDLQ),
	checks:  codeChecks("poison-message", behaviour{"the orders behind an unreadable message ship, and it is dead-lettered", poisonShips}),
}

func poisonShips(ctx context.Context, cfg config, bin string) (string, error) {
	err := withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
		// Declared afresh: a queue's arguments cannot change once it exists.
		if _, err := ch.QueueDelete(poisonQueue, false, false, false); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(poisonDLQ, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueuePurge(poisonDLQ, false); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(poisonQueue, true, false, false, false, amqp.Table{
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": poisonDLQ,
		}); err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		publish := func(id string, body []byte) error {
			return publishConfirmed(ctx, ch, poisonQueue, amqp.Publishing{ContentType: "application/json", MessageId: id, Body: body})
		}
		if err := publish("poison", []byte(`{"order_id": 42, "items": [`)); err != nil {
			return err
		}
		for i := range poisonOrders {
			if err := publish(fmt.Sprintf("order-%03d", i), fmt.Appendf(nil, `{"order_id":"order-%03d"}`, i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fill %s: %w", poisonQueue, err)
	}

	w, err := startWorker(ctx, bin, "--url", cfg.rabbitmq, "--queue", poisonQueue)
	if err != nil {
		return "", err
	}
	shipped := map[string]bool{}
	timeout := time.After(10 * time.Second)
wait:
	for len(shipped) < poisonOrders {
		select {
		case body, ok := <-w.lines:
			if !ok {
				break wait
			}
			shipped[body] = true
		case <-timeout:
			break wait
		}
	}
	for _, body := range w.stop(syscall.SIGTERM) {
		shipped[body] = true
	}
	if len(shipped) < poisonOrders {
		return "", fmt.Errorf("in 10 s, %d of %d orders shipped: the worker keeps getting the unreadable message back, "+
			"and nothing behind it moves", len(shipped), poisonOrders)
	}

	var dead amqp.Delivery
	var found bool
	err = withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
		var err error
		dead, found, err = ch.Get(poisonDLQ, false)
		if err != nil || !found {
			return err
		}
		return dead.Ack(false)
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("read %s: %w", poisonDLQ, err)
	case !found || dead.MessageId != "poison":
		return "", fmt.Errorf("all %d orders shipped, but the unreadable message is not in %s: it was dropped, and nobody can look at it",
			poisonOrders, poisonDLQ)
	}
	return fmt.Sprintf("all %d orders shipped; the unreadable message is in %s (x-death reason %v)",
		poisonOrders, poisonDLQ, deathReason(dead.Headers)), nil
}

// deathReason reads the reason of the first x-death entry RabbitMQ added when it dead-lettered
// a message.
func deathReason(h amqp.Table) any {
	deaths, ok := h["x-death"].([]any)
	if !ok || len(deaths) == 0 {
		return "unknown"
	}
	if d, ok := deaths[0].(amqp.Table); ok {
		return d["reason"]
	}
	return "unknown"
}

// removeIncidentAndQueues is the reset of a RabbitMQ code incident: its workspace and the
// queues its check declared go.
func removeIncidentAndQueues(name string, queues ...string) func(ctx context.Context, cfg config) error {
	return func(ctx context.Context, cfg config) error {
		if err := removeIncident(name); err != nil {
			return err
		}
		return withAMQP(ctx, cfg, func(ch *amqp.Channel) error {
			for _, q := range queues {
				if _, err := ch.QueueDelete(q, false, false, false); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// publishConfirmed publishes msg, persistent and mandatory, to queue through the default
// exchange on ch (in confirm mode), and waits for the broker's confirm.
func publishConfirmed(ctx context.Context, ch *amqp.Channel, queue string, msg amqp.Publishing) error {
	msg.DeliveryMode = amqp.Persistent
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, msg)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("message %s: %w", msg.MessageId, err)
	}
	if !ok {
		return fmt.Errorf("message %s: the broker refused it (nack)", msg.MessageId)
	}
	return nil
}

// processedTwice counts the bodies a worker processed more than once.
func processedTwice(processed map[string]int) int {
	twice := 0
	for _, n := range processed {
		if n > 1 {
			twice++
		}
	}
	return twice
}
