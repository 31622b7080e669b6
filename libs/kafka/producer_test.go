package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// unreachable is a bootstrap address where nothing listens.
const unreachable = "127.0.0.1:1"

func TestProducer_PublishedMessageReadsBackIntact(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	p := newProducer(t, cfg)

	sent := kafka.Message{
		Topic: topic,
		Key:   []byte("order-42"),
		Value: []byte(`{"order_id":"order-42"}`),
		Headers: []kafka.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "event-type", Value: []byte("orders.v1.OrderPlaced")},
			{Key: "trace", Value: []byte("first")},
			{Key: "trace", Value: []byte("second")},
		},
	}
	before := time.Now().UTC().Add(-time.Second)
	require.NoError(t, p.Publish(timeout(t, 10*time.Second), sent))

	var got recorder
	startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: topic, Topics: []string{topic}, Handler: got.handle,
	})
	require.Eventually(t, func() bool { return len(got.values()) == 1 }, waitFor, 20*time.Millisecond)

	msg := got.messages[0]
	assert.Equal(t, sent.Topic, msg.Topic)
	assert.Equal(t, sent.Key, msg.Key)
	assert.Equal(t, sent.Value, msg.Value)
	assert.Equal(t, sent.Headers, msg.Headers, "headers keep their order and repeated keys")
	assert.Equal(t, time.UTC, msg.Timestamp.Location())
	assert.WithinRange(t, msg.Timestamp, before, time.Now().UTC())
	contentType, ok := msg.Header("content-type")
	assert.True(t, ok)
	assert.Equal(t, "application/json", string(contentType))
}

func TestProducer_SameKeySamePartition(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	p := newProducer(t, cfg)
	for range 5 {
		require.NoError(t, p.Publish(timeout(t, 10*time.Second), kafka.Message{
			Topic: topic, Key: []byte("order-7"), Value: []byte("v"),
		}))
	}

	var got recorder
	startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: topic, Topics: []string{topic}, Handler: got.handle})
	require.Eventually(t, func() bool { return len(got.values()) == 5 }, waitFor, 20*time.Millisecond)
	assert.Len(t, got.partitions(), 1)
}

func TestProducer_PublishFailsByTheCallersDeadline(t *testing.T) {
	tests := []struct {
		name      string
		bootstrap string
		ctx       func(t *testing.T) context.Context
		want      error
		within    time.Duration
	}{
		{
			name:      "context already cancelled",
			bootstrap: "",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			want:   context.Canceled,
			within: 50 * time.Millisecond,
		},
		{
			name:      "context already past its deadline",
			bootstrap: "",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx
			},
			want:   context.DeadlineExceeded,
			within: 50 * time.Millisecond,
		},
		{
			name:      "broker unreachable",
			bootstrap: unreachable,
			ctx:       func(t *testing.T) context.Context { return timeout(t, time.Second) },
			want:      context.DeadlineExceeded,
			within:    time.Second + 250*time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tt.bootstrap != "" {
				cfg.BootstrapServers = tt.bootstrap
			}
			p, err := kafka.NewProducer(cfg, zaptest.NewLogger(t))
			require.NoError(t, err)
			t.Cleanup(func() {
				// Nothing can be delivered to an unreachable broker: Close purges at its deadline.
				_ = p.Close(timeout(t, 100*time.Millisecond))
			})

			start := time.Now()
			err = p.Publish(tt.ctx(t), kafka.Message{Topic: "never-created", Value: []byte("x")})
			require.ErrorIs(t, err, tt.want)
			assert.Less(t, time.Since(start), tt.within)
		})
	}
}

func TestProducer_PublishReturnsDeliveryFailures(t *testing.T) {
	p := newProducer(t, testConfig(t))
	// Random bytes, so that compression cannot shrink the value below the limits.
	value := make([]byte, 16<<10)
	_, _ = rand.Read(value)

	tests := []struct {
		name  string
		topic func(t *testing.T) string
		value []byte
	}{
		{
			name:  "refused by the client: larger than message.max.bytes",
			topic: func(t *testing.T) string { return newTopic(t, 1) },
			value: make([]byte, 2<<20),
		},
		{
			name: "refused by the broker: larger than the topic's max.message.bytes",
			topic: func(t *testing.T) string {
				return newTopicSpec(t, kafka.TopicSpec{Partitions: 1, Config: map[string]string{"max.message.bytes": "1024"}})
			},
			value: value,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := p.Publish(timeout(t, 10*time.Second), kafka.Message{Topic: tt.topic(t), Value: tt.value})
			require.Error(t, err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, time.Since(start), 5*time.Second, "a permanent failure is not retried until the deadline")
		})
	}
}

func TestProducer_CloseReleasesWaitingPublishersAtItsDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.BootstrapServers = unreachable
	p, err := kafka.NewProducer(cfg, zaptest.NewLogger(t))
	require.NoError(t, err)

	const publishers = 5
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			errs <- p.Publish(timeout(t, time.Minute), kafka.Message{Topic: "never-created", Value: []byte("x")})
		})
	}
	time.Sleep(100 * time.Millisecond) // let the messages reach librdkafka's queue

	start := time.Now()
	err = p.Close(timeout(t, 300*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded, "undelivered messages are reported")
	wg.Wait()
	close(errs)
	assert.Less(t, time.Since(start), 2*time.Second, "publishers learn the outcome at Close, not at their own deadline")
	for err := range errs {
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
	}

	err = p.Publish(timeout(t, time.Second), kafka.Message{Topic: "never-created", Value: []byte("x")})
	require.ErrorIs(t, err, kafka.ErrClosed)
	require.NoError(t, p.Close(timeout(t, time.Second)), "Close is idempotent")
}

func TestProducer_Ready(t *testing.T) {
	tests := []struct {
		name      string
		bootstrap string
		wantErr   bool
	}{
		{name: "broker reachable", bootstrap: "", wantErr: false},
		{name: "broker unreachable", bootstrap: unreachable, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tt.bootstrap != "" {
				cfg.BootstrapServers = tt.bootstrap
			}
			p := newProducer(t, cfg)

			start := time.Now()
			err := p.Ready(timeout(t, time.Second))
			if tt.wantErr {
				require.Error(t, err)
				assert.Less(t, time.Since(start), time.Second+250*time.Millisecond)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestProducer_ConcurrentPublish(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	p := newProducer(t, cfg)

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- p.Publish(timeout(t, 10*time.Second), kafka.Message{
				Topic: topic, Key: []byte{byte(i)}, Value: []byte{byte(i)},
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var total int64
	for _, high := range highWatermarks(t, topic, 3) {
		total += high
	}
	assert.EqualValues(t, n, total, "idempotence writes every message exactly once")
}

// freeAddr returns a loopback address where nothing listens: connections to it are refused.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// proxy forwards the TCP connections it accepts on addr to target until Close.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(server, client); _ = server.Close() })
		p.wg.Go(func() { _, _ = io.Copy(client, server); _ = client.Close() })
	}
}

// Close stops listening and cuts every connection; Close twice is fine.
func (p *proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func TestProducer_DownUntilABrokerAnswers(t *testing.T) {
	topic := newTopic(t, 1)
	cfg := testConfig(t)
	// The bootstrap address refuses connections until a proxy to the real broker opens on it.
	// The broker's metadata then names its own address, which the producer uses from there on.
	cfg.BootstrapServers = freeAddr(t)
	p := newProducer(t, cfg)

	start := time.Now()
	require.Eventually(t, func() bool { return errors.Is(p.Down(), kafka.ErrAllBrokersDown) },
		10*time.Second, 5*time.Millisecond, "librdkafka reports every broker down")
	t.Logf("known down %s after start: %v", time.Since(start).Round(time.Millisecond), p.Down())

	startProxy(t, cfg.BootstrapServers, brokertest.KafkaBootstrap(t))
	back := time.Now()
	require.Eventually(t, func() bool { return p.Down() == nil }, 10*time.Second, 5*time.Millisecond,
		"a broker that answers clears the state without a restart")
	t.Logf("known up %s after the broker became reachable", time.Since(back).Round(time.Millisecond))
	require.NoError(t, p.Publish(timeout(t, 10*time.Second), kafka.Message{Topic: topic, Value: []byte("back")}))
}

// TestProducer_DownFollowsTheBroker uses librdkafka's mock cluster, an in-process broker that
// can be taken down and brought back, and slowed down, without touching the shared one.
func TestProducer_DownFollowsTheBroker(t *testing.T) {
	const topic = "mock-orders"
	mc, cfg := newMockCluster(t, topic)
	p := newProducer(t, cfg)
	publish := func(d time.Duration) error {
		return p.Publish(timeout(t, d), kafka.Message{Topic: topic, Value: []byte("x")})
	}

	require.NoError(t, publish(10*time.Second))
	require.NoError(t, p.Down())

	// A slow broker is not a broker that is down.
	require.NoError(t, mc.SetRoundtripDuration(1, 1500*time.Millisecond))
	start := time.Now()
	require.NoError(t, publish(10*time.Second))
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	assert.NoError(t, p.Down(), "slow, not down")
	require.NoError(t, mc.SetRoundtripDuration(1, 0))

	for round := range 2 {
		require.NoError(t, mc.SetBrokerDown(1))
		down := time.Now()
		require.Eventually(t, func() bool { return errors.Is(p.Down(), kafka.ErrAllBrokersDown) },
			10*time.Second, 5*time.Millisecond)
		t.Logf("round %d: known down %s after the broker went down", round, time.Since(down).Round(time.Millisecond))

		require.NoError(t, mc.SetBrokerUp(1))
		up := time.Now()
		require.Eventually(t, func() bool { return p.Down() == nil }, 10*time.Second, 5*time.Millisecond)
		t.Logf("round %d: known up %s after the broker came back", round, time.Since(up).Round(time.Millisecond))
		require.NoError(t, publish(10*time.Second))
	}
}
