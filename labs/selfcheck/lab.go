package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// A scenario is an incident to repair: lab start injects a real fault into the running system,
// the learner sees a symptom, asks for hints one at a time, repairs it, and lab check proves
// the repair by what the system does, not by undoing the injection.
type scenario struct {
	name  string
	step  int    // the step of docs/learn it belongs to
	needs string // what must run: "make run or make up"
	title string
	// symptom is what the learner sees, not its cause.
	symptom string
	// hints escalate: each says more than the one before; the last all but gives the fix.
	hints []string
	// inject breaks the system; restore undoes it for lab reset, whatever the learner did since.
	inject, restore func(ctx context.Context, cfg config) error
	// checks pass only when the system works again; the first of them fails with the
	// scenario's own message while the fault is in place.
	checks func(cfg config) (checks []check, release func())
}

// solution is where the scenario's write-up is: why it broke, how to see it, the fix.
func (s scenario) solution() string { return "docs/learn/solutions/" + s.name + ".md" }

func findScenario(name string) (scenario, error) {
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == name })
	if i < 0 {
		names := make([]string, len(scenarios))
		for i, s := range scenarios {
			names[i] = s.name
		}
		return scenario{}, fmt.Errorf("unknown scenario %q: want one of %s", name, strings.Join(names, ", "))
	}
	return scenarios[i], nil
}

// runLab is `selfcheck lab <action> [name] [flags]`; it returns the exit status: 0 done (a
// check that passed), 1 a check that failed, 2 a usage error or an action that could not run.
func runLab(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "with reset: reset every started scenario and clear the progress")
	if err := bindFlags(fs, &cfg, getenv); err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}
	fs.Usage = func() { printLabUsage(fs) }
	var words []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		words, rest = append(words, fs.Arg(0)), fs.Args()[1:]
	}
	if err := cfg.normalise(); err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}
	p, err := loadProgress(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}

	ctx, cancel := runContext(cfg.timeout)
	defer cancel()

	action := "list"
	if len(words) > 0 {
		action = words[0]
	}
	switch {
	case action == "list" && len(words) <= 1:
		listScenarios(stdout, p)
		return 0
	case action == "reset" && *all && len(words) == 1:
		return resetAll(ctx, cfg, p, stdout, stderr)
	case len(words) != 2 || !slices.Contains([]string{"start", "hint", "check", "reset"}, action):
		fs.Usage()
		return 2
	}
	s, err := findScenario(words[1])
	if err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}
	state := p.Scenarios[s.name]
	if state == nil {
		state = &scenarioProgress{}
		p.Scenarios[s.name] = state
	}
	if (action == "hint" || action == "check") && state.Started == nil {
		fmt.Fprintf(stderr, "lab: %s is not started: make lab ARGS='start %s'\n", s.name, s.name)
		return 2
	}
	code := 0
	switch action {
	case "start":
		if err := s.inject(ctx, cfg); err != nil {
			fmt.Fprintf(stderr, "lab: start %s: %v\n", s.name, err)
			return 2
		}
		now := time.Now().UTC()
		state.Started, state.Hints = &now, 0
		fmt.Fprintf(stdout, "%s (step %d, needs %s): %s\n\nWhat you see: %s\n\n", s.name, s.step, s.needs, s.title, s.symptom)
		fmt.Fprintf(stdout, "Find the cause and repair it. Then:   make lab ARGS='check %s'\n", s.name)
		fmt.Fprintf(stdout, "A hint, one at a time:              make lab ARGS='hint %s'\n", s.name)
		fmt.Fprintf(stdout, "Give up and restore the system:     make lab ARGS='reset %s'\n", s.name)
	case "hint":
		state.Hints = min(state.Hints+1, len(s.hints))
		for i, h := range s.hints[:state.Hints] {
			fmt.Fprintf(stdout, "hint %d/%d: %s\n", i+1, len(s.hints), h)
		}
		if state.Hints == len(s.hints) {
			fmt.Fprintf(stdout, "\nThat was the last hint. The write-up, to open once you are done: %s\n", s.solution())
		}
	case "check":
		checks, release := s.checks(cfg)
		r := runChecks(ctx, stdout, checks)
		release()
		if r.failed > 0 {
			fmt.Fprintf(stdout, "%s: not fixed yet (%d of %d checks failed)\n", s.name, r.failed, r.passed+r.failed)
			code = 1
			break
		}
		now := time.Now().UTC()
		state.Fixed = &now
		fmt.Fprintf(stdout, "%s: fixed, all %d checks passed. Why it broke and what prevents it: %s\n", s.name, r.passed, s.solution())
	case "reset":
		if err := s.restore(ctx, cfg); err != nil {
			fmt.Fprintf(stderr, "lab: reset %s: %v\n", s.name, err)
			return 2
		}
		state.Started, state.Hints = nil, 0
		if state.Fixed == nil {
			delete(p.Scenarios, s.name)
		}
		fmt.Fprintf(stdout, "%s: the system is restored; the scenario is no longer started\n", s.name)
	}
	if err := p.save(); err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "progress: %s\n", p.summary())
	return code
}

// resetAll restores every scenario that was started and clears the progress, steps included.
func resetAll(ctx context.Context, cfg config, p *progress, stdout, stderr io.Writer) int {
	for _, s := range scenarios {
		if st, ok := p.Scenarios[s.name]; !ok || st.Started == nil {
			continue
		}
		if err := s.restore(ctx, cfg); err != nil {
			fmt.Fprintf(stderr, "lab: reset %s: %v\n", s.name, err)
			return 2
		}
		fmt.Fprintf(stdout, "%s: the system is restored\n", s.name)
	}
	p.Steps, p.Scenarios = map[string]time.Time{}, map[string]*scenarioProgress{}
	if err := p.save(); err != nil {
		fmt.Fprintf(stderr, "lab: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "progress cleared: %s\n", p.summary())
	return 0
}

func listScenarios(w io.Writer, p *progress) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSTEP\tNEEDS\tSTATE\tINCIDENT")
	for _, s := range scenarios {
		state := "-"
		if st, ok := p.Scenarios[s.name]; ok {
			switch {
			case st.Fixed != nil && st.Started != nil && st.Started.After(*st.Fixed):
				state = "fixed " + st.Fixed.Format(time.DateOnly) + ", started again"
			case st.Fixed != nil:
				state = "fixed " + st.Fixed.Format(time.DateOnly)
			case st.Started != nil:
				state = "started " + st.Started.Format(time.DateOnly)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.name, s.step, s.needs, state, s.title)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nprogress: %s (state in %s)\n", p.summary(), p.path)
}

func printLabUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: go run ./labs/selfcheck lab [list | start NAME | hint NAME | check NAME | reset NAME | reset --all] [flags]
       (make lab ARGS='start NAME')

Incidents to repair in the running system. start injects a real fault and says what you will
see; hint gives one more hint each time; check passes only when the system works again;
reset restores the system and ends the attempt (a scenario fixed once stays fixed). reset --all
restores every started scenario and clears all progress, the steps' self-checks included.

Flags (where the system is; the defaults are the local ports of make run):
`)
	fs.PrintDefaults()
}
