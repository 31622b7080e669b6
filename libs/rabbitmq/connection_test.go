package rabbitmq_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestStartFailsWithinTheDialTimeoutWhenTheBrokerIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	cfg := testConfig("amqp://guest:guest@" + addr + "/")
	cfg.DialTimeout = time.Second
	conn, err := rabbitmq.NewConnection(cfg, testLogger(t))
	require.NoError(t, err)
	start := time.Now()
	err = conn.Start(context.Background())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.ErrorIs(t, conn.Ready(context.Background()), rabbitmq.ErrNotConnected)
	assert.NoError(t, conn.Close(context.Background()))
}

func TestStartFailsWhenTheHandshakeHangs(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	proxy.Stall(true)

	cfg := testConfig(proxied)
	cfg.DialTimeout = 500 * time.Millisecond
	conn, err := rabbitmq.NewConnection(cfg, testLogger(t))
	require.NoError(t, err)
	start := time.Now()
	require.Error(t, conn.Start(context.Background()))
	assert.Less(t, time.Since(start), 3*time.Second)
	proxy.Stall(false)
}

func TestConnectionRecoversAndRedeclaresItsTopology(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	conn := startConnection(t, testConfig(proxied))
	exchange := brokertest.UniqueName(t, "ex")
	topo := rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Name: exchange, Kind: rabbitmq.ExchangeFanout}}}
	declare(t, conn, url, topo)
	require.NoError(t, conn.Ready(context.Background()))

	proxy.Refuse(true)
	proxy.Cut()
	require.Eventually(t, func() bool { return conn.Ready(context.Background()) != nil }, 5*time.Second, 10*time.Millisecond)
	assert.ErrorIs(t, conn.Ready(context.Background()), rabbitmq.ErrNotConnected)

	// While the service is away its (transient) exchange disappears, as it would with a broker
	// that lost its state.
	withRawChannel(t, url, func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) })
	proxy.Refuse(false)
	require.Eventually(t, func() bool { return conn.Ready(context.Background()) == nil }, 10*time.Second, 10*time.Millisecond)

	withRawChannel(t, url, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(exchange, rabbitmq.ExchangeFanout, false, false, false, false, nil)
	})
}

func TestAStalledBrokerIsDroppedAfterTheOperationTimeout(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	cfg := testConfig(proxied)
	cfg.OperationTimeout = 300 * time.Millisecond
	cfg.DialTimeout = 500 * time.Millisecond
	core, logs := observer.New(zap.WarnLevel)
	conn, err := rabbitmq.NewConnection(cfg, zap.New(core))
	require.NoError(t, err)
	require.NoError(t, conn.Start(publishCtx(t)))
	t.Cleanup(func() { assert.NoError(t, conn.Close(context.Background())) })

	proxy.Stall(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	exchange := brokertest.UniqueName(t, "ex")
	err = conn.Declare(ctx, rabbitmq.Topology{Exchanges: []rabbitmq.Exchange{{Name: exchange, Kind: rabbitmq.ExchangeFanout, AutoDelete: true}}})
	require.ErrorIs(t, err, rabbitmq.ErrNotConnected)
	assert.NotEmpty(t, logs.FilterMessage("broker did not answer in time, dropping the connection").All())
	assert.ErrorIs(t, conn.Ready(context.Background()), rabbitmq.ErrNotConnected)

	proxy.Stall(false)
	require.Eventually(t, func() bool { return conn.Ready(context.Background()) == nil }, 10*time.Second, 10*time.Millisecond)
}

func TestCloseStopsReconnecting(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	proxy, proxied := newFaultProxy(t, url)
	conn, err := rabbitmq.NewConnection(testConfig(proxied), testLogger(t))
	require.NoError(t, err)
	require.NoError(t, conn.Start(publishCtx(t)))
	pub := newPublisher(t, conn)

	proxy.Refuse(true)
	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, conn.Close(ctx), "Close is idempotent")

	assert.ErrorIs(t, conn.Ready(ctx), rabbitmq.ErrClosed)
	assert.ErrorIs(t, pub.Publish(ctx, "amq.topic", "k", rabbitmq.Message{}), rabbitmq.ErrClosed)
	_, err = conn.Channel(ctx)
	assert.ErrorIs(t, err, rabbitmq.ErrClosed)
}

// TestRecoversFromABrokerRestart restarts the broker's application, as an upgrade or a crash
// would, and checks the promises the services rely on.
func TestRecoversFromABrokerRestart(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, exchange, queue := workQueue(t, "live")
	parked := brokertest.UniqueName(t, "parked")
	topo.Queues = append(topo.Queues, rabbitmq.Queue{Name: parked, Type: rabbitmq.QueueQuorum, Durable: true})
	topo.Bindings = append(topo.Bindings, rabbitmq.Binding{Queue: parked, Exchange: exchange, RoutingKey: "parked"})
	declare(t, conn, url, topo)
	handler, deliveries := collect(1)
	consumer := startConsumer(t, conn, rabbitmq.ConsumerConfig{Queue: queue}, handler)
	pub := newPublisher(t, conn)
	require.NoError(t, pub.Publish(publishCtx(t), exchange, "parked", rabbitmq.Message{MessageID: "before"}))

	start := time.Now()
	brokertest.RestartRabbitMQ(t)
	t.Logf("broker restarted in %s", time.Since(start))

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := pub.Publish(ctx, exchange, "live", rabbitmq.Message{MessageID: "after"})
		cancel()
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "publishing did not resume: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("publishing resumed %s after the restart began", time.Since(start))

	assert.Equal(t, "after", receive(t, deliveries, 30*time.Second).MessageID,
		"the consumer started before the restart receives messages published after it")
	assert.NoError(t, conn.Ready(context.Background()))
	assert.NoError(t, consumer.Ready(context.Background()))
	assert.Equal(t, 1, queueDepth(t, url, parked), "a confirmed persistent message survives the restart")
}

func TestAConnectionToSeveralNodesMovesToAnotherWhenItsNodeGoesAway(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	// Two routes to the one broker stand for two nodes of a cluster.
	first, viaFirst := newFaultProxy(t, url)
	_, viaSecond := newFaultProxy(t, url)
	core, logs := observer.New(zap.InfoLevel)
	cfg := testConfig(viaFirst + " , " + viaSecond)
	cfg.ReconnectMax = 5 * time.Second // a reconnect must not need a second round of the list
	conn, err := rabbitmq.NewConnection(cfg, zap.New(core))
	require.NoError(t, err)
	require.NoError(t, conn.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, conn.Close(context.Background())) })
	nodes := func(msg string) []string {
		var got []string
		for _, e := range logs.FilterMessage(msg).All() {
			got = append(got, e.ContextMap()["node"].(string))
		}
		return got
	}
	host := func(uri string) string {
		u, err := amqp.ParseURI(uri)
		require.NoError(t, err)
		return fmt.Sprintf("%s:%d", u.Host, u.Port)
	}
	require.Len(t, nodes("connected"), 1)
	assert.Contains(t, nodes("connected")[0], host(viaFirst), "the first URI is dialled first")

	// The first node goes away for good: the connection moves to the second at once, though
	// the first is still listed first.
	first.Refuse(true)
	first.Cut()
	require.Eventually(t, func() bool { return len(nodes("reconnected")) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, nodes("reconnected")[0], host(viaSecond))
	require.NoError(t, conn.Ready(context.Background()))
}

func TestStartTriesEveryNodeAndNamesEachOneThatFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	cfg := testConfig("amqp://guest:guest@" + gone + "/," + brokertest.RabbitMQURL(t))
	conn := startConnection(t, cfg)
	require.NoError(t, conn.Ready(context.Background()), "the second node answers")

	cfg.URL = "amqp://guest:guest@" + gone + "/,amqp://guest:guest@" + gone + "/other"
	cfg.DialTimeout = time.Second
	down, err := rabbitmq.NewConnection(cfg, zap.NewNop())
	require.NoError(t, err)
	err = down.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to amqp://"+gone+"/: dial:")
	assert.Contains(t, err.Error(), "connect to amqp://"+gone+"/other: dial:")
	assert.NotContains(t, err.Error(), "guest:guest", "errors never show credentials")
	assert.NoError(t, down.Close(context.Background()))
}
