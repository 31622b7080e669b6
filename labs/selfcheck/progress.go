package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// progress is what the learner has done, kept between runs in the user's state directory:
// the steps whose self-check passed and the scenarios started, hinted and fixed.
type progress struct {
	Steps     map[string]time.Time         `json:"steps"` // by step number: when its self-check last passed
	Scenarios map[string]*scenarioProgress `json:"scenarios"`

	path string
}

// scenarioProgress is one scenario's state. Started is set by start and cleared by reset; Fixed,
// once a check passed, stays until reset --all: a learner who repaired an incident keeps it.
type scenarioProgress struct {
	Started *time.Time `json:"started,omitempty"`
	Hints   int        `json:"hints,omitempty"` // hints shown since it was started
	Fixed   *time.Time `json:"fixed,omitempty"`
}

// progressPath is the state file: $BACKEND_PREP_STATE_DIR/progress.json, else under
// $XDG_STATE_HOME/backend-prep, else under ~/.local/state/backend-prep (the XDG default).
func progressPath(getenv func(string) string) (string, error) {
	if dir := getenv("BACKEND_PREP_STATE_DIR"); dir != "" {
		return filepath.Join(dir, "progress.json"), nil
	}
	if dir := getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "backend-prep", "progress.json"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("no state directory: set BACKEND_PREP_STATE_DIR, XDG_STATE_HOME or HOME")
	}
	return filepath.Join(home, ".local", "state", "backend-prep", "progress.json"), nil
}

// loadProgress reads the state file; a missing one is a fresh start.
func loadProgress(getenv func(string) string) (*progress, error) {
	path, err := progressPath(getenv)
	if err != nil {
		return nil, err
	}
	p := &progress{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read progress: %w", err)
	default:
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("read progress %s: %w (remove the file to start afresh)", path, err)
		}
	}
	if p.Steps == nil {
		p.Steps = map[string]time.Time{}
	}
	if p.Scenarios == nil {
		p.Scenarios = map[string]*scenarioProgress{}
	}
	return p, nil
}

// save writes the state file whole, through a temporary file, so that a crash never leaves
// half of it.
func (p *progress) save() error {
	if err := os.MkdirAll(filepath.Dir(p.path), 0o750); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".progress-*.json")
	if err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save progress: %w", err)
	}
	return nil
}

// stepPassed records that a step's self-check passed now.
func (p *progress) stepPassed(number int, now time.Time) {
	p.Steps[strconv.Itoa(number)] = now.UTC()
}

// summary is the one-line view: "steps 4/7 · scenarios 2/3".
func (p *progress) summary() string {
	passed := 0
	for _, s := range steps {
		if _, ok := p.Steps[strconv.Itoa(s.number)]; ok {
			passed++
		}
	}
	fixed := 0
	for _, sc := range scenarios {
		if st, ok := p.Scenarios[sc.name]; ok && st.Fixed != nil {
			fixed++
		}
	}
	return fmt.Sprintf("steps %d/%d · scenarios %d/%d", passed, len(steps), fixed, len(scenarios))
}
