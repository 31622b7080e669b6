package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/libs/kafka"
	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// waitFor is how long a test waits for the group protocol and the broker; everything normally
// happens within a few seconds.
const waitFor = 30 * time.Second

// testConfig points at the real broker with the group timings tightened: the session timeout
// is the broker's minimum, heartbeats are frequent so rebalances propagate quickly, commits,
// retries and metadata refreshes are prompt.
func testConfig(t *testing.T) kafka.Config {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = brokertest.KafkaBootstrap(t)
	cfg.ClientID = "kafka-lib-test"
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = 300 * time.Millisecond
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.MetadataRefreshInterval = time.Second
	return cfg
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newAdmin returns an admin client closed at the end of the test.
func newAdmin(t *testing.T) *kafka.Admin {
	t.Helper()
	admin, err := kafka.NewAdmin(testConfig(t))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	return admin
}

// newTopic creates a topic of its own for the test and deletes it afterwards.
func newTopic(t *testing.T, partitions int) string {
	t.Helper()
	return newTopicSpec(t, kafka.TopicSpec{Partitions: partitions})
}

// newTopicSpec creates a uniquely named topic from spec and deletes it afterwards.
func newTopicSpec(t *testing.T, spec kafka.TopicSpec) string {
	t.Helper()
	admin := newAdmin(t)
	spec.Name = brokertest.UniqueName(t, "kafkalib")
	require.NoError(t, admin.EnsureTopic(timeout(t, 20*time.Second), spec))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin.DeleteTopics(ctx, spec.Name); err != nil {
			t.Errorf("delete topic %s: %v", spec.Name, err)
		}
	})
	return spec.Name
}

// newMockCluster starts librdkafka's mock cluster, an in-process broker, with topic (one
// partition), and returns it with a config that points at it. It is closed at the end of the test.
func newMockCluster(t *testing.T, topic string) (*ckafka.MockCluster, kafka.Config) {
	t.Helper()
	mc, err := ckafka.NewMockCluster(1)
	require.NoError(t, err)
	t.Cleanup(mc.Close)
	require.NoError(t, mc.CreateTopic(topic, 1, 1))
	cfg := testConfig(t)
	cfg.BootstrapServers = mc.BootstrapServers()
	return mc, cfg
}

// newProducer returns a producer closed at the end of the test.
func newProducer(t *testing.T, cfg kafka.Config) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close producer: %v", err)
		}
	})
	return p
}

// publishN publishes count messages whose keys and values are prefix-0, prefix-1, … and returns
// the values.
func publishN(t *testing.T, p *kafka.Producer, topic, prefix string, count int) []string {
	t.Helper()
	values := make([]string, count)
	for i := range values {
		values[i] = fmt.Sprintf("%s-%d", prefix, i)
		err := p.Publish(timeout(t, 10*time.Second), kafka.Message{
			Topic: topic, Key: []byte(values[i]), Value: []byte(values[i]),
		})
		require.NoError(t, err)
	}
	return values
}

// recorder is a Handler that remembers every message it accepted, in order.
type recorder struct {
	mu       sync.Mutex
	messages []*kafka.Message
}

func (r *recorder) handle(_ context.Context, msg *kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, msg)
	return nil
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.messages))
	for i, m := range r.messages {
		out[i] = string(m.Value)
	}
	return out
}

func (r *recorder) partitions() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int32
	for _, m := range r.messages {
		if !slices.Contains(out, m.Partition) {
			out = append(out, m.Partition)
		}
	}
	slices.Sort(out)
	return out
}

// startConsumer starts a consumer and stops it at the end of the test unless the test did.
func startConsumer(t *testing.T, cfg kafka.Config, opts kafka.ConsumerOptions) *kafka.Consumer {
	t.Helper()
	c, err := kafka.NewConsumer(cfg, opts, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.NoError(t, c.Start(timeout(t, 10*time.Second)))
	t.Cleanup(func() { stopConsumer(t, c) })
	return c
}

func stopConsumer(t *testing.T, c *kafka.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, c.Stop(ctx))
}

// waitCaughtUp waits until the group has committed everything in every partition c owns, and
// returns the committed offsets.
func waitCaughtUp(t *testing.T, c *kafka.Consumer, partitions int) map[int32]int64 {
	t.Helper()
	var committed map[int32]int64
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		lags, err := c.Lag(timeout(t, 5*time.Second))
		require.NoError(ct, err)
		require.Len(ct, lags, partitions)
		committed = make(map[int32]int64)
		for _, l := range lags {
			require.Zero(ct, l.Lag, "partition %d: %+v", l.Partition, l)
			committed[l.Partition] = l.Committed
		}
	}, waitFor, 50*time.Millisecond)
	return committed
}

// highWatermarks reads the end offsets of a topic's partitions straight from the broker.
func highWatermarks(t *testing.T, topic string, partitions int) map[int32]int64 {
	t.Helper()
	cfg := testConfig(t)
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": cfg.BootstrapServers, "group.id": "unused"})
	require.NoError(t, err)
	defer c.Close()
	out := make(map[int32]int64, partitions)
	for p := range int32(partitions) {
		_, high, err := c.QueryWatermarkOffsets(topic, p, 5000)
		require.NoError(t, err)
		out[p] = high
	}
	return out
}

// messagesOf returns the accepted messages.
func (r *recorder) messagesOf() []*kafka.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.messages)
}

// deleteRecordsBefore deletes the records of a partition below offset, as retention would.
func deleteRecordsBefore(t *testing.T, topic string, partition int32, offset int64) {
	t.Helper()
	cfg := testConfig(t)
	a, err := ckafka.NewAdminClient(&ckafka.ConfigMap{"bootstrap.servers": cfg.BootstrapServers})
	require.NoError(t, err)
	defer a.Close()
	res, err := a.DeleteRecords(timeout(t, 10*time.Second), []ckafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: ckafka.Offset(offset)}})
	require.NoError(t, err)
	for _, r := range res.DeleteRecordsResults {
		require.NoError(t, r.TopicPartition.Error)
	}
}
