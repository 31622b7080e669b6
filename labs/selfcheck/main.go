// Command selfcheck verifies a step of the learning path (docs/learn) against the running
// system — the processes of `make run` or the cluster of `make up` — and prints PASS or FAIL
// for each check, with a hint for every failure:
//
//	go run ./labs/selfcheck 3            # or: go run ./labs/selfcheck rabbitmq
//	go run ./labs/selfcheck kafka --timeout 60s
//
// Each step is a list of small checks (one function each, in the file named after the step).
// Checks talk to the system the way a client would — HTTP, gRPC, AMQP, the Kafka admin API,
// kubectl — and every call has a deadline, so a run ends within --timeout whatever is broken.
// The exit status is 0 when every check passed, 1 otherwise: scripts and the Tilt buttons
// (the "labs" resources) rely on it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "lab" {
		return runLab(args[1:], getenv, stdout, stderr)
	}
	s, cfg, err := parseArgs(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "selfcheck: %v\n", err)
		return 2
	}

	ctx, cancel := runContext(cfg.timeout)
	defer cancel()

	fmt.Fprintf(stdout, "step %d (%s)\n", s.number, s.name)
	checks, release := s.checks(cfg)
	defer release()
	r := runChecks(ctx, stdout, checks)
	fmt.Fprintln(stdout, r.summary(s))
	if r.failed > 0 {
		return 1
	}
	recordStep(s, getenv, stderr)
	return 0
}

// runContext bounds a run by timeout, and ends it early on Ctrl-C or SIGTERM.
func runContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancel(); stop() }
}

// recordStep keeps the pass in the learner's progress, which `selfcheck lab` shows. A progress
// that cannot be saved is reported, and does not change the verdict.
func recordStep(s step, getenv func(string) string, stderr io.Writer) {
	p, err := loadProgress(getenv)
	if err == nil {
		p.stepPassed(s.number, time.Now())
		err = p.save()
	}
	if err != nil {
		fmt.Fprintf(stderr, "selfcheck: progress not saved: %v\n", err)
	}
}
