package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every incident is complete: a step, what it needs, a symptom, escalating hints, a way to
// inject and restore it, checks, and a write-up listed where the learner finds it.
func TestEveryScenarioIsComplete(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	index, err := os.ReadFile(filepath.Join(root, "docs", "learn", "solutions", "README.md"))
	require.NoError(t, err)
	labsReadme, err := os.ReadFile(filepath.Join(root, "labs", "README.md"))
	require.NoError(t, err)

	seen := map[string]bool{}
	perStep := map[int]int{}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			assert.False(t, seen[s.name], "a second incident named %s", s.name)
			seen[s.name] = true
			perStep[s.step]++
			assert.NotEmpty(t, s.needs)
			assert.NotEmpty(t, s.title)
			assert.NotEmpty(t, s.symptom)
			assert.Len(t, s.hints, 4, "four hints, each saying more than the one before")
			assert.NotNil(t, s.inject)
			assert.NotNil(t, s.restore)
			assert.NotNil(t, s.checks)

			page, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(s.solution())))
			require.NoError(t, err, "the write-up of %s", s.name)
			assert.True(t, strings.HasPrefix(string(page), "# "+s.name+": "), "the write-up starts with its name")
			for _, part := range []string{"**What was broken.**", "**How to see it.**", "**The fix.**", "**What real systems do.**"} {
				assert.Contains(t, string(page), part)
			}
			assert.Contains(t, string(index), "["+s.name+"]("+s.name+".md)", "docs/learn/solutions/README.md lists it")
			assert.Contains(t, string(labsReadme), "| `"+s.name+"` | ", "labs/README.md lists it")
		})
	}
	// The course's steps with an incident of their own: two each.
	for step := 1; step <= 6; step++ {
		assert.GreaterOrEqual(t, perStep[step], 2, "step %d has %d incidents", step, perStep[step])
	}
}
