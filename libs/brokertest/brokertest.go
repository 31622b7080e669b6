// Package brokertest gives integration tests a real RabbitMQ, a real Apache Kafka and a real
// PostgreSQL.
//
// Where a broker comes from, in order:
//
//  1. the environment: KAFKA_BOOTSTRAP_SERVERS / RABBITMQ_URL / POSTGRES_URL, as `make brokers` (scripts/brokers)
//     and CI provide them;
//  2. a container started with testcontainers-go when a Docker engine answers: one per broker and
//     test binary, shared by all of its tests, removed by testcontainers' reaper when the binary
//     exits, or earlier by [Main];
//  3. nowhere: the test fails with a message naming both ways to get one. A missing broker is never
//     a skip, on a laptop or in CI.
//
// The one exception is `go test -short` (`make test-unit`), which asks for the tests that need no
// broker: there integration tests say so and skip. `make test` and CI never pass -short, and with
// CI=true -short is refused, so an integration test cannot pass unrun there.
//
// Tests share the brokers, so each one isolates itself with [UniqueName] and cleans up after itself.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// KafkaBootstrap returns the bootstrap servers of a real Kafka broker.
func KafkaBootstrap(t testing.TB) string {
	t.Helper()
	unitOnly(t)
	addr, err := local.address(kafka)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// RabbitMQURL returns the AMQP URL of a real RabbitMQ broker.
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	unitOnly(t)
	addr, err := local.address(rabbitmq)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// PostgresURL returns the libpq URL (postgres://…) of a real PostgreSQL server, from
// POSTGRES_URL (`make brokers` and CI export it) or a container. Tests sharing it isolate their
// tables, e.g. in a schema of their own.
func PostgresURL(t testing.TB) string {
	t.Helper()
	unitOnly(t)
	addr, err := local.address(postgres)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// unitOnly skips an integration test under -short, except in CI where it fails instead.
func unitOnly(t testing.TB) {
	t.Helper()
	if !local.short() {
		return
	}
	if local.getenv("CI") == "true" {
		t.Fatal("integration test run with -short in CI: CI runs `make test`, which needs real brokers")
	}
	t.Skip("integration test: needs a real broker, not run by -short (make test-unit); make test runs it")
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// UniqueName returns a name for a topic, queue or group that no other test run uses.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return prefix + "." + name + "." + hex.EncodeToString(b)
}

// restartSteps stop and start the RabbitMQ application (not the Erlang node): every client
// connection drops, queues and messages stay.
var restartSteps = [][]string{{"stop_app"}, {"start_app"}, {"await_startup"}}

// RestartRabbitMQ stops and starts the RabbitMQ application (not the Erlang node), which drops
// every client connection, and waits until the broker accepts connections again.
//
// With RABBITMQ_URL set, the command is RABBITMQCTL (split on spaces; `scripts/brokers env` sets
// it), else rabbitmqctl from PATH. With a container, rabbitmqctl runs inside it.
func RestartRabbitMQ(t testing.TB) {
	t.Helper()
	if local.getenv(rabbitmq.envVar) == "" {
		RabbitMQURL(t) // fails the test the same way when there is no broker at all
		restartRabbitMQContainer(t)
		return
	}
	ctl := rabbitmqctl(local.getenv)
	for _, args := range restartSteps {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, ctl[0], append(ctl[1:], args...)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(ctl, " "), args[0], err, out)
		}
	}
}

// rabbitmqctl is the command that controls the broker named by RABBITMQ_URL.
func rabbitmqctl(getenv func(string) string) []string {
	if ctl := strings.Fields(getenv("RABBITMQCTL")); len(ctl) > 0 {
		return ctl
	}
	return []string{"rabbitmqctl"}
}

// Main runs the tests of a package, then removes the broker containers they started, if any, and
// exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { brokertest.Main(m) }
//
// Without it the containers live until testcontainers' reaper notices that the test binary is gone.
func Main(m *testing.M) {
	code := m.Run()
	if err := terminateContainers(); err != nil {
		fmt.Fprintln(os.Stderr, "brokertest:", err)
	}
	os.Exit(code)
}
