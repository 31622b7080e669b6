package platform_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

const configPackage = "./internal/config"

func TestConfigEnvFollowsTheEnvStructTags(t *testing.T) {
	vars, err := platform.ConfigEnv(filepath.Join("testdata", "configmod"), configPackage)
	require.NoError(t, err)
	assert.Equal(t, []platform.EnvVar{
		{Name: "APP_TOKEN", Field: "Config.Auth.Token", Required: true},
		{Name: "DB_POOL", Field: "Config.Database.Pool", Default: true},
		{Name: "DB_URL", Field: "Config.Database.URL", Required: true},
		{Name: "HTTP_ADDR", Field: "Config.HTTPAddr", Default: true},
		{Name: "LOG_FORMAT", Field: "Config.Config.Format"},
		{Name: "LOG_LEVEL", Field: "Config.Config.Level", Default: true},
		{Name: "TIMEOUT", Field: "Config.Timeout", Default: true},
		{Name: "UPSTREAM_URL", Field: "Config.Upstream"},
	}, vars)
}

func TestConfigEnvFailsLoudlyWithoutAConfigPackage(t *testing.T) {
	_, err := platform.ConfigEnv(filepath.Join("testdata", "configmod"), "./internal/missing")
	require.Error(t, err)
}

func TestEnvCheckCatchesUnreadAndMissingVariables(t *testing.T) {
	reads, err := platform.ConfigEnv(filepath.Join("testdata", "configmod"), configPackage)
	require.NoError(t, err)
	envOf := func(t *testing.T, fixture string) []platform.EnvSource {
		objects, err := platform.Render(filepath.Join("testdata", "manifests", fixture))
		require.NoError(t, err)
		return platform.ContainerEnv(objects, container(t, objects, "demo"))
	}
	t.Run("the unbroken fixture sets exactly what it should", func(t *testing.T) {
		requireNoProblems(t, platform.CheckEnv("demo", envOf(t, "good"), reads))
	})
	t.Run("a misspelled variable", func(t *testing.T) {
		requireProblem(t, platform.CheckEnv("demo", envOf(t, "env-not-read"), reads), "sets LOGLEVEL (from value), which its configuration does not read")
	})
	t.Run("a required variable left unset", func(t *testing.T) {
		requireProblem(t, platform.CheckEnv("demo", envOf(t, "required-env-missing"), reads), "does not set DB_URL, which Config.Database.URL requires")
	})
}

// Each service's Deployment must set only variables its internal/config reads, and every
// variable that config requires. The config packages are loaded from source, so this
// keeps holding as configurations change.
func TestDeploymentsSetWhatTheServiceConfigReads(t *testing.T) {
	root := repoRoot(t)
	ws, err := platform.ReadWorkspace(root)
	require.NoError(t, err)
	require.NotEmpty(t, ws.Services)
	objects := rendered(t, "manifests/overlays/dev")
	for _, service := range ws.ServiceNames() {
		t.Run(service, func(t *testing.T) {
			reads, err := platform.ConfigEnv(filepath.Join(root, "services", service), configPackage)
			require.NoError(t, err, "services/%s must have a %s package with a Config struct", service, configPackage)
			c := container(t, objects, service)
			requireNoProblems(t, platform.CheckEnv(service, platform.ContainerEnv(objects, c), reads))
		})
	}
}
