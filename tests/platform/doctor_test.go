package platform_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTools writes stand-ins for the commands scripts/doctor asks, each printing the
// version given (docker: a running engine with 8 GiB), and returns a PATH that finds them
// before the machine's own.
func fakeTools(t *testing.T, kind, kubectl, tilt string) string {
	t.Helper()
	dir := t.TempDir()
	scripts := map[string]string{
		"docker": `case "$*" in
  "info") exit 0 ;;
  "version --format {{.Server.Version}}") echo 28.2.2 ;;
  "info --format {{.MemTotal}}") echo 8589934592 ;;
  "info --format {{.NCPU}}") echo 4 ;;
  port*) exit 1 ;;
  *) exit 1 ;;
esac`,
		"kind":    fmt.Sprintf(`echo "kind v%s go1.26.0 linux/amd64"`, kind),
		"kubectl": fmt.Sprintf(`echo "Client Version: v%s"`, kubectl),
		"tilt":    fmt.Sprintf(`echo "v%s, built 2026-07-28"`, tilt),
	}
	for name, body := range scripts {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/usr/bin/env bash\n"+body+"\n"), 0o755))
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

func runDoctor(t *testing.T, path string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "doctor"))
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freeForwardedPort returns one of the ports Tilt forwards that nothing listens on now.
func freeForwardedPort(t *testing.T) string {
	t.Helper()
	for _, port := range strings.Fields(scriptSetting(t, "doctor", "FORWARDED_PORTS")) {
		if l, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
			require.NoError(t, l.Close())
			return port
		}
	}
	t.Fatal("every port Tilt forwards is taken on this machine")
	return ""
}

// The doctor is the first thing `make up` runs: it must pass a machine that can run it,
// and stop, saying why, one that cannot.
func TestDoctorJudgesVersionsAndPorts(t *testing.T) {
	minKind := scriptSetting(t, "doctor", "MIN_KIND")
	minTilt := scriptSetting(t, "doctor", "MIN_TILT")
	// The cluster's Kubernetes, from the node image kind/cluster.yaml pins: vMAJOR.MINOR.PATCH.
	clusterYAML, err := os.ReadFile(filepath.Join(repoRoot(t), "kind", "cluster.yaml"))
	require.NoError(t, err)
	m := regexp.MustCompile(`kindest/node:v(\d+)\.(\d+)\.(\d+)@`).FindStringSubmatch(string(clusterYAML))
	require.NotNil(t, m, "kind/cluster.yaml pins no node image")
	node := fmt.Sprintf("v%s.%s.%s", m[1], m[2], m[3])
	minor, err := strconv.Atoi(m[2])
	require.NoError(t, err)
	kubectl := func(minorOffset int) string { return fmt.Sprintf("1.%d.3", minor+minorOffset) }

	t.Run("versions", func(t *testing.T) {
		cases := []struct {
			name, kind, kubectl, tilt string
			want                      []string
		}{
			{"kubectl three minors behind the node", minKind, kubectl(-3), minTilt,
				[]string{"FAIL  kubectl v" + kubectl(-3) + " is outside the supported skew of the cluster's Kubernetes " + node}},
			{"kubectl two minors ahead", minKind, kubectl(2), minTilt, []string{"FAIL  kubectl v" + kubectl(2) + " is outside the supported skew"}},
			{"tilt older than the Tiltfile accepts", minKind, kubectl(0), "0.34.5", []string{"FAIL  tilt v0.34.5 is too old (need " + minTilt + " or newer)"}},
			{"kind older than the node image", "0.31.0", kubectl(0), minTilt, []string{"FAIL  kind v0.31.0 is too old"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				out, err := runDoctor(t, fakeTools(t, tc.kind, tc.kubectl, tc.tilt))
				require.Error(t, err, "the doctor passed:\n%s", out)
				for _, w := range tc.want {
					assert.Contains(t, out, w)
				}
			})
		}
	})

	t.Run("within the skew", func(t *testing.T) {
		for _, v := range []string{kubectl(-1), kubectl(0), kubectl(1)} {
			out, _ := runDoctor(t, fakeTools(t, minKind, v, minTilt))
			assert.Contains(t, out, "ok    kubectl v"+v+" (the cluster runs Kubernetes "+node+")")
		}
	})

	t.Run("the ha profile needs more memory", func(t *testing.T) {
		path := fakeTools(t, minKind, kubectl(0), minTilt) // Docker with 8 GiB
		out, _ := runDoctor(t, path)
		assert.Contains(t, out, "ok    Docker can use 8 GiB of memory and 4 CPUs")
		out, _ = runDoctor(t, path, "PROFILE=ha")
		assert.Contains(t, out, "Docker can use 8 GiB of memory (4 CPUs); "+scriptSetting(t, "doctor", "GOOD_HA_DOCKER_MEM_GIB")+" GiB keeps builds fast")
		out, err := runDoctor(t, path, "PROFILE=replicated")
		require.Error(t, err)
		assert.Contains(t, out, "PROFILE=replicated: single or ha")
	})

	t.Run("a forwarded port is taken", func(t *testing.T) {
		port := freeForwardedPort(t)
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		out, err := runDoctor(t, fakeTools(t, minKind, kubectl(0), minTilt))
		require.Error(t, err, "the doctor passed with localhost:%s taken:\n%s", port, out)
		assert.Contains(t, out, "FAIL  localhost:"+port+" is taken by ")
		assert.Contains(t, out, fmt.Sprintf("(pid %d)", os.Getpid()), "the doctor should name the process that holds the port")
	})

	t.Run("the Gateway's port is taken", func(t *testing.T) {
		port := scriptSetting(t, "doctor", "GATEWAY_PORT")
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		switch {
		case err == nil:
			t.Cleanup(func() { _ = l.Close() })
		case os.Getenv("CI") != "true":
			// A laptop's running cluster may hold it, which the doctor rightly accepts.
			t.Skipf("localhost:%s is already taken on this machine: %v", port, err)
		}
		// In CI, taken by this test or by something else: either way the doctor must say so.
		out, err := runDoctor(t, fakeTools(t, minKind, kubectl(0), minTilt))
		require.Error(t, err, "the doctor passed with localhost:%s taken:\n%s", port, out)
		assert.Contains(t, out, "FAIL  localhost:"+port+" is taken by ")
		assert.Contains(t, out, "kind publishes the Gateway there")
	})
}
