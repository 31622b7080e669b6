package stack

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// keepLines, when positive, bounds the lines a Proc keeps (see KeepLines).
var keepLines int

// KeepLines makes every process started afterwards keep about its last n lines of output rather
// than all of them, for a run (a benchmark) whose services log a line per request: Tail still
// works, Output and WaitForOutput see only those lines. Call it from TestMain, before any test.
func KeepLines(n int) { keepLines = n }

// Proc is one running process. Its output is kept for assertions and failure reports; the
// test that started it kills it at cleanup if it still runs.
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	keep  int // at most about this many lines are kept; 0: all
	mu    sync.Mutex
	lines []string
	err   error
}

// StartProcess runs the program at path with args, and env on top of a minimal environment
// (PATH only), as name in failure reports.
func StartProcess(t testing.TB, name, path string, args []string, env map[string]string) *Proc {
	t.Helper()
	cmd := exec.Command(path, args...) //nolint:noctx // stopped by signals, owned by the test
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return StartCommand(t, name, cmd)
}

// StartShell runs a bash command line in dir with env ("KEY=value" entries) as its whole
// environment, in a process group of its own: its signals go to the whole group, as a
// terminal's Ctrl-C does, so `go run` and the program it runs both get them.
func StartShell(t testing.TB, name, dir, line string, env []string) *Proc {
	t.Helper()
	cmd := exec.Command("bash", "-c", line) //nolint:noctx // stopped by signals, owned by the test
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return StartCommand(t, name, cmd)
}

// StartCommand starts cmd, whose output is kept, as name in failure reports.
func StartCommand(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{}), keep: keepLines}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if p.keep > 0 && len(p.lines) >= 2*p.keep { // drop the older half, amortized
				p.lines = append(p.lines[:0:0], p.lines[len(p.lines)-p.keep:]...)
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		_ = pw.Close()
		<-scanned
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.Running() {
			_ = p.signal(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- last output of %s:\n%s", name, p.Tail(30))
		}
	})
	return p
}

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Tail returns the last n lines of output.
func (p *Proc) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := max(0, len(p.lines)-n)
	return strings.Join(p.lines[from:], "\n")
}

// Output returns everything the process printed so far, one line per line.
func (p *Proc) Output() string {
	return p.Tail(int(^uint(0) >> 1))
}

// WaitForOutput waits until the process printed a line containing substr, failing the test
// when it exits first or the timeout passes.
func (p *Proc) WaitForOutput(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), substr) {
			return
		}
		if !p.Running() {
			t.Fatalf("%s exited before it printed %q:\n%s", p.name, substr, p.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not print %q within %s:\n%s", p.name, substr, timeout, p.Tail(30))
}

// Kill stops the process abruptly, as a crash or an OOM kill would.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.signal(syscall.SIGKILL))
	<-p.done
}

// Terminate sends SIGTERM and returns the exit code, failing the test when the process does
// not stop within the timeout.
func (p *Proc) Terminate(t testing.TB, timeout time.Duration) int {
	t.Helper()
	return p.stop(t, syscall.SIGTERM, timeout)
}

// Interrupt sends SIGINT, as Ctrl-C in a terminal does, and returns the exit code, failing
// the test when the process does not stop within the timeout.
func (p *Proc) Interrupt(t testing.TB, timeout time.Duration) int {
	t.Helper()
	return p.stop(t, syscall.SIGINT, timeout)
}

func (p *Proc) stop(t testing.TB, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	require.NoError(t, p.signal(sig))
	return p.Wait(t, timeout)
}

// Pid is the process's own pid (for a StartShell command line of one program, bash
// execs it, so this is that program's pid).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process, or to its whole process group when it leads one.
func (p *Proc) signal(sig syscall.Signal) error {
	if attr := p.cmd.SysProcAttr; attr != nil && attr.Setpgid {
		return syscall.Kill(-p.cmd.Process.Pid, sig)
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns its exit code, failing the test when it
// still runs after timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still runs after %s:\n%s", p.name, timeout, p.Tail(30))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}
