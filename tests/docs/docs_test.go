// Package docs_test keeps the project's Markdown true to the tree it describes: every relative
// link points at a file that exists, and every `make` target and `go run` package a page tells
// the reader to use exists.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// pages returns every Markdown file of the repository, relative to its root.
func pages(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, out, filepath.Join("docs", "learn", "README.md"), "the walk found the course")
	return out
}

// link matches the target of an inline Markdown link or image.
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

func TestRelativeLinksResolve(t *testing.T) {
	for _, page := range pages(t) {
		body, err := os.ReadFile(filepath.Join(root, page))
		require.NoError(t, err)
		for _, m := range link.FindAllStringSubmatch(string(body), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			path := filepath.Join(root, filepath.Dir(page), target)
			_, err := os.Stat(path)
			assert.NoError(t, err, "%s links to %s, which does not exist", page, m[1])
		}
	}
}

var (
	makeTarget = regexp.MustCompile("(?m)^([a-z][a-z0-9-]*):")
	fenced     = regexp.MustCompile("(?ms)^\\s*```[^\\n]*\\n(.*?)^\\s*```")
	inlineCode = regexp.MustCompile("`([^`\\n]+)`")
	makeUse    = regexp.MustCompile(`(?m)(?:^|[\s;&|($])make ([a-z][a-z0-9-]*)`)
	goRun      = regexp.MustCompile(`go run (\./[A-Za-z0-9_./-]+)`)
)

// code returns the code of a page: its fenced blocks and inline code spans, not its prose.
func code(page string) string {
	var b strings.Builder
	for _, m := range fenced.FindAllStringSubmatch(page, -1) {
		b.WriteString(m[1] + "\n")
	}
	for _, m := range inlineCode.FindAllStringSubmatch(fenced.ReplaceAllString(page, ""), -1) {
		b.WriteString(m[1] + "\n")
	}
	return b.String()
}

func TestCommandsNameWhatExists(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	var targets []string
	for _, m := range makeTarget.FindAllStringSubmatch(string(makefile), -1) {
		targets = append(targets, m[1])
	}
	require.Contains(t, targets, "test", "the Makefile was parsed")

	for _, page := range pages(t) {
		body, err := os.ReadFile(filepath.Join(root, page))
		require.NoError(t, err)
		commands := code(string(body))
		for _, m := range makeUse.FindAllStringSubmatch(commands, -1) {
			assert.True(t, slices.Contains(targets, m[1]), "%s tells the reader to run `make %s`, which the Makefile does not have", page, m[1])
		}
		for _, m := range goRun.FindAllStringSubmatch(commands, -1) {
			pkg := strings.TrimSuffix(m[1], "/...")
			info, err := os.Stat(filepath.Join(root, pkg))
			if assert.NoError(t, err, "%s runs `go run %s`, which does not exist", page, m[1]) {
				assert.True(t, info.IsDir(), "%s: `go run %s` names a file, not a package directory", page, m[1])
			}
		}
	}
}
