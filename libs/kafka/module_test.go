package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestModule_ProvidesAProducerThatLivesWithTheApp(t *testing.T) {
	topic := newTopic(t, 1)
	var p *kafka.Producer
	app := fxtest.New(t,
		fx.Supply(testConfig(t)),
		fx.Provide(func() *zap.Logger { return zaptest.NewLogger(t) }),
		kafka.Module,
		fx.Populate(&p),
	)
	app.RequireStart()
	require.NoError(t, p.Ready(timeout(t, 5*time.Second)))
	require.NoError(t, p.Publish(timeout(t, 10*time.Second), kafka.Message{Topic: topic, Value: []byte("x")}))

	app.RequireStop()
	err := p.Publish(timeout(t, time.Second), kafka.Message{Topic: topic, Value: []byte("x")})
	require.ErrorIs(t, err, kafka.ErrClosed, "stopping the app closed the producer")
}

func TestModule_StartFailsWithinItsTimeoutWhenNoBrokerAnswers(t *testing.T) {
	cfg := testConfig(t)
	cfg.BootstrapServers = unreachable
	var p *kafka.Producer
	app := fx.New(
		fx.Supply(cfg),
		fx.Provide(func() *zap.Logger { return zaptest.NewLogger(t) }),
		kafka.Module,
		fx.Populate(&p),
		fx.NopLogger,
	)
	require.NoError(t, app.Err())

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	require.Error(t, app.Start(ctx))
	assert.Less(t, time.Since(start), time.Second+250*time.Millisecond)
	// fx returns at the deadline while the hook may still be finishing.
	require.Eventually(t, func() bool {
		return errors.Is(p.Ready(timeout(t, 100*time.Millisecond)), kafka.ErrClosed)
	}, waitFor, 20*time.Millisecond, "a failed start released the producer")
}
