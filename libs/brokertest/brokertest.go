// Package brokertest gives integration tests a real RabbitMQ and a real Apache Kafka.
//
// Brokers come from KAFKA_BOOTSTRAP_SERVERS / RABBITMQ_URL when those are set (as `make brokers`
// and CI provide them). A missing broker fails the test, never skips it.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	if v := os.Getenv("KAFKA_BOOTSTRAP_SERVERS"); v != "" {
		return v
	}
	t.Fatal("no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS (run `make brokers`) or start Docker for testcontainers")
	return ""
}

// RabbitMQURL returns the AMQP URL of a real RabbitMQ broker.
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("RABBITMQ_URL"); v != "" {
		return v
	}
	t.Fatal("no RabbitMQ broker: set RABBITMQ_URL (run `make brokers`) or start Docker for testcontainers")
	return ""
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

// RestartRabbitMQ stops and starts the RabbitMQ application (not the Erlang node), which drops
// every client connection, and waits until the broker accepts connections again. The command is
// RABBITMQCTL (split on spaces) when set, else rabbitmqctl from PATH.
func RestartRabbitMQ(t testing.TB) {
	t.Helper()
	ctl := strings.Fields(os.Getenv("RABBITMQCTL"))
	if len(ctl) == 0 {
		ctl = []string{"rabbitmqctl"}
	}
	for _, args := range [][]string{{"stop_app"}, {"start_app"}, {"await_startup"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, ctl[0], append(ctl[1:], args...)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(ctl, " "), args[0], err, out)
		}
	}
}
