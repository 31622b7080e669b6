package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestProgressPathFollowsTheXDGBaseDirectories(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"BACKEND_PREP_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s/progress.json"},
		{map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/backend-prep/progress.json"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/backend-prep/progress.json"},
	} {
		got, err := progressPath(envFrom(tc.env))
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
	_, err := progressPath(envFrom(nil))
	assert.ErrorContains(t, err, "set BACKEND_PREP_STATE_DIR, XDG_STATE_HOME or HOME")
}

func TestProgressSurvivesARestart(t *testing.T) {
	env := envFrom(map[string]string{"BACKEND_PREP_STATE_DIR": filepath.Join(t.TempDir(), "new")})
	p, err := loadProgress(env)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("steps 0/8 · scenarios 0/%d", len(scenarios)), p.summary())

	at := time.Date(2026, time.December, 7, 9, 30, 0, 0, time.FixedZone("UTC+1", 3600))
	p.stepPassed(3, at)
	p.stepPassed(3, at) // passing again counts once
	p.stepPassed(4, at)
	fixed := at.UTC()
	p.Scenarios["kafka-retention"] = &scenarioProgress{Fixed: &fixed}
	p.Scenarios["rabbitmq-unbound"] = &scenarioProgress{Started: &fixed, Hints: 2} // started, not fixed
	require.NoError(t, p.save())

	again, err := loadProgress(env)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("steps 2/8 · scenarios 1/%d", len(scenarios)), again.summary())
	assert.Equal(t, at.UTC(), again.Steps["3"], "times are kept in UTC")
	assert.Equal(t, 2, again.Scenarios["rabbitmq-unbound"].Hints)
}

func TestACorruptProgressFileIsReportedNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "progress.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := loadProgress(envFrom(map[string]string{"BACKEND_PREP_STATE_DIR": dir}))
	assert.ErrorContains(t, err, "remove the file to start afresh")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "{not json", string(b))
}
