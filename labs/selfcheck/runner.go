package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// A check verifies one thing about the running system.
type check struct {
	// name says what is verified, as a statement that is true when the check passes:
	// "exchange orders exists".
	name string
	// run returns a short detail for the PASS line ("1 consumer"), or why the check failed.
	run func(ctx context.Context) (detail string, err error)
	// hint is what to try when the check fails, unless the error carries a hint of its own.
	hint string
}

// hinted is a failure that knows better than its check what the learner should try.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// withHint attaches a hint to err that replaces the check's own.
func withHint(err error, hint string) error {
	return &hinted{err: err, hint: hint}
}

// errBlocked marks a check that could not run because an earlier check, which it builds on,
// failed: the earlier failure is the one to fix.
var errBlocked = errors.New("not checked")

// blocked is the error of a check that needs what an earlier check should have produced.
func blocked(needs string) error {
	return withHint(fmt.Errorf("%w: it needs %s, see the failure above", errBlocked, needs),
		"fix the first failure of this step; this check builds on it")
}

// report is the outcome of one step.
type report struct {
	passed, failed int
}

// runChecks runs the checks in order, each on what is left of ctx, and writes one line per
// check to w: "PASS  <name>[ (<detail>)]" or "FAIL  <name>: <why>" followed by an indented hint.
// Every check runs, also after a failure, so one run shows everything that is wrong.
func runChecks(ctx context.Context, w io.Writer, checks []check) report {
	var r report
	for _, c := range checks {
		detail, err := c.run(ctx)
		if err == nil {
			r.passed++
			if detail != "" {
				fmt.Fprintf(w, "PASS  %s (%s)\n", c.name, detail)
			} else {
				fmt.Fprintf(w, "PASS  %s\n", c.name)
			}
			continue
		}
		r.failed++
		hint := c.hint
		var h *hinted
		if errors.As(err, &h) {
			hint = h.hint
		}
		if ctx.Err() != nil && !errors.Is(err, errBlocked) {
			err = fmt.Errorf("%w (the whole run is bounded by --timeout)", err)
		}
		fmt.Fprintf(w, "FAIL  %s: %v\n", c.name, err)
		if hint != "" {
			fmt.Fprintf(w, "      hint: %s\n", hint)
		}
	}
	return r
}

// summary is the last line of a run.
func (r report) summary(s step) string {
	total := r.passed + r.failed
	if r.failed == 0 {
		return fmt.Sprintf("step %d (%s): all %d checks passed", s.number, s.name, total)
	}
	return fmt.Sprintf("step %d (%s): %d of %d checks failed", s.number, s.name, r.failed, total)
}

// pollInterval is how often a check that waits for something asks again.
const pollInterval = 250 * time.Millisecond

// maxWait bounds a check that waits for the system to do something (count an order, send a
// notification): the system takes well under a second, so waiting longer than this only
// delays the report of a failure.
const maxWait = 20 * time.Second

// callTimeout bounds one network call, within the run's own deadline.
const callTimeout = 5 * time.Second

// poll calls try until it reports done, ctx ends or maxWait passed. It returns the last error
// try returned when it gives up, so the failure says what was seen last.
func poll(ctx context.Context, try func(ctx context.Context) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		done, err := try(ctx)
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		case <-ticker.C:
		}
	}
}
