package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/backend-prep/backend-prep/libs/kafka"
)

// librdkafkaLines counts the log entries that came from librdkafka (they carry its client name)
// for one component.
func librdkafkaLines(logs *observer.ObservedLogs, component string) int {
	n := 0
	for _, e := range logs.All() {
		fields := e.ContextMap()
		if fields["component"] == component && fields["client"] != nil && fields["tag"] != nil {
			n++
		}
	}
	return n
}

// The clients hand librdkafka a log channel of their own (smaller than the Go client's default)
// and close it themselves: its lines must still reach zap, and Close must still return.
func TestClients_ForwardLibrdkafkaLogsAndClose(t *testing.T) {
	const topic = "mock-logs"
	_, cfg := newMockCluster(t, topic)
	cfg.Debug = "broker,cgrp" // debug contexts: lines at every connection and group step

	t.Run("producer", func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		p, err := kafka.NewProducer(cfg, zap.New(core))
		require.NoError(t, err)
		require.NoError(t, p.Publish(timeout(t, 10*time.Second), kafka.Message{Topic: topic, Value: []byte("x")}))
		require.Eventually(t, func() bool { return librdkafkaLines(logs, "kafka.producer") > 0 },
			10*time.Second, 10*time.Millisecond, "librdkafka's lines reach the producer's logger")

		closed := make(chan error, 1)
		go func() { closed <- p.Close(context.Background()) }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("Close did not return: the log channel was not closed")
		}
	})

	t.Run("consumer", func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		c, err := kafka.NewConsumer(cfg, kafka.ConsumerOptions{
			GroupID: "mock-logs", Topics: []string{topic}, Handler: (&recorder{}).handle,
		}, zap.New(core))
		require.NoError(t, err)
		require.NoError(t, c.Start(timeout(t, 10*time.Second)))
		require.Eventually(t, func() bool { return librdkafkaLines(logs, "kafka.consumer") > 0 },
			10*time.Second, 10*time.Millisecond, "librdkafka's lines reach the consumer's logger")

		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, c.Stop(ctx), "Stop returns once the log channel is drained")
	})
}
