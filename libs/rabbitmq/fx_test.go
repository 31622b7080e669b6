package rabbitmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestModuleStartsTheConnectionDeclaresTopologyAndStopsCleanly(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	topo, exchange, queue := workQueue(t, "order.placed")
	deleteOnCleanup(t, url, topo)
	// Two owners contribute their parts, as order-api (exchange) and notifier (queue) do.
	publisherPart := rabbitmq.Topology{Exchanges: topo.Exchanges}
	consumerPart := rabbitmq.Topology{Queues: topo.Queues, Bindings: topo.Bindings}

	var (
		conn *rabbitmq.Connection
		pub  *rabbitmq.Publisher
	)
	app := fxtest.New(t,
		fx.Supply(testConfig(url)),
		fx.Provide(func() *zap.Logger { return testLogger(t) }),
		rabbitmq.Module,
		rabbitmq.ProvideTopology(publisherPart),
		rabbitmq.ProvideTopology(consumerPart),
		fx.Populate(&conn, &pub),
	)
	app.RequireStart()
	require.NoError(t, conn.Ready(context.Background()))

	require.NoError(t, pub.Publish(publishCtx(t), exchange, "order.placed", rabbitmq.Message{MessageID: "o-1"}))
	assert.Equal(t, 1, queueDepth(t, url, queue))

	app.RequireStop()
	assert.ErrorIs(t, conn.Ready(context.Background()), rabbitmq.ErrClosed)
	assert.ErrorIs(t, pub.Publish(publishCtx(t), exchange, "order.placed", rabbitmq.Message{}), rabbitmq.ErrClosed)
}

func TestModuleFailsToStartWithoutABroker(t *testing.T) {
	cfg := testConfig("amqp://guest:guest@127.0.0.1:1/")
	cfg.DialTimeout = time.Second
	var conn *rabbitmq.Connection
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg),
		fx.Provide(func() *zap.Logger { return testLogger(t) }),
		rabbitmq.Module,
		fx.Populate(&conn),
	)
	require.NoError(t, app.Err())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	assert.Error(t, app.Start(ctx))
}

func TestModuleFailsToStartWhenTheBrokerRefusesTheTopology(t *testing.T) {
	url := brokertest.RabbitMQURL(t)
	conn := startConnection(t, testConfig(url))
	topo, _, queue := workQueue(t, "k")
	declare(t, conn, url, topo)

	var moduleConn *rabbitmq.Connection
	app := fx.New(
		fx.NopLogger,
		fx.Supply(testConfig(url)),
		fx.Provide(func() *zap.Logger { return testLogger(t) }),
		rabbitmq.Module,
		rabbitmq.ProvideTopology(rabbitmq.Topology{Queues: []rabbitmq.Queue{{Name: queue, Durable: false}}}),
		fx.Populate(&moduleConn),
	)
	require.NoError(t, app.Err())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.ErrorContains(t, app.Start(ctx), "PRECONDITION_FAILED")
	assert.ErrorIs(t, moduleConn.Ready(ctx), rabbitmq.ErrClosed, "the connection of a failed start is closed")
}

func TestModuleRejectsAnInvalidTopologyBeforeDialling(t *testing.T) {
	app := fx.New(
		fx.NopLogger,
		fx.Supply(testConfig("amqp://guest:guest@127.0.0.1:1/")),
		fx.Provide(zap.NewNop),
		rabbitmq.Module,
		rabbitmq.ProvideTopology(rabbitmq.Topology{Queues: []rabbitmq.Queue{{Name: "q", Type: rabbitmq.QueueQuorum}}}),
		fx.Invoke(func(*rabbitmq.Connection) {}),
	)
	assert.ErrorContains(t, app.Err(), "must be durable")
}
