package chaos_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// brokers are the suite's own RabbitMQ and Kafka, started by scripts/brokers (what `make
// brokers` runs) in a state directory and on ports of their own: the faults below kill and
// stop them, which no other suite sharing the usual brokers could survive.
type brokers struct {
	script string
	state  string
	env    []string
	// vars is what `scripts/brokers env` exports for these brokers.
	vars map[string]string
}

// ports of the suite's brokers, away from the defaults of `make brokers` and from the ports
// tests/docs starts its own brokers on.
var brokerPorts = map[string]string{
	"RABBITMQ_PORT":         "5702",
	"RABBITMQ_EPMD_PORT":    "4399",
	"RABBITMQ_NODENAME":     "chaos@localhost",
	"KAFKA_PORT":            "9292",
	"KAFKA_CONTROLLER_PORT": "9293",
	"POSTGRES_PORT":         "5442",
}

// startBrokers starts brokers with settings (ports, profile: scripts/brokers' environment) and
// stops them, deleting their data, when the test ends.
func startBrokers(t *testing.T, prefix string, settings map[string]string) *brokers {
	t.Helper()
	b := &brokers{
		script: filepath.Join(stack.RepoRoot(), "scripts", "brokers"),
		state:  stack.BrokersStateDir(t, prefix),
	}
	b.env = stack.PrivateBrokersEnv(b.state, settings)
	began := time.Now()
	t.Cleanup(func() { b.run(t, 2*time.Minute, "down") })
	b.run(t, 5*time.Minute, "up")
	t.Logf("the suite's brokers started in %s", time.Since(began).Round(100*time.Millisecond))
	b.vars = b.exported(t)
	require.NotEmpty(t, b.vars["KAFKA_BOOTSTRAP_SERVERS"])
	require.NotEmpty(t, b.vars["RABBITMQ_URL"])
	require.NotEmpty(t, b.vars["POSTGRES_URL"])
	return b
}

// exported returns what `eval "$(scripts/brokers env)"` sets, as the shell unquotes it.
func (b *brokers) exported(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names := b.run(t, time.Minute, "env")
	cmd := exec.CommandContext(ctx, "bash", "-c", `eval "$("$0" env)" && env -0`, b.script)
	cmd.Env = b.env
	out, err := cmd.Output()
	require.NoError(t, err)
	vars := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		name, value, _ := strings.Cut(kv, "=")
		if strings.Contains(names, "export "+name+"=") {
			vars[name] = value
		}
	}
	return vars
}

// run runs scripts/brokers with args and returns its output, failing the test when it fails.
func (b *brokers) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.script, args...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "scripts/brokers %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// killKafka kills the Kafka broker whose state is in dir ("kafka", or "kafka-N" for node N of
// the ha profile) with SIGKILL, as a crash or an OOM kill would, and waits until it is gone.
func (b *brokers) killKafka(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.state, dir, "server.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	// scripts/brokers starts Kafka in a session of its own: the java process leads its group.
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if gone(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("kafka (pid %d) still runs 10s after SIGKILL", pid)
}

// gone reports whether pid has exited: no such process, or a zombie nobody reaped yet (the
// broker's parent, scripts/brokers, exited long ago).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
	_, rest, ok := strings.Cut(string(stat)[strings.LastIndexByte(string(stat), ')'):], ") ")
	return ok && strings.HasPrefix(rest, "Z")
}
