package ceiling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// publishTimeout bounds one publish and its confirm.
const publishTimeout = 5 * time.Second

// RabbitMQOptions configure [RabbitMQConfirm].
type RabbitMQOptions struct {
	// URL is the broker's AMQP URL, with a user that may declare and delete queues.
	URL string
	// Publishers is the number of concurrent publishers (default 1).
	Publishers int
	// Duration is how long publishers start new publishes (required).
	Duration time.Duration
	// QueueType is "quorum" (default) or "classic".
	QueueType string
	// BodySize is the size of every message body in bytes (0 is allowed).
	BodySize int
	// MeasurePID, when set, is a process (e.g. the broker's) whose CPU time over the run is
	// reported as Result.ServerCPU, read from /proc.
	MeasurePID int
}

// RabbitMQConfirm measures how many confirmed publishes per second RabbitMQ gives publishers
// that each wait for their confirm, as order-api's requests do.
//
// It declares a durable queue of o.QueueType with a unique name, opens one connection, and runs
// o.Publishers goroutines, each with a channel of its own in confirm mode: each publishes a
// persistent message of o.BodySize bytes to the queue through the default exchange, waits for
// its confirm, and publishes again, until o.Duration has passed. Every publish→confirm is one
// latency sample; Ops counts the acks, Errors the nacks. The queue is deleted afterwards, with
// the messages it collected (nothing consumes them during the run).
func RabbitMQConfirm(ctx context.Context, o RabbitMQOptions) (Result, error) {
	if o.Publishers <= 0 {
		o.Publishers = 1
	}
	if o.QueueType == "" {
		o.QueueType = "quorum"
	}
	switch {
	case o.URL == "":
		return Result{}, errors.New("ceiling: RabbitMQOptions.URL is empty")
	case o.Duration <= 0:
		return Result{}, errors.New("ceiling: RabbitMQOptions.Duration must be positive")
	case o.QueueType != "quorum" && o.QueueType != "classic":
		return Result{}, fmt.Errorf("ceiling: RabbitMQOptions.QueueType %q: want quorum or classic", o.QueueType)
	case o.BodySize < 0:
		return Result{}, errors.New("ceiling: RabbitMQOptions.BodySize is negative")
	}
	res := Result{Name: fmt.Sprintf("RabbitMQ publish+confirm, %s queue, %d publishers, %d-byte persistent messages",
		o.QueueType, o.Publishers, o.BodySize)}

	conn, err := amqp.DialConfig(o.URL, amqp.Config{
		Properties: amqp.Table{"connection_name": "ceiling.rabbitmq-confirm"},
	})
	if err != nil {
		return res, fmt.Errorf("ceiling: connect to RabbitMQ: %w", err)
	}
	defer func() { _ = conn.Close() }()

	queue := "ceiling.confirm." + o.QueueType + "." + randomSuffix()
	if testHookQueue != nil {
		testHookQueue(queue)
	}
	admin, err := conn.Channel()
	if err != nil {
		return res, fmt.Errorf("ceiling: open channel: %w", err)
	}
	if _, err := admin.QueueDeclare(queue, true, false, false, false,
		amqp.Table{"x-queue-type": o.QueueType}); err != nil {
		return res, fmt.Errorf("ceiling: declare %s queue %s: %w", o.QueueType, queue, err)
	}
	_ = admin.Close()
	defer deleteQueue(o.URL, conn, queue)

	// Every publisher's channel is ready before the clock starts.
	chans := make([]*amqp.Channel, o.Publishers)
	for i := range chans {
		ch, err := conn.Channel()
		if err != nil {
			return res, fmt.Errorf("ceiling: open channel %d: %w", i+1, err)
		}
		if err := ch.Confirm(false); err != nil {
			return res, fmt.Errorf("ceiling: confirm mode on channel %d: %w", i+1, err)
		}
		chans[i] = ch
	}
	defer func() {
		for _, ch := range chans {
			_ = ch.Close()
		}
	}()

	body := make([]byte, o.BodySize)
	_, _ = rand.Read(body)
	var (
		acks, nacks atomic.Int64
		wg          sync.WaitGroup
		errOnce     sync.Once
		firstErr    error
		samples     = make([]latencies, o.Publishers)
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu := startCPU(o.MeasurePID)
	start := time.Now()
	deadline := start.Add(o.Duration)
	for i, ch := range chans {
		wg.Go(func() {
			lat := make(latencies, 0, 4096)
			defer func() { samples[i] = lat }()
			msg := amqp.Publishing{
				ContentType:  "application/octet-stream",
				DeliveryMode: amqp.Persistent,
				Body:         body,
			}
			for time.Now().Before(deadline) && runCtx.Err() == nil {
				t0 := time.Now()
				// Each publish is bounded: a broker that stops confirming (a memory or disk
				// alarm blocks publishers) fails the measurement instead of hanging it.
				pubCtx, pubCancel := context.WithTimeout(runCtx, publishTimeout)
				ok := false
				dc, err := ch.PublishWithDeferredConfirmWithContext(pubCtx, "", queue, false, false, msg)
				if err == nil {
					ok, err = dc.WaitContext(pubCtx)
				}
				pubCancel()
				if err == nil {
					lat = append(lat, time.Since(t0))
					if ok {
						acks.Add(1)
					} else {
						nacks.Add(1)
					}
					continue
				}
				if runCtx.Err() == nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("ceiling: publisher %d: %w", i+1, err) })
					cancel()
				}
				return
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	cpu.stop()
	res.ServerCPU, res.ClientCPU = cpu.server, cpu.selfCPU
	res.Ops, res.Errors = acks.Load(), nacks.Load()
	var all latencies
	for _, s := range samples {
		all = append(all, s...)
	}
	all.fill(&res)
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("ceiling: RabbitMQ confirm run stopped early: %w", err)
	}
	if res.Ops == 0 {
		return res, errors.New("ceiling: RabbitMQ confirmed no publish")
	}
	return res, nil
}

// testHookQueue, when set, learns the name of the queue RabbitMQConfirm declares.
var testHookQueue func(name string)

// deleteQueue deletes the measurement's queue on a channel of conn, or of a new connection when
// conn is broken.
func deleteQueue(url string, conn *amqp.Connection, queue string) {
	del := func(c *amqp.Connection) error {
		ch, err := c.Channel()
		if err != nil {
			return err
		}
		defer func() { _ = ch.Close() }()
		_, err = ch.QueueDelete(queue, false, false, false)
		return err
	}
	if del(conn) == nil {
		return
	}
	if c, err := amqp.Dial(url); err == nil {
		_ = del(c)
		_ = c.Close()
	}
}

// randomSuffix is a short random string for names no other run uses.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
