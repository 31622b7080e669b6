package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// commandTimeout bounds one docker or kubectl invocation; both may have to start up or reach
// a remote API server, which is slower than one HTTP call.
const commandTimeout = 15 * time.Second

// services are the four services of the system, as named by their images, Deployments and
// ConfigMaps.
var services = []string{"order-api", "validator", "notifier", "analytics"}

// command runs a CLI with a deadline and returns its standard output. A failure carries what
// the command printed on standard error, which is usually the most useful line.
func command(ctx context.Context, name string, args ...string) ([]byte, error) {
	return commandWithin(ctx, commandTimeout, name, args...)
}

// commandWithin is command with a deadline of the caller's: a docker build or a docker stop
// may take longer than one API call.
func commandWithin(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	return commandWithinEnv(ctx, timeout, nil, name, args...)
}

// commandWithinEnv is commandWithin with an environment of the caller's (nil: this process's).
func commandWithinEnv(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = &stdout, &stderr, env
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: no answer within %s: %w", name, strings.Join(args, " "), timeout, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}

// repoRoot finds the repository from the working directory: the directory holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("run it from inside the repository: no go.work in " + dir + " or above")
		}
	}
}
