package main

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Incidents in code: a small program with a bug that loses data, copied by lab start into
// labs/_workspace/<name>/main.go (which git ignores) for the learner to repair. lab check builds
// the learner's copy and runs it through the failure the bug cannot survive.

//go:embed incidents/*.go.txt incidents/*.Dockerfile.txt incidents/*.json
var incidentSources embed.FS

// workspace is the directory of a code incident's program, inside the labs module so that it
// builds with the module's dependencies. The go command's ./... patterns skip directories whose
// name starts with "_": a program halfway through its repair never breaks make test or make lint.
func workspace(name string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "labs", "_workspace", name), nil
}

// copyIncident writes the incident's program into its workspace, over any earlier attempt, and
// its Dockerfile where it has one.
func copyIncident(name string) error {
	src, err := incidentSources.ReadFile("incidents/" + name + ".go.txt")
	if err != nil {
		return fmt.Errorf("the program of %s: %w", name, err)
	}
	dir, err := workspace(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o600); err != nil {
		return err
	}
	dockerfile, err := incidentSources.ReadFile("incidents/" + name + ".Dockerfile.txt")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o600)
}

// removeIncident deletes the incident's workspace.
func removeIncident(name string) error {
	dir, err := workspace(name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// buildTimeout bounds go build of a workspace program (a first build compiles its dependencies).
const buildTimeout = 3 * time.Minute

// buildIncident compiles the learner's copy into dir and returns the binary.
func buildIncident(ctx context.Context, name, dir string) (string, error) {
	bin := filepath.Join(dir, name)
	if err := goBuild(ctx, name, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// goBuild compiles the learner's copy of an incident into bin, with env added to the go
// command's environment.
func goBuild(ctx context.Context, name, bin string, env ...string) error {
	ws, err := workspace(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(ws, "main.go")); err != nil {
		return fmt.Errorf("%s/main.go is gone: make lab ARGS='start %s' copies it again", ws, name)
	}
	root := filepath.Dir(filepath.Dir(ws))
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./_workspace/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%sgo build ./labs/_workspace/%s: %w\n%s", strings.Join(append(env, ""), " "), name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// worker is one run of the learner's program: it reports each message it handled as a line
// "processed <body>" on standard output.
type worker struct {
	cmd    *exec.Cmd
	lines  chan string   // the bodies it processed, in order
	done   chan struct{} // closed when its output was read to the end
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// stderrKept is how much of a program's standard error a failure quotes: the end of it.
const stderrKept = 4096

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	if over := l.b.Len() - 2*stderrKept; over > 0 { // a program logging in a loop stays bounded
		l.b.Next(over + stderrKept)
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

func startWorker(ctx context.Context, bin string, args ...string) (*worker, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &worker{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { // owned by w: it ends when the process closes its output, which stop waits for
		defer close(w.done)
		defer close(w.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if body, ok := strings.CutPrefix(s.Text(), "processed "); ok {
				w.lines <- body
			}
		}
	}()
	return w, nil
}

// stop sends sig, waits for the process and returns what it processed since last read.
func (w *worker) stop(sig syscall.Signal) []string {
	_ = w.cmd.Process.Signal(sig)
	var rest []string
	for body := range w.lines {
		rest = append(rest, body)
	}
	<-w.done
	_ = w.cmd.Wait()
	return rest
}

// survivesACrash runs a worker over the messages the caller put in place: it SIGKILLs the first
// run once it has processed killAfter of them and pause has passed, then runs the program again
// until it has processed nothing for idle (for resume, before its first message: the time a
// restart takes to get its messages back). It returns how often each body was processed.
func survivesACrash(ctx context.Context, bin string, args []string, killAfter int, pause, resume, idle time.Duration) (map[string]int, error) {
	processed := map[string]int{}
	first, err := startWorker(ctx, bin, args...)
	if err != nil {
		return nil, err
	}
	deadline := time.After(maxWait)
	for n := 0; n < killAfter; {
		select {
		case body, ok := <-first.lines:
			if !ok {
				first.stop(syscall.SIGKILL)
				return nil, fmt.Errorf("the worker exited after %d message(s): %s", n, first.stderr)
			}
			processed[body]++
			n++
		case <-deadline:
			first.stop(syscall.SIGKILL)
			return nil, fmt.Errorf("the worker processed %d message(s) in %s, not %d: %s", n, maxWait, killAfter, first.stderr)
		}
	}
	time.Sleep(pause)
	for _, body := range first.stop(syscall.SIGKILL) { // printed before it died: processed
		processed[body]++
	}

	second, err := startWorker(ctx, bin, args...)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(resume)
	defer timer.Stop()
	for {
		select {
		case body, ok := <-second.lines:
			if !ok {
				second.stop(syscall.SIGKILL)
				return nil, fmt.Errorf("the worker exited after the crash: %s", second.stderr)
			}
			processed[body]++
			timer.Reset(idle)
		case <-timer.C:
			for _, body := range second.stop(syscall.SIGTERM) {
				processed[body]++
			}
			return processed, nil
		case <-ctx.Done():
			second.stop(syscall.SIGKILL)
			return nil, ctx.Err()
		}
	}
}
