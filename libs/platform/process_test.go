package platform_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run internal/testapp as a real process: what a service's main does with signals,
// bad configuration and start-up failures is only observable from outside.

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// testapp builds the example service once per test run and returns the binary's path.
func testapp(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "platform-testapp-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "testapp")
		out, err := exec.Command("go", "build", "-o", binPath, "./internal/testapp").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr, "build testapp")
	return binPath
}

// baseEnv makes the process independent of the environment the tests run in.
var baseEnv = []string{
	"ADMIN_ADDR=127.0.0.1:0",
	"HTTP_ADDR=127.0.0.1:0",
	"GRPC_ADDR=127.0.0.1:0",
	"SHUTDOWN_TIMEOUT=10s",
}

// logLines collects the process's JSON log lines as they arrive.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	added chan struct{}
}

func (l *logLines) read(t *testing.T, r *bufio.Scanner) {
	for r.Scan() {
		var line map[string]any
		if err := json.Unmarshal(r.Bytes(), &line); err != nil {
			t.Errorf("log line is not JSON: %q", r.Text())
			continue
		}
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
		select {
		case l.added <- struct{}{}:
		default:
		}
	}
}

// find returns the first line with msg, waiting up to timeout for it.
func (l *logLines) find(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if line["msg"] == msg {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %q log line within %s", msg, timeout)
		}
	}
}

type process struct {
	cmd    *exec.Cmd
	logs   *logLines
	stderr *bytes.Buffer
	exited chan struct{}
	done   chan struct{} // closed once stdout is fully read
}

func start(t *testing.T, extraEnv ...string) *process {
	t.Helper()
	cmd := exec.Command(testapp(t))
	cmd.Env = append(append([]string{}, baseEnv...), extraEnv...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &process{cmd: cmd, logs: &logLines{added: make(chan struct{}, 1)}, stderr: &bytes.Buffer{},
		exited: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.done)
		p.logs.read(t, bufio.NewScanner(stdout))
	}()
	go func() {
		<-p.done // Wait closes stdout, so read it all first
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process outlives timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("process still running after %s", timeout)
		return -1
	}
}

func TestProcessStopsCleanlyOnSIGTERM(t *testing.T) {
	p := start(t)
	adminAddr := p.logs.find(t, "admin server listening", 30*time.Second)["addr"].(string)
	httpAddr := p.logs.find(t, "http server listening", 5*time.Second)["addr"].(string)
	p.logs.find(t, "started", 5*time.Second)

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "ready")
	code, body := get(t, "http://"+httpAddr+"/hello")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hello", body)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))

	assert.Equal(t, 0, p.wait(t, 20*time.Second), "stderr: %s", p.stderr.String())
	assert.Equal(t, "terminated", p.logs.find(t, "stopping", time.Second)["signal"])
	p.logs.find(t, "stopped", time.Second)
	assert.Equal(t, "testapp", p.logs.find(t, "started", time.Second)["service"])
	for _, addr := range []string{adminAddr, httpAddr} {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		assert.Error(t, err, "%s is closed", addr)
	}
}

func TestProcessRefusesBadConfiguration(t *testing.T) {
	tests := []struct {
		name       string
		env        string
		wantStderr string
	}{
		{"bad duration", "SHUTDOWN_TIMEOUT=abc", `testapp: config: SHUTDOWN_TIMEOUT: time: invalid duration "abc"`},
		{"bad log level", "LOG_LEVEL=loud", `testapp: config: LOG_LEVEL: unrecognized level: "loud"`},
		{"bad service variable", "HTTP_ADDR=localhost", `testapp: config: HTTP_ADDR: invalid address "localhost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.env)

			code := p.wait(t, 20*time.Second)

			assert.Equal(t, 1, code)
			stderr := p.stderr.String()
			assert.True(t, strings.HasPrefix(stderr, tt.wantStderr), "stderr: %q", stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestProcessFailsWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })

	p := start(t, "HTTP_ADDR="+taken.Addr().String())

	assert.NotEqual(t, 0, p.wait(t, 20*time.Second))
	failed := p.logs.find(t, "start failed", time.Second)
	assert.Contains(t, failed["error"], "address already in use")
}

// healthcheck runs `testapp healthcheck` with env and returns its exit code and stderr.
func healthcheck(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(testapp(t), "healthcheck")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// `<service> healthcheck` is a container health check for an image with no shell: 0 while the
// service it probes is ready, 1 with a reason once it is gone or misconfigured.
func TestProcessHealthcheck(t *testing.T) {
	p := start(t)
	adminAddr := p.logs.find(t, "admin server listening", 30*time.Second)["addr"].(string)
	_, port, err := net.SplitHostPort(adminAddr)
	require.NoError(t, err)

	code, stderr := healthcheck(t, "ADMIN_ADDR=:"+port)
	assert.Equal(t, 0, code, "a ready service, probed on loopback from ADMIN_ADDR's port alone: %s", stderr)
	assert.Empty(t, stderr)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t, 20*time.Second))
	code, stderr = healthcheck(t, "ADMIN_ADDR="+adminAddr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "testapp healthcheck: not ready: GET http://"+adminAddr+"/readyz")

	code, stderr = healthcheck(t, "ADMIN_ADDR=nonsense")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "ADMIN_ADDR")
}
