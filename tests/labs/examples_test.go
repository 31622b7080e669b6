package labs_test

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// The example programs of labs/examples, run as a learner runs them, against the real brokers.

func TestRabbitMQExamples(t *testing.T) {
	amqpURL := brokertest.RabbitMQURL(t)

	t.Run("a message published to a queue reaches its consumer", func(t *testing.T) {
		queue := brokertest.UniqueName(t, "labs.hello")
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, []string{queue}, nil) })
		body := "Hello RabbitMQ! " + stack.UniqueSuffix()

		r := run(t, 30*time.Second, "rabbitmq-producer", "--url", amqpURL, "--queue", queue, "--body", body)
		require.Equal(t, 0, r.code, r.output)
		assert.Contains(t, r.output, "confirmed")

		r = run(t, 60*time.Second, "rabbitmq-consumer", "--url", amqpURL, "--queue", queue, "--max", "1", "--timeout", "30s")
		require.Equal(t, 0, r.code, r.output)
		assert.Contains(t, r.output, `received "`+body+`"`)
	})

	t.Run("a fanout exchange copies a message to every bound queue", func(t *testing.T) {
		exchange := brokertest.UniqueName(t, "labs.news")
		queues := []string{exchange + ".a", exchange + ".b"}
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, queues, []string{exchange}) })
		body := "extra! " + stack.UniqueSuffix()

		var consumers []*stack.Proc
		for _, q := range queues {
			c := start(t, "rabbitmq-consumer", "--url", amqpURL, "--queue", q,
				"--exchange", exchange, "--kind", "fanout", "--max", "1", "--timeout", "60s")
			c.WaitForOutput(t, "waiting for messages", 30*time.Second)
			consumers = append(consumers, c)
		}
		r := run(t, 30*time.Second, "rabbitmq-producer", "--url", amqpURL, "--exchange", exchange, "--kind", "fanout", "--body", body)
		require.Equal(t, 0, r.code, r.output)
		for _, c := range consumers {
			require.Equal(t, 0, c.Wait(t, 30*time.Second), c.Output())
			assert.Contains(t, c.Output(), `received "`+body+`"`)
		}
	})

	t.Run("delete removes queues, then exchanges, and only what nobody uses", func(t *testing.T) {
		exchange := brokertest.UniqueName(t, "labs.cleanup")
		queue := exchange + ".q"
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, []string{queue}, []string{exchange}) })
		ch := amqpChannel(t, amqpURL)
		require.NoError(t, ch.ExchangeDeclare(exchange, amqp.ExchangeFanout, true, false, false, false, nil))
		_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(queue, "", exchange, false, nil))
		r := run(t, 30*time.Second, "rabbitmq-producer", "--url", amqpURL, "--exchange", exchange, "--kind", "fanout")
		require.Equal(t, 0, r.code, r.output)

		// A queue is bound to it: the exchange is in use, and stays.
		r = run(t, 30*time.Second, "rabbitmq-delete", "--url", amqpURL, "--exchange", exchange)
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, `delete: exchange "`+exchange+`": Exception (406) Reason: "PRECONDITION_FAILED`)

		r = run(t, 30*time.Second, "rabbitmq-delete", "--url", amqpURL, "--queue", queue, "--exchange", exchange)
		require.Equal(t, 0, r.code, r.output)
		assert.Equal(t, `deleted queue "`+queue+`", and the 1 message(s) in it`+"\n"+`deleted exchange "`+exchange+`"`+"\n", r.output)
		err = amqpChannel(t, amqpURL).ExchangeDeclarePassive(exchange, amqp.ExchangeFanout, true, false, false, false, nil)
		var amqpErr *amqp.Error
		require.ErrorAs(t, err, &amqpErr)
		assert.Equal(t, amqp.NotFound, amqpErr.Code)

		r = run(t, 30*time.Second, "rabbitmq-delete", "--url", amqpURL)
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, "nothing to delete")

		// A quorum queue, which refuses AMQP's if-unused on delete: the tool asks for its
		// consumers instead.
		quorum := exchange + ".quorum"
		_, err = ch.QueueDeclare(quorum, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
		r = run(t, 30*time.Second, "rabbitmq-delete", "--url", amqpURL, "--queue", quorum, "--queue", quorum)
		require.Equal(t, 0, r.code, r.output)
		assert.Equal(t, `deleted queue "`+quorum+`", and the 0 message(s) in it`+"\n"+`no queue "`+quorum+`": nothing to delete`+"\n", r.output)
	})

	t.Run("--headers prints a message's headers, and x-death once RabbitMQ dead-lettered it", func(t *testing.T) {
		queue := brokertest.UniqueName(t, "labs.headers")
		dlq := queue + ".dlq"
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, []string{queue, dlq}, nil) })
		ch := amqpChannel(t, amqpURL)
		_, err := ch.QueueDeclare(dlq, true, false, false, false, nil)
		require.NoError(t, err)
		_, err = ch.QueueDeclare(queue, true, false, false, false, amqp.Table{
			"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
		})
		require.NoError(t, err)
		require.NoError(t, ch.PublishWithContext(t.Context(), "", queue, false, false, amqp.Publishing{
			Body:    []byte("poison"),
			Headers: amqp.Table{"b-count": int32(2), "a-name": "x", "c-table": amqp.Table{"k": []any{"v", int64(1)}}},
		}))
		// Rejected without requeue: the broker dead-letters it to the DLQ and records why.
		var d amqp.Delivery
		require.Eventually(t, func() bool {
			var ok bool
			d, ok, err = ch.Get(queue, false)
			return err == nil && ok
		}, 10*time.Second, 50*time.Millisecond, "the message reached %s", queue)
		require.NoError(t, d.Nack(false, false))

		r := run(t, 30*time.Second, "rabbitmq-consumer", "--url", amqpURL, "--queue", dlq, "--max", "1", "--timeout", "20s", "--headers")
		require.Equal(t, 0, r.code, r.output)
		assert.Contains(t, r.output, "received \"poison\" (exchange \"\", routing key \""+dlq+"\", redelivered false)\n"+
			"  a-name: \"x\"\n  b-count: 2\n  c-table: {k: [\"v\", 1]}\n  x-death: [{count: 1, ")
		assert.Contains(t, r.output, `queue: "`+queue+`", reason: "rejected", `)
	})

	t.Run("the consumer refuses contradictory flags before it connects", func(t *testing.T) {
		for args, want := range map[string]string{
			"--reject --nack": "--reject or --nack, not both",
			"--requeue":       "--requeue needs --reject or --nack",
		} {
			r := run(t, 30*time.Second, "rabbitmq-consumer", append([]string{"--url", "amqp://127.0.0.1:1/"}, strings.Fields(args)...)...)
			assert.Equal(t, 1, r.code, r.output)
			assert.Contains(t, r.output, "consumer: "+want, args)
		}
	})

	t.Run("an existing quorum queue is used as it is", func(t *testing.T) {
		// As the notifier's queues are: declaring one again without its arguments is refused.
		queue := brokertest.UniqueName(t, "labs.quorum")
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, []string{queue}, nil) })
		_, err := amqpChannel(t, amqpURL).QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)

		r := run(t, 30*time.Second, "rabbitmq-producer", "--url", amqpURL, "--queue", queue, "--body", "to a quorum queue")
		require.Equal(t, 0, r.code, r.output)
		r = run(t, 60*time.Second, "rabbitmq-consumer", "--url", amqpURL, "--queue", queue, "--max", "1", "--timeout", "30s")
		require.Equal(t, 0, r.code, r.output)
		assert.Contains(t, r.output, `received "to a quorum queue"`)
	})

	t.Run("the consumer stops cleanly on Ctrl-C", func(t *testing.T) {
		queue := brokertest.UniqueName(t, "labs.idle")
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, []string{queue}, nil) })
		c := start(t, "rabbitmq-consumer", "--url", amqpURL, "--queue", queue)
		c.WaitForOutput(t, "waiting for messages", 30*time.Second)
		assert.Equal(t, 0, c.Interrupt(t, 10*time.Second), c.Output())
		assert.Contains(t, c.Output(), "stopping after 0 message(s)")
	})

	t.Run("a message no queue would receive comes back to the producer", func(t *testing.T) {
		exchange := brokertest.UniqueName(t, "labs.nobody")
		t.Cleanup(func() { deleteRabbitMQ(t, amqpURL, nil, []string{exchange}) })

		r := run(t, 30*time.Second, "rabbitmq-producer", "--url", amqpURL, "--exchange", exchange, "--kind", "fanout")
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, "no queue is bound")
	})
}

func TestKafkaExamples(t *testing.T) {
	kafka := brokertest.KafkaBootstrap(t)
	topic := brokertest.UniqueName(t, "labs.hello")
	t.Cleanup(func() {
		r := run(t, 30*time.Second, "kafka-topics", "--bootstrap", kafka, "--topic", topic, "--delete")
		assert.Equal(t, 0, r.code, r.output)
	})
	body := "Hello Kafka! " + stack.UniqueSuffix()

	r := run(t, 60*time.Second, "kafka-producer", "--bootstrap", kafka, "--topic", topic, "--count", "3", "--body", body)
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "created with 3 partitions")
	first := placements(r.output)
	require.Len(t, first, 3, r.output)

	// The same keys again: the same partitions, the next offsets.
	r = run(t, 60*time.Second, "kafka-producer", "--bootstrap", kafka, "--topic", topic, "--count", "3", "--body", body)
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "exists")
	assert.Equal(t, first, placements(r.output), "a key always lands on the same partition")

	r = run(t, 90*time.Second, "kafka-consumer", "--bootstrap", kafka, "--topic", topic,
		"--group", brokertest.UniqueName(t, "labs.readers"), "--max", "6", "--timeout", "60s")
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "assigned partitions [0 1 2]")
	for _, n := range []string{"#1", "#2", "#3"} {
		assert.Contains(t, r.output, `received "`+body+" "+n+`"`)
	}

	r = run(t, 30*time.Second, "kafka-topics", "--bootstrap", kafka, "--topic", topic)
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "topic "+topic+": 3 partition(s)")

	// A consumer with nothing (new) to read stops on Ctrl-C, leaving its group cleanly.
	c := start(t, "kafka-consumer", "--bootstrap", kafka, "--topic", topic, "--group", brokertest.UniqueName(t, "labs.idle"))
	c.WaitForOutput(t, "assigned partitions", 60*time.Second)
	assert.Equal(t, 0, c.Interrupt(t, 15*time.Second), c.Output())
	assert.Contains(t, c.Output(), "stopping after")
}

var placement = regexp.MustCompile(`with key (\S+): partition (\d+)`)

// placements maps each key the producer printed to the partition it reported.
func placements(output string) map[string]string {
	m := map[string]string{}
	for _, match := range placement.FindAllStringSubmatch(output, -1) {
		m[match[1]] = match[2]
	}
	return m
}

func TestGRPCExamples(t *testing.T) {
	addr := stack.FreeAddr(t)
	server := start(t, "grpc-server", "--addr", addr)
	server.WaitForOutput(t, "listening on "+addr, 30*time.Second)

	r := run(t, 30*time.Second, "grpc-client", "--addr", addr)
	require.Equal(t, 0, r.code, r.output)
	assert.Equal(t, "Got: Hello gRPC\n", r.output)

	r = run(t, 30*time.Second, "grpc-client", "--addr", addr, "--content", "")
	assert.Equal(t, 1, r.code, r.output)
	assert.Contains(t, r.output, "InvalidArgument: content must not be empty")

	t.Run("a deadline shorter than the server's delay ends the call", func(t *testing.T) {
		slowAddr := stack.FreeAddr(t)
		slow := start(t, "grpc-server", "--addr", slowAddr, "--delay", "5s")
		slow.WaitForOutput(t, "listening on", 30*time.Second)

		began := time.Now()
		r := run(t, 30*time.Second, "grpc-client", "--addr", slowAddr, "--timeout", "300ms")
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, "DeadlineExceeded")
		assert.Less(t, time.Since(began), 4*time.Second, "the client gave up at its deadline, not after the delay")
		// The server stopped waiting too: its context ended with the client's deadline (or with
		// the client's cancellation, if that arrived first).
		slow.WaitForOutput(t, "/labs.v1.MessageService/SendMessage: ", 10*time.Second)
		assert.Regexp(t, `SendMessage: (DeadlineExceeded|Canceled) in [0-9.]+ms\n`, slow.Output()+"\n")
	})

	assert.Equal(t, 0, server.Interrupt(t, 10*time.Second), server.Output())
	assert.Contains(t, server.Output(), "/labs.v1.MessageService/SendMessage: OK")
	assert.Contains(t, server.Output(), "stopped")
}

// The streaming clients of step 5 against the real validator: a client stream answered once, a
// bidirectional stream answered once per change, and each stream's end.
func TestValidatorStreamingExamples(t *testing.T) {
	s := stack.New(t, brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t), brokertest.PostgresURL(t))
	s.Start("validator")

	t.Run("price: an order streamed line by line, answered once", func(t *testing.T) {
		r := run(t, 30*time.Second, "grpc-price", "--addr", s.GRPCAddr, "BOOK-001=2", "BOOK-002=1")
		require.Equal(t, 0, r.code, r.output)
		assert.Equal(t, "sent line 1: BOOK-001 × 2\nsent line 2: BOOK-002 × 1\n"+
			"BOOK-001 × 2 at 1299 = 2598\nBOOK-002 × 1 at 4599 = 4599\ntotal 7197 cents USD\n", r.output)

		r = run(t, 30*time.Second, "grpc-price", "--addr", s.GRPCAddr, "BOOK-001=2", "NOPE-1=1")
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, "price: InvalidArgument: invalid order: items[1].sku: no product with this sku in the catalog\n"+
			"  items[1].sku: no product with this sku in the catalog\n")

		r = run(t, 30*time.Second, "grpc-price", "--addr", s.GRPCAddr, "BOOK-001")
		assert.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, `price: "BOOK-001": want SKU=QUANTITY`)
	})

	t.Run("quote: one quote per change, a refused change answered too", func(t *testing.T) {
		r := run(t, 30*time.Second, "grpc-quote", "--addr", s.GRPCAddr, "BOOK-001=2", "NOPE-1=1", "BOOK-002=1", "BOOK-001=0", "BOOK-002=0")
		require.Equal(t, 0, r.code, r.output)
		assert.Equal(t, "basket: BOOK-001 × 2; total 2598 cents USD\n"+
			"refused: sku: no product with this sku in the catalog\n"+
			"basket: BOOK-001 × 2; total 2598 cents USD\n"+
			"basket: BOOK-001 × 2, BOOK-002 × 1; total 7197 cents USD\n"+
			"basket: BOOK-002 × 1; total 4599 cents USD\n"+
			"basket: empty; total 0 cents USD\n"+
			"5 quote(s); the server ended the stream\n", r.output)
	})

	t.Run("quote: the deadline ends a stream that waits for changes", func(t *testing.T) {
		// No arguments: it reads changes from standard input, which never sends one here and
		// never ends — only the deadline can end the stream.
		cmd := exec.Command(program(t, "grpc-quote"), "--addr", s.GRPCAddr, "--timeout", "500ms") //nolint:noctx // bounded by its own --timeout and the wait below
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		t.Cleanup(func() { _ = stdin.Close() })
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, out.String())
			assert.Equal(t, 1, exit.ExitCode())
			assert.Equal(t, "quote: after 0 quote(s): DeadlineExceeded: context deadline exceeded\n", out.String())
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("quote did not stop at its deadline: %s", out.String())
		}
	})
}

// deleteRabbitMQ removes the queues and exchanges a test declared.
func deleteRabbitMQ(t *testing.T, amqpURL string, queues, exchanges []string) {
	t.Helper()
	ch := amqpChannel(t, amqpURL)
	for _, q := range queues {
		_, err := ch.QueueDelete(q, false, false, false)
		assert.NoError(t, err, "delete queue %s", q)
	}
	for _, x := range exchanges {
		assert.NoError(t, ch.ExchangeDelete(x, false, false), "delete exchange %s", x)
	}
}
