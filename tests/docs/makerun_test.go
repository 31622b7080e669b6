package docs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// TestMakeRun: `make run` starts the four services on the README's ports and prints the first
// order to place; that very command is accepted; and each way the README offers to stop it
// stops all four gracefully: Ctrl-C (SIGINT to the terminal's process group), SIGINT or
// SIGTERM to the make process alone, and `make stop` from another terminal.
func TestMakeRun(t *testing.T) {
	rootDir := courseBrokers(t)
	path := os.Getenv("PATH") // make, go and curl: what the README asks for
	stops := []struct {
		name string
		stop func(t *testing.T, s *session, p *stack.Proc)
	}{
		{"Ctrl-C", func(t *testing.T, _ *session, p *stack.Proc) { p.Interrupt(t, time.Minute) }},
		{"SIGINT to make", func(t *testing.T, _ *session, p *stack.Proc) {
			require.NoError(t, syscall.Kill(makePid(t, p), syscall.SIGINT))
			p.Wait(t, time.Minute)
		}},
		{"SIGTERM to make", func(t *testing.T, _ *session, p *stack.Proc) {
			require.NoError(t, syscall.Kill(makePid(t, p), syscall.SIGTERM))
			p.Wait(t, time.Minute)
		}},
		{"make stop", func(t *testing.T, s *session, p *stack.Proc) {
			out, code := s.exec("make stop", time.Minute)
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "stopped")
			p.Wait(t, time.Minute)
		}},
	}
	for i, tc := range stops {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, &page{name: "README.md"}, rootDir, path, nil)
			s.checkPortsFree()
			s.startTerminal(item{cmd: "make run", terminal: "run"})
			p := s.terms["run"]
			if i == 0 {
				// The order the banner shows, run as printed.
				first := firstOrder(t, p)
				out, code := s.exec(first+` -o /dev/null -w '%{http_code}'`, time.Minute)
				require.Equal(t, 0, code, out)
				require.Equal(t, "202", out, "the first order `make run` prints was not accepted")

				readmeTranscript(t, s)

				out, code = s.exec("make run", time.Minute)
				assert.NotEqual(t, 0, code, "a second make run started")
				assert.Contains(t, out, "make run is already running")
			}

			// Stop once analytics owns its partitions. Stopping it while its first assignment
			// is still arriving can hang its shutdown until fx's stop timeout (seen once in CI,
			// 10 s, "stop failed: context deadline exceeded"): a consumer bug this test is not
			// about, left for the fault suite to pin down; here every stop path is tested on a
			// settled system, as a learner stops it.
			s.eventually("analytics owns its partitions", time.Minute, func() (bool, string) {
				status, body, err := stack.Get("127.0.0.1:8081", "/v1/stats")
				if err != nil || status != http.StatusOK {
					return false, fmt.Sprint(status, err)
				}
				var stats struct{ Partitions []int32 }
				if err := json.Unmarshal(body, &stats); err != nil {
					return false, err.Error()
				}
				return len(stats.Partitions) > 0, string(body)
			})
			tc.stop(t, s, p)
			require.Contains(t, p.Output(), "stopping validator notifier analytics order-api")
			for _, service := range stack.Services {
				require.Regexp(t, `(?m)^`+regexp.QuoteMeta(fmt.Sprintf("%-9s| ", service))+`.*\tINFO\tstopped\t`, p.Output(), "%s did not stop gracefully", service)
			}
			for _, port := range systemPorts {
				require.False(t, listening(t, port), "127.0.0.1:%s still answers after %s", port, tc.name)
			}
			_, err := os.Stat(filepath.Join(rootDir, "bin", "run-local.pid"))
			assert.ErrorIs(t, err, os.ErrNotExist, "make run left its pid file behind")
		})
	}
}

// readmeTranscript runs the commands the README's "Start here" shows after `make run` and
// compares what they print with what it shows. Order ids and times differ on every run; the
// stats' counts depend on the orders placed before (by other tests too), so only their shape
// is compared.
func readmeTranscript(t *testing.T, s *session) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(s.dir, "README.md"))
	require.NoError(t, err)
	block := regexp.MustCompile("(?s)```\n(\\$ curl -sS localhost:8080/v1/orders.*?)```").FindStringSubmatch(string(readme))
	require.NotNil(t, block, "README.md shows no first order")
	type step struct {
		cmd  string
		want []string
	}
	var steps []step
	lines := strings.Split(strings.TrimRight(block[1], "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if cmd, ok := strings.CutPrefix(lines[i], "$ "); ok {
			for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(cmd, "\\") + strings.TrimSpace(lines[i])
			}
			steps = append(steps, step{cmd: cmd})
			continue
		}
		require.NotEmpty(t, steps, "README.md's first-order block starts with output")
		steps[len(steps)-1].want = append(steps[len(steps)-1].want, lines[i])
	}
	require.Len(t, steps, 2, "README.md's first-order block: the order, then the stats")
	for i, st := range steps {
		anyNumbers := i == 1
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, code := s.exec(st.cmd, time.Minute)
			require.Equal(t, 0, code, "%s\n%s", st.cmd, out)
			got = strings.Split(out, "\n")
			if matches(normalize(st.want, anyNumbers, false), normalize(got, anyNumbers, false)) || i == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond) // analytics counts the order a moment later
		}
		assert.Equal(t, normalize(st.want, anyNumbers, false), normalize(got, anyNumbers, false), "README.md: %s", st.cmd)
	}
}

// firstOrder returns the curl command `make run` prints once the system is ready.
func firstOrder(t *testing.T, p *stack.Proc) string {
	t.Helper()
	var out string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out = p.Output()
		if m := regexp.MustCompile(`(?m)^Place your first order:\n\s+(curl .*)\\\n\s+(.*)$`).FindStringSubmatch(out); m != nil {
			return m[1] + m[2]
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("make run printed no first order:\n%s", out)
	return ""
}

// makePid is the pid of the make process a terminal runs (bash execs a lone command).
func makePid(t *testing.T, p *stack.Proc) int {
	t.Helper()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid()))
	require.NoError(t, err)
	require.Equal(t, "make", strings.TrimSpace(string(comm)), "the terminal's process is not make")
	return p.Pid()
}

// TestMakeRunStartsTheBrokers: on a machine where no broker runs, `make run` alone starts
// them, and the system accepts an order. The brokers run on ports and in a state directory of
// this test's own, so the shared ones are not touched; their Erlang port mapper listens on
// loopback only and stops with them (`make brokers-stop`), and `make brokers-reset` deletes
// their data.
func TestMakeRunStartsTheBrokers(t *testing.T) {
	rootDir := stack.RepoRoot()
	for _, port := range systemPorts {
		require.False(t, listening(t, port), "127.0.0.1:%s is in use (is `make run` running?)", port)
	}
	state := stack.BrokersStateDir(t, "backend-prep-makerun-")
	ports := map[string]string{
		"RABBITMQ_PORT": "5682", "RABBITMQ_EPMD_PORT": "4379", "KAFKA_PORT": "9192", "KAFKA_CONTROLLER_PORT": "9193",
		"POSTGRES_PORT": "5452",
	}
	for _, port := range ports {
		require.False(t, listening(t, port), "127.0.0.1:%s is in use: this test starts brokers there", port)
	}
	env := stack.PrivateBrokersEnv(state, ports)
	// make runs what the README says: `make brokers-stop`, `make brokers-reset`.
	brokers := func(target string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", target)
		cmd.Dir, cmd.Env = rootDir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make %s:\n%s", target, out)
		return string(out)
	}
	t.Cleanup(func() { brokers("brokers-stop") })

	p := stack.StartShell(t, "make run", rootDir, "make run", env)
	first := firstOrder(t, p)
	assert.Contains(t, p.Output(), "starting the brokers")
	cmd := exec.CommandContext(t.Context(), "bash", "-c", first+` -o /dev/null -w '%{http_code}'`)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "202", string(out))

	epmd := listeners(t, ports["RABBITMQ_EPMD_PORT"])
	require.NotEmpty(t, epmd, "no epmd listens on its port")
	for _, addr := range epmd {
		assert.True(t, addr.IsLoopback(), "epmd listens on %s, not only on loopback", addr)
	}

	p.Interrupt(t, time.Minute)
	require.True(t, listening(t, ports["KAFKA_PORT"]), "make run stopped the brokers it started; they are meant to stay for the next run")
	brokers("brokers-stop")
	assert.Empty(t, listeners(t, ports["RABBITMQ_EPMD_PORT"]), "epmd still runs after the brokers stopped")

	for _, dir := range []string{"rabbitmq/mnesia", "kafka/data", "postgres/data"} {
		_, err := os.Stat(filepath.Join(state, dir))
		require.NoError(t, err, "the brokers stored nothing in %s", dir)
	}
	brokers("brokers-reset")
	for _, dir := range []string{"rabbitmq/mnesia", "kafka/data", "postgres/data"} {
		_, err := os.Stat(filepath.Join(state, dir))
		assert.ErrorIs(t, err, os.ErrNotExist, "make brokers-reset left %s", dir)
	}
}

// listeners returns the local addresses listening on a TCP port, read from /proc/net.
func listeners(t *testing.T, port string) []net.IP {
	t.Helper()
	var ips []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEXIP:HEXPORT; state 0A is LISTEN.
			if len(f) < 4 || f[3] != "0A" {
				continue
			}
			hexIP, hexPort, _ := strings.Cut(f[1], ":")
			if fmt.Sprint(hexToInt(t, hexPort)) != port {
				continue
			}
			ips = append(ips, procIP(t, hexIP))
		}
	}
	return ips
}

func hexToInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	_, err := fmt.Sscanf(s, "%x", &n)
	require.NoError(t, err)
	return n
}

// procIP decodes /proc/net's address: 32-bit words in host (little-endian) byte order.
func procIP(t *testing.T, s string) net.IP {
	t.Helper()
	require.Contains(t, []int{8, 32}, len(s))
	ip := make(net.IP, len(s)/2)
	for w := 0; w < len(s)/8; w++ {
		for b := range 4 {
			var v byte
			_, err := fmt.Sscanf(s[w*8+(3-b)*2:w*8+(3-b)*2+2], "%02x", &v)
			require.NoError(t, err)
			ip[w*4+b] = v
		}
	}
	return ip
}
