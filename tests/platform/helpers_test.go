package platform_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// The manifests and the Tiltfile are rendered once per test binary: kustomize and the
// stand-in are deterministic, and the machine's CPU is shared.
var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	renders sync.Map // kustomization dir -> renderResult
)

type renderResult struct {
	once    sync.Once
	objects []platform.Object
	err     error
}

func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = platform.RepoRoot() })
	require.NoError(t, rootErr)
	return rootDir
}

// rendered returns the strictly decoded render of a kustomization under the repository
// root, e.g. "manifests/overlays/dev".
func rendered(t *testing.T, dir string) []platform.Object {
	t.Helper()
	v, _ := renders.LoadOrStore(dir, &renderResult{})
	r := v.(*renderResult)
	r.once.Do(func() { r.objects, r.err = platform.Render(filepath.Join(repoRoot(t), dir)) })
	require.NoError(t, r.err, "render %s", dir)
	return r.objects
}

var (
	tiltOnce sync.Once
	tiltRun  *platform.TiltRun
	tiltErr  error
)

// tiltfile returns the repository's Tiltfile as executed with default settings.
func tiltfile(t *testing.T) *platform.TiltRun {
	t.Helper()
	root := repoRoot(t)
	tiltOnce.Do(func() {
		tiltRun, tiltErr = platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{})
	})
	require.NoError(t, tiltErr, "execute Tiltfile")
	return tiltRun
}

// builtImages lists the image refs the Tiltfile builds.
func builtImages(t *testing.T) []string {
	t.Helper()
	var refs []string
	for _, img := range tiltfile(t).Images {
		refs = append(refs, img.Ref)
	}
	return refs
}

// requireNoProblems fails with every problem a check found, one per line.
func requireNoProblems(t *testing.T, errs []error) {
	t.Helper()
	if len(errs) == 0 {
		return
	}
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = "  - " + err.Error()
	}
	t.Fatalf("%d problem(s):\n%s", len(errs), strings.Join(lines, "\n"))
}

// requireProblem fails unless one of the problems a check found mentions want.
func requireProblem(t *testing.T, errs []error, want string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Fatalf("no problem mentions %q; got %v", want, errs)
}

// scriptSetting returns the value of a `readonly NAME=value` line of scripts/<script>.
func scriptSetting(t *testing.T, script, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", script))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^readonly ` + name + `=("[^"]*"|\S+)`).FindSubmatch(data)
	require.NotNil(t, m, "scripts/%s sets no %s", script, name)
	return strings.Trim(string(m[1]), `"`)
}
