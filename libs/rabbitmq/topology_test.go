package rabbitmq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestTopologyValidate(t *testing.T) {
	quorum := func(mod func(*rabbitmq.Queue)) rabbitmq.Topology {
		q := rabbitmq.Queue{Name: "q", Type: rabbitmq.QueueQuorum, Durable: true}
		mod(&q)
		return rabbitmq.Topology{Queues: []rabbitmq.Queue{q}}
	}
	tests := []struct {
		name    string
		topo    rabbitmq.Topology
		wantErr string
	}{
		{"empty topology", rabbitmq.Topology{}, ""},
		{"durable quorum queue with dead-lettering", quorum(func(q *rabbitmq.Queue) {
			q.DeadLetterExchange, q.DeadLetterRoutingKey, q.MessageTTL = "dlx", "dead", time.Second
		}), ""},
		{"exchange without name", rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Kind: rabbitmq.ExchangeTopic}}}, "name is required"},
		{"exchange of unknown kind", rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Name: "x", Kind: "x-delayed-message"}}}, "unknown kind"},
		{"queue without name", rabbitmq.Topology{Queues: []rabbitmq.Queue{{Durable: true}}}, "server-named"},
		{"transient quorum queue", quorum(func(q *rabbitmq.Queue) { q.Durable = false }), "must be durable"},
		{"exclusive quorum queue", quorum(func(q *rabbitmq.Queue) { q.Exclusive = true }), "must be durable"},
		{"unknown queue type", quorum(func(q *rabbitmq.Queue) { q.Type = "mirrored" }), "unknown type"},
		{"sub-millisecond TTL", quorum(func(q *rabbitmq.Queue) { q.MessageTTL = time.Microsecond }), "milliseconds"},
		{"dead-letter key without exchange", quorum(func(q *rabbitmq.Queue) { q.DeadLetterRoutingKey = "k" }), "needs a dead-letter exchange"},
		{"argument of a type AMQP cannot carry", quorum(func(q *rabbitmq.Queue) { q.Args = map[string]any{"x-bad": struct{}{}} }), "args"},
		{"binding without exchange", rabbitmq.Topology{Bindings: []rabbitmq.Binding{{Queue: "q"}}}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.topo.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestDeclareIsIdempotent(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "order.placed")
	dlx := brokertest.UniqueName(t, "dlx")
	topo.Exchanges = append(topo.Exchanges, rabbitmq.Exchange{Name: dlx, Kind: rabbitmq.ExchangeFanout, Durable: true})
	topo.Queues[0].DeadLetterExchange = dlx
	topo.Queues[0].Args = map[string]any{"x-delivery-limit": int64(5)}

	declare(t, conn, url, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Declare(ctx, topo), "declaring the same topology again")

	withRawChannel(t, url, func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclarePassive(exchange, rabbitmq.ExchangeTopic, true, false, false, false, nil); err != nil {
			return err
		}
		_, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err
	})
	require.NoError(t, conn.Ready(ctx))
}

func TestDeclareRejectsAConflictingQueueAndKeepsTheConnection(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, _, queue := workQueue(t, "k")
	declare(t, conn, url, topo)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conflicting := rabbitmq.Topology{Queues: []rabbitmq.Queue{{Name: queue, Type: rabbitmq.QueueClassic, Durable: true}}}
	err := conn.Declare(ctx, conflicting)

	var amqpErr *amqp.Error
	require.True(t, errors.As(err, &amqpErr), "want the broker's error, got %v", err)
	assert.Equal(t, amqp.PreconditionFailed, amqpErr.Code)
	assert.NoError(t, conn.Ready(ctx), "a channel error must not take the connection down")
	assert.NoError(t, conn.Declare(ctx, topo), "the connection stays usable")
}

func TestExpiredMessagesAreDeadLetteredWithTheirHistory(t *testing.T) {
	// A queue with a message TTL and a dead-letter exchange is how a consumer delays a retry.
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	exchange := brokertest.UniqueName(t, "ex")
	delay := brokertest.UniqueName(t, "delay")
	target := brokertest.UniqueName(t, "target")
	declare(t, conn, url, rabbitmq.Topology{
		Exchanges: []rabbitmq.Exchange{{Name: exchange, Kind: rabbitmq.ExchangeDirect, Durable: true}},
		Queues: []rabbitmq.Queue{
			{Name: delay, Type: rabbitmq.QueueQuorum, Durable: true, MessageTTL: 100 * time.Millisecond,
				DeadLetterExchange: exchange, DeadLetterRoutingKey: "retry"},
			{Name: target, Type: rabbitmq.QueueQuorum, Durable: true},
		},
		Bindings: []rabbitmq.Binding{
			{Queue: delay, Exchange: exchange, RoutingKey: "wait"},
			{Queue: target, Exchange: exchange, RoutingKey: "retry"},
		},
	})
	handler, deliveries := collect(1)
	startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: target}, handler)

	require.NoError(t, newPublisher(t, conn).Publish(publishCtx(t), exchange, "wait",
		rabbitmq.Message{Body: []byte("later"), MessageID: "m-1"}))

	d := receive(t, deliveries, 10*time.Second)
	assert.Equal(t, "m-1", d.MessageID)
	assert.Equal(t, "retry", d.RoutingKey)
	require.Len(t, d.Deaths, 1)
	assert.Equal(t, delay, d.Deaths[0].Queue)
	assert.Equal(t, "expired", d.Deaths[0].Reason)
	assert.Equal(t, []string{"wait"}, d.Deaths[0].RoutingKeys)
	assert.Equal(t, int64(1), d.DeathCount(delay))
}
