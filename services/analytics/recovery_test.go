package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
)

// replicaEnv, set in a child process's environment, makes the test binary run the service
// (see TestMain): a replica that the test can kill with SIGKILL, as a crash or the kernel would.
const replicaEnv = "ANALYTICS_TEST_REPLICA"

// measureEnv asks TestRecovery for the whole comparison behind the README's table (the session
// timeouts and static membership), which takes a few minutes; without it only the defaults run.
const measureEnv = "ANALYTICS_MEASURE_RECOVERY"

// replica is the analytics service in a process of its own.
type replica struct {
	t       *testing.T
	cmd     *exec.Cmd
	http    string
	admin   string
	logPath string
	exited  chan struct{}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startReplica runs the service with the environment env on top of the test's own, until the
// test kills or stops it (or ends).
func startReplica(t *testing.T, name string, env map[string]string) *replica {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	r := &replica{t: t, http: freeAddr(t), admin: freeAddr(t), logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(r.logPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })

	r.cmd = exec.Command(exe, "-test.run=^$")
	r.cmd.Env = append(os.Environ(), replicaEnv+"=1", "HTTP_ADDR="+r.http, "ADMIN_ADDR="+r.admin, "LOG_FORMAT=console")
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	require.NoError(t, r.cmd.Start())
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			r.dumpLog()
		}
	})
	return r
}

func (r *replica) dumpLog() {
	body, err := os.ReadFile(r.logPath)
	if err == nil {
		lines := strings.Split(string(body), "\n")
		r.t.Logf("%s (last lines):\n%s", r.logPath, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// kill ends the replica with SIGKILL: it cannot leave its group.
func (r *replica) kill() {
	require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGKILL))
	<-r.exited
}

// stop ends the replica with SIGTERM and waits until it exited.
func (r *replica) stop() {
	require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-r.exited:
	case <-time.After(waitFor):
		r.t.Fatal("the replica did not stop after SIGTERM")
	}
}

// answer is one GET /v1/stats: its status and, for a 200, its totals.
type answer struct {
	status int
	stats  httpapi.Response
	body   string
}

func (r *replica) ask() (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.http+"/v1/stats", nil)
	if err != nil {
		return answer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err // not listening yet
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, body: string(body)}
	if a.status == http.StatusOK {
		if err := json.Unmarshal(body, &a.stats); err != nil {
			return answer{}, err
		}
	}
	return a, nil
}

// awaitTruth polls GET /v1/stats until it answers want, and fails on any 200 that is not want:
// while it recovers a replica says so (503), it never serves partial totals as an answer. It
// returns how many 503s it saw.
func (r *replica) awaitTruth(want httpapi.Response) (unavailable int) {
	r.t.Helper()
	deadline := time.Now().Add(2 * waitFor)
	for time.Now().Before(deadline) {
		a, err := r.ask()
		switch {
		case err != nil:
		case a.status == http.StatusServiceUnavailable:
			unavailable++
		case a.status == http.StatusOK:
			require.Equal(r.t, want, totals(a.stats), "a 200 is the right answer, never a partial one")
			return unavailable
		default:
			r.t.Fatalf("GET /v1/stats: %d %s", a.status, a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("no right answer within %s", 2*waitFor)
	return unavailable
}

// recovery runs one replica over a log of orders, ends it (SIGKILL or SIGTERM), starts its
// replacement at once, and returns how long after the end the replacement served the right
// totals.
func recovery(t *testing.T, crash bool, env map[string]string) time.Duration {
	t.Helper()
	topic, group := newTopic(t), brokertest.UniqueName(t, "analytics")
	events := newLog(t, topic)
	events.orders(0, 500)
	events.orders(0, 50)
	want := events.truth()

	cfg := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": brokertest.KafkaBootstrap(t),
		"KAFKA_TOPIC":             topic,
		"ANALYTICS_GROUP_ID":      group,
		"LAG_REFRESH_INTERVAL":    "1s",
		"SHUTDOWN_TIMEOUT":        "20s",
	}
	for k, v := range env {
		cfg[k] = v
	}
	first := startReplica(t, "first", cfg)
	first.awaitTruth(want)

	ended := time.Now()
	if crash {
		first.kill()
	} else {
		first.stop()
	}
	second := startReplica(t, "second", cfg)
	unavailable := second.awaitTruth(want)
	took := time.Since(ended)
	t.Logf("answered 503 %d times before the right totals", unavailable)
	return took
}

// TestRecovery measures how long a replica that replaces a killed or a stopped one takes to
// serve the right totals, and checks that it never serves wrong ones meanwhile. With the
// defaults, a crash costs at most KAFKA_SESSION_TIMEOUT (the group waits that long for the dead
// member) plus the join and the rebuild.
func TestRecovery(t *testing.T) {
	t.Parallel()
	type setup struct {
		name string
		env  map[string]string
	}
	setups := []setup{{name: "defaults (session timeout 6s)"}}
	if os.Getenv(measureEnv) != "" {
		setups = append(setups,
			setup{"session timeout 45s", map[string]string{"KAFKA_SESSION_TIMEOUT": "45s", "KAFKA_HEARTBEAT_INTERVAL": "3s"}},
			setup{"static member, session timeout 45s", map[string]string{
				"KAFKA_SESSION_TIMEOUT": "45s", "KAFKA_HEARTBEAT_INTERVAL": "3s", "KAFKA_GROUP_INSTANCE_ID": "analytics-0",
			}},
			setup{"static member, session timeout 6s", map[string]string{"KAFKA_GROUP_INSTANCE_ID": "analytics-0"}},
		)
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			killed := recovery(t, true, s.env)
			stopped := recovery(t, false, s.env)
			t.Logf("FIGURE %s: right totals %s after SIGKILL, %s after SIGTERM",
				s.name, killed.Round(100*time.Millisecond), stopped.Round(100*time.Millisecond))
			if s.env == nil {
				assert.LessOrEqual(t, killed, 15*time.Second, "recovered from a crash within 15s")
			}
		})
	}
}

// TestRecovery_StopDuringTheFirstAssignment sends SIGTERM as soon as a replica answers, while it
// joins its group and starts rebuilding. Stopping must not wait for the lag gauge's broker
// requests: they used to hold the consumer's lock through uninterruptible librdkafka calls
// (up to two of 5s each) that closing the consumer had to wait for.
func TestRecovery_StopDuringTheFirstAssignment(t *testing.T) {
	t.Parallel()
	topic := newTopic(t)
	events := newLog(t, topic)
	events.orders(0, 200)
	r := startReplica(t, "stopped-early", map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": brokertest.KafkaBootstrap(t),
		"KAFKA_TOPIC":             topic,
		"ANALYTICS_GROUP_ID":      brokertest.UniqueName(t, "analytics"),
		"LAG_REFRESH_INTERVAL":    "100ms",
		"SHUTDOWN_TIMEOUT":        "20s",
	})
	// SIGTERM during fx's start ends the process the hard way (that is the platform's business);
	// here the service has started and the group has just assigned its partitions.
	require.Eventually(t, func() bool {
		body, err := os.ReadFile(r.logPath)
		return err == nil && strings.Contains(string(body), "partitions assigned")
	}, waitFor, 5*time.Millisecond)

	signalled := time.Now()
	r.stop()
	took := time.Since(signalled)
	t.Logf("FIGURE: SIGTERM during the first assignment: exited after %s", took.Round(10*time.Millisecond))
	assert.Less(t, took, 5*time.Second, "no lag request held the stop up")
	body, err := os.ReadFile(r.logPath)
	require.NoError(t, err)
	assert.Contains(t, string(body), "consumer stopped", "the consumer closed (and left its group) before the exit")
}
