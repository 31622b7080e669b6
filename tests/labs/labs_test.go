// Package labs_test proves the hands-on part of the learning path (labs/) against the real
// system: the self-checks of steps 3 to 6 pass against the four services on real brokers and
// fail when the service they are about is stopped, the example programs work against the real
// brokers, and the Tilt UI has a self-check button for every step.
package labs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// stateDir holds the learner's progress while the tests run.
var stateDir string

func TestMain(m *testing.M) {
	var err error
	if stateDir, err = os.MkdirTemp("", "backend-prep-labs-state-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(stateDir)
	stack.RemoveBinaries()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// programs are the commands of the labs module, by the name the tests use for them.
var programs = map[string]string{
	"selfcheck":         "./selfcheck",
	"rabbitmq-producer": "./examples/rabbitmq/producer",
	"rabbitmq-delete":   "./examples/rabbitmq/delete",
	"rabbitmq-consumer": "./examples/rabbitmq/consumer",
	"kafka-producer":    "./examples/kafka/producer",
	"kafka-consumer":    "./examples/kafka/consumer",
	"kafka-topics":      "./examples/kafka/topics",
	"grpc-server":       "./examples/grpc/server",
	"grpc-client":       "./examples/grpc/client",
	"grpc-price":        "./examples/grpc/price",
	"grpc-quote":        "./examples/grpc/quote",
}

var (
	buildOnce sync.Once
	binDir    string
	errBuild  error
)

// program returns the path of a labs command, building them all on first use.
func program(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, errBuild = os.MkdirTemp("", "backend-prep-labs-bin-")
		if errBuild != nil {
			return
		}
		dir := filepath.Join(stack.RepoRoot(), "labs")
		for bin, pkg := range programs {
			if errBuild = stack.Build(dir, filepath.Join(binDir, bin), pkg, buildEnv()...); errBuild != nil {
				return
			}
		}
	})
	require.NoError(t, errBuild)
	require.Contains(t, programs, name)
	return filepath.Join(binDir, name)
}

// buildEnv builds the labs module on its own (as its replace directives allow) until go.work
// lists it; then learners' `go run ./labs/...` and this build use the workspace alike.
func buildEnv() []string {
	work, err := os.ReadFile(filepath.Join(stack.RepoRoot(), "go.work"))
	if err == nil && strings.Contains(string(work), "./labs\n") {
		return nil
	}
	return []string{"GOWORK=off"}
}

// result is how a command ended.
type result struct {
	code   int
	output string // stdout and stderr
}

// run runs a labs command to its end, with only PATH in its environment so that nothing but
// its flags points it at a broker, and fails the test if it is still running after timeout.
func run(t *testing.T, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	return runWith(t, timeout, nil, name, args...)
}

// goEnv is the environment the go command needs (its caches and settings), for a program that
// runs it.
func goEnv() []string {
	var env []string
	for _, name := range []string{"HOME", "GOCACHE", "GOPATH", "GOMODCACHE", "GOFLAGS", "GOPROXY", "GONOSUMDB", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// runWith is run with more environment variables.
func runWith(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program(t, name), args...)
	// The progress the self-checks and the lab keep goes to a directory of the tests' own.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "BACKEND_PREP_STATE_DIR=" + stateDir}, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "%s %v did not finish within %s:\n%s", name, args, timeout, out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return result{code: exit.ExitCode(), output: string(out)}
	}
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return result{code: 0, output: string(out)}
}

// start runs a long-lived labs command (a server, a consumer) that the test stops or awaits.
func start(t *testing.T, name string, args ...string) *stack.Proc {
	t.Helper()
	return stack.StartProcess(t, name, program(t, name), args, nil)
}

// amqpChannel opens a channel for test setup and cleanup. amqp091-go's methods take no
// context: the connection is closed after a while, which ends whatever still waits on it.
func amqpChannel(t *testing.T, amqpURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	deadline := time.AfterFunc(15*time.Second, func() { _ = conn.Close() })
	t.Cleanup(func() {
		deadline.Stop()
		_ = conn.Close()
	})
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}
