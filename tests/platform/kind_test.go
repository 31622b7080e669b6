package platform_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

const clusterName = "backend-prep"

func TestKindConfigCreatesTheClusterWithTheRegistryConfigDir(t *testing.T) {
	cluster, err := platform.ReadKindConfig(filepath.Join(repoRoot(t), "kind", "cluster.yaml"))
	require.NoError(t, err)
	requireNoProblems(t, platform.CheckKindConfig(cluster, clusterName))
}

func TestKindConfigChecksCatchBrokenConfigs(t *testing.T) {
	_, err := platform.ReadKindConfig(filepath.Join("testdata", "kind", "unknown-field.yaml"))
	assert.ErrorContains(t, err, `unknown field "node"`)

	cluster, err := platform.ReadKindConfig(filepath.Join("testdata", "kind", "no-registry-config.yaml"))
	require.NoError(t, err)
	requireProblem(t, platform.CheckKindConfig(cluster, clusterName), "registry config_path")
	requireProblem(t, platform.CheckKindConfig(cluster, clusterName), `node 0 runs image "kindest/node:v1.36.1"`)
	requireProblem(t, platform.CheckKindConfig(cluster, "another"), `cluster is named "backend-prep", want "another"`)
}

// The scripts follow kind's local-registry guide; their names and ports must agree with
// each other and with the config they use.
func TestClusterScriptsAgreeOnClusterAndRegistry(t *testing.T) {
	root := repoRoot(t)
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(root, "scripts", name))
		require.NoError(t, err)
		return string(data)
	}
	up, down := read("cluster-up"), read("cluster-down")
	setting := func(script, name string) string {
		m := regexp.MustCompile(`(?m)^readonly ` + name + `=(\S+)$`).FindStringSubmatch(script)
		require.NotNil(t, m, "script sets no %s", name)
		return m[1]
	}
	assert.Equal(t, clusterName, setting(up, "CLUSTER_NAME"))
	assert.Equal(t, clusterName, setting(down, "CLUSTER_NAME"))
	assert.Equal(t, setting(up, "REGISTRY_NAME"), setting(down, "REGISTRY_NAME"))
	assert.Equal(t, "5001", setting(up, "REGISTRY_PORT"))
	assert.Contains(t, up, `kind create cluster --config "${KIND_CONFIG}"`)
	assert.Contains(t, up, `/etc/containerd/certs.d/localhost:${REGISTRY_PORT}`, "hosts.toml must go where the kind config points containerd")
	assert.Contains(t, up, "name: local-registry-hosting\n  namespace: kube-public")
	assert.Contains(t, up, `host: "localhost:${REGISTRY_PORT}"`)
}

func TestScriptsAreExecutableBash(t *testing.T) {
	for _, name := range []string{"cluster-up", "cluster-down", "doctor"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(repoRoot(t), "scripts", name)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.NotZero(t, info.Mode()&0o111, "not executable")
			out, err := exec.Command("bash", "-n", path).CombinedOutput()
			assert.NoError(t, err, "bash -n: %s", out)
		})
	}
}

// scripts/doctor checks kubectl against the Kubernetes release of the pinned node image,
// and points Linux users to the kind release that image belongs to.
func TestDoctorKnowsTheClustersKubernetesAndKind(t *testing.T) {
	cluster, err := platform.ReadKindConfig(filepath.Join(repoRoot(t), "kind", "cluster.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, cluster.Nodes)
	doctor, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "doctor"))
	require.NoError(t, err)
	assert.Contains(t, string(doctor), `grep -Eo 'kindest/node:v[0-9]+\.[0-9]+\.[0-9]+' "${ROOT}/kind/cluster.yaml"`)
	assert.Equal(t, "v"+scriptSetting(t, "doctor", "MIN_KIND"), scriptSetting(t, "doctor", "KIND_VERSION"))
}
