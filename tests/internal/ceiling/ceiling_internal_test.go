package ceiling

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// need returns the value of the environment variable that names a broker. Without it the test
// skips, except in CI (CI=true), where `scripts/brokers env` exports it and a skip would hide a
// broken setup.
func need(t *testing.T, env string) string {
	t.Helper()
	integration(t)
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI exports `scripts/brokers env`", env)
		}
		t.Skipf("%s is not set: make brokers, then eval \"$(scripts/brokers env)\" (make test does)", env)
	}
	return v
}

// needCommand skips without the command outside CI and fails without it in CI.
func needCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: CI installs it", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// integration skips under -short, which asks for the tests that start nothing, except in CI.
func integration(t *testing.T) {
	t.Helper()
	if !testing.Short() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("integration test run with -short in CI: CI runs `make test`")
	}
	t.Skip("integration test: runs real brokers and servers, not run by -short")
}

// checkSane checks what every measurement must give.
func checkSane(t *testing.T, r Result, minElapsed time.Duration) {
	t.Helper()
	t.Log(r)
	assert.NotEmpty(t, r.Name)
	assert.Positive(t, r.Ops, "operations completed")
	assert.Zero(t, r.Errors, "failed operations")
	assert.GreaterOrEqual(t, r.Elapsed, minElapsed)
	assert.Less(t, r.Elapsed, minElapsed+30*time.Second)
	assert.Positive(t, r.PerSecond())
	assert.Positive(t, r.P50, "p50")
	assert.LessOrEqual(t, r.P50, r.P95, "p50 <= p95")
	assert.LessOrEqual(t, r.P95, r.P99, "p95 <= p99")
	assert.LessOrEqual(t, r.P99, r.Max, "p99 <= max")
	assert.Positive(t, r.Avg, "average")
	assert.LessOrEqual(t, r.Avg, r.Max, "average <= max")
	assert.Positive(t, r.ClientCPU, "the load generator's CPU time")
}

func TestRabbitMQConfirm(t *testing.T) {
	url := need(t, "RABBITMQ_URL")
	for _, queueType := range []string{"quorum", "classic"} {
		t.Run(queueType, func(t *testing.T) {
			var queue string
			testHookQueue = func(name string) { queue = name }
			t.Cleanup(func() { testHookQueue = nil })

			r, err := RabbitMQConfirm(context.Background(), RabbitMQOptions{
				URL: url, Publishers: 4, Duration: time.Second, QueueType: queueType, BodySize: 300,
				MeasurePID: os.Getpid(), // any live process: its CPU time is read
			})
			require.NoError(t, err)
			checkSane(t, r, time.Second)
			assert.Contains(t, r.Name, queueType+" queue")
			assert.Contains(t, r.Name, "4 publishers")
			assert.Positive(t, r.ServerCPU, "CPU time of MeasurePID")

			// The queue is gone afterwards.
			require.NotEmpty(t, queue)
			conn, err := amqp.Dial(url)
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			ch, err := conn.Channel()
			require.NoError(t, err)
			_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			var amqpErr *amqp.Error
			require.ErrorAs(t, err, &amqpErr, "queue %s still exists", queue)
			assert.Equal(t, amqp.NotFound, amqpErr.Code)
		})
	}
}

func TestRabbitMQConfirmRefusesBadOptions(t *testing.T) {
	_, err := RabbitMQConfirm(context.Background(), RabbitMQOptions{URL: "amqp://x", Duration: time.Second, QueueType: "stream"})
	require.ErrorContains(t, err, "quorum or classic")
	_, err = RabbitMQConfirm(context.Background(), RabbitMQOptions{URL: "amqp://x"})
	require.ErrorContains(t, err, "Duration")
}

func TestKafkaProducerPerformance(t *testing.T) {
	bootstrap := need(t, "KAFKA_BOOTSTRAP_SERVERS")
	needCommand(t, "java")
	needCommand(t, "mvn")
	var progress lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic := "ceiling.test." + stack.UniqueSuffix()
	r, err := KafkaProducerPerformance(ctx, KafkaOptions{
		Bootstrap: bootstrap, Topic: topic, Partitions: 3,
		Records: 20000, RecordSize: 300, Linger: 5 * time.Millisecond,
		Duration: 3 * time.Minute, Progress: &progress,
	})
	require.NoError(t, err, "output:\n%s", progress.String())
	checkSane(t, r, time.Millisecond)
	assert.Equal(t, int64(20000), r.Ops)
	assert.Contains(t, r.Name, "linger.ms=5")
	assert.Contains(t, progress.String(), "20000 records sent, ", "the summary went to Progress")

	// With warm-up records the result is the tool's steady-state summary.
	r, err = KafkaProducerPerformance(ctx, KafkaOptions{
		Bootstrap: bootstrap, Records: 20000, WarmupRecords: 5000, RecordSize: 300, Duration: 3 * time.Minute,
	})
	require.NoError(t, err)
	checkSane(t, r, time.Millisecond)
	assert.Equal(t, int64(15000), r.Ops)
	assert.Contains(t, r.Name, "the last 15000 after 5000 warm-up records")

	// The topic this call created is gone.
	cp, err := kafkaToolsClasspath(ctx)
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, javaCommand(), "-cp", cp, "org.apache.kafka.tools.TopicCommand",
		"--bootstrap-server", bootstrap, "--list").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, strings.Fields(string(out)), topic)
}

// The cap kills the tool and says so.
func TestKafkaProducerPerformanceCap(t *testing.T) {
	bootstrap := need(t, "KAFKA_BOOTSTRAP_SERVERS")
	needCommand(t, "java")
	needCommand(t, "mvn")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := kafkaToolsClasspath(ctx) // resolved before the clock of the cap runs
	require.NoError(t, err)
	start := time.Now()
	_, err = KafkaProducerPerformance(ctx, KafkaOptions{
		Bootstrap: bootstrap, Records: 100_000_000, RecordSize: 300, Duration: 5 * time.Second,
	})
	require.ErrorContains(t, err, "killed after its cap of 5s")
	assert.Less(t, time.Since(start), time.Minute)
}

func TestParsePerfSummary(t *testing.T) {
	// Lines as ProducerPerformance 4.3.1 prints them.
	s, ok := parsePerfSummary("50000 records sent, 17001.020061 records/sec (4.86 MB/sec), 960.13 ms avg latency, " +
		"1428.00 ms max latency, 965 ms 50th, 1368 ms 95th, 1414 ms 99th, 1428 ms 99.9th.")
	require.True(t, ok)
	var r Result
	s.fill(&r)
	assert.Equal(t, int64(50000), r.Ops)
	assert.InDelta(t, 17001.02, r.PerSecond(), 0.01)
	assert.Equal(t, 965*time.Millisecond, r.P50)
	assert.Equal(t, 1368*time.Millisecond, r.P95)
	assert.Equal(t, 1414*time.Millisecond, r.P99)
	assert.Equal(t, 960130*time.Microsecond, r.Avg)
	assert.Equal(t, 1428*time.Millisecond, r.Max)

	s, ok = parsePerfSummary("40000 steady state records sent, 20000.0 records/sec (5.72 MB/sec), 1.00 ms avg latency, " +
		"9.00 ms max latency, 1 ms 50th, 2 ms 95th, 3 ms 99th, 9 ms 99.9th.")
	require.True(t, ok)
	assert.True(t, s.steadyState)

	s, ok = parsePerfSummary("0 records sent, 0.000000 records/sec (0.00 MB/sec), NaN ms avg latency, " +
		"0.00 ms max latency, 0 ms 50th, 0 ms 95th, 0 ms 99th, 0 ms 99.9th.")
	require.True(t, ok)
	assert.Zero(t, s.records)

	_, ok = parsePerfSummary("25740 records sent, 25611.9 records/sec (7.33 MB/sec), 721.5 ms avg latency, 1219.0 ms max latency.")
	assert.False(t, ok, "a progress line")

	assert.True(t, exceptionLine.MatchString("org.apache.kafka.common.errors.TimeoutException: Topic x not present in metadata after 3000 ms."))
	assert.False(t, exceptionLine.MatchString("\tat org.apache.kafka.clients.producer.KafkaProducer.send(KafkaProducer.java:1)"))
}

func TestGRPCUnary(t *testing.T) {
	integration(t)
	needCommand(t, "go")
	for _, c := range []int{1, 8} {
		r, err := GRPCUnary(context.Background(), GRPCOptions{Concurrency: c, Duration: time.Second})
		require.NoError(t, err)
		// ghz's clock starts once its connection is open, after GRPCLoad's timer.
		checkSane(t, r, 900*time.Millisecond)
		assert.Positive(t, r.ServerPID)
		assert.Positive(t, r.ServerCPU, "the server's CPU time")
		assert.Positive(t, r.ServerCPUPerOp())
		_, alive := procCPU(r.ServerPID)
		assert.False(t, alive, "the server has exited")
	}
}

// GRPCLoad's defaults load the real validator's ValidateOrder with a valid order; JSON data works
// as well as a proto.Message.
func TestGRPCLoadValidator(t *testing.T) {
	integration(t)
	needCommand(t, "go")
	bin := filepath.Join(t.TempDir(), "validator")
	require.NoError(t, stack.Build(stack.RepoRoot(), bin, "./services/validator"))
	grpcAddr, adminAddr := stack.FreeAddr(t), stack.FreeAddr(t)
	p := stack.StartProcess(t, "validator", bin, nil, map[string]string{
		"GRPC_ADDR": grpcAddr, "ADMIN_ADDR": adminAddr, "LOG_LEVEL": "warn",
	})
	stack.WaitReady(t, p, adminAddr, time.Minute)

	r, err := GRPCLoad(context.Background(), GRPCLoadOptions{
		Target: grpcAddr, Concurrency: 4, Duration: time.Second, MeasurePID: p.Pid(),
	})
	require.NoError(t, err)
	checkSane(t, r, 900*time.Millisecond) // ghz's clock starts once its connection is open
	assert.Contains(t, r.Name, ValidateOrder)
	assert.Positive(t, r.ServerCPU)

	r, err = GRPCLoad(context.Background(), GRPCLoadOptions{
		Target: grpcAddr, Method: "/orders.v1.OrderValidation/ValidateOrder", Duration: time.Second,
		Data: `{"customer_id":"c-7","items":[{"sku":"BOOK-001","quantity":1}]}`,
	})
	require.NoError(t, err)
	checkSane(t, r, 900*time.Millisecond)

	// An invalid order is an error of every call, and no call counts as done.
	r, err = GRPCLoad(context.Background(), GRPCLoadOptions{
		Target: grpcAddr, Duration: 500 * time.Millisecond, Data: `{"customer_id":"c-7","items":[]}`,
	})
	require.ErrorContains(t, err, "InvalidArgument")
	assert.Zero(t, r.Ops)
	assert.Positive(t, r.Errors)
}

func TestLatencies(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	var r Result
	l.fill(&r)
	assert.Equal(t, 50*time.Millisecond, r.P50)
	assert.Equal(t, 95*time.Millisecond, r.P95)
	assert.Equal(t, 99*time.Millisecond, r.P99)
	assert.Equal(t, 100*time.Millisecond, r.Max)
	assert.Equal(t, 50500*time.Microsecond, r.Avg)
	assert.Equal(t, -1.0, Result{Ops: 10}.ServerCPUPerOp())
	assert.InDelta(t, 100.0, Result{Ops: 10, ServerCPU: time.Millisecond}.ServerCPUPerOp(), 1e-9)
	assert.InDelta(t, 2.0, Result{Ops: 4, Elapsed: 2 * time.Second}.PerSecond(), 1e-9)
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The tools are the broker's release, with the same log4j: one Kafka version to bump, in
// scripts/brokers.d/kafka/pom.xml, and this package's pom and constant follow it.
func TestKafkaToolsFollowTheBroker(t *testing.T) {
	property := func(pom, name string) string {
		b, err := os.ReadFile(filepath.Join(stack.RepoRoot(), pom))
		require.NoError(t, err)
		m := regexp.MustCompile(`<` + regexp.QuoteMeta(name) + `>([^<]+)</`).FindSubmatch(b)
		require.NotNil(t, m, "%s sets %s", pom, name)
		return string(m[1])
	}
	const broker, tools = "scripts/brokers.d/kafka/pom.xml", "tests/internal/ceiling/kafkatools/pom.xml"
	assert.Equal(t, property(broker, "kafka.version"), KafkaVersion)
	assert.Equal(t, property(broker, "kafka.version"), property(tools, "kafka.version"))
	assert.Equal(t, property(broker, "log4j.version"), property(tools, "log4j.version"))
}
