package stack

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BrokersStateDir makes a state directory for brokers of a test's own (scripts/brokers'
// BROKERS_STATE_DIR), deleted when the test ends. Run as root, scripts/brokers runs PostgreSQL
// as an unprivileged user, who must be able to reach the directory: unlike t.TempDir's, it is
// world-traversable.
func BrokersStateDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) //nolint:gosec // reached by the PostgreSQL user; holds no secrets
	return dir
}

// sharedBrokerVars are what `scripts/brokers env` exports for the shared brokers, and make's own
// variables, which a command starting brokers of its own must not inherit.
var sharedBrokerVars = []string{
	"KAFKA_BOOTSTRAP_SERVERS", "RABBITMQ_URL", "RABBITMQCTL", "POSTGRES_URL",
	"ORDER_API_RABBITMQ_URL", "NOTIFIER_RABBITMQ_URL", "BROKERS_STATE_DIR", "BROKERS_PROFILE",
	"KAFKA_TOPIC_REPLICATION",
	"MAKELEVEL", "MAKEFLAGS", "MFLAGS",
}

// PrivateBrokersEnv is the environment of a command (scripts/brokers, make) that runs brokers of
// a test's own: this process's environment without the shared brokers' variables, plus
// BROKERS_STATE_DIR=state and settings (ports, node name: NAME → value).
func PrivateBrokersEnv(state string, settings map[string]string) []string {
	env := []string{"BROKERS_STATE_DIR=" + state}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(sharedBrokerVars, name) {
			env = append(env, kv)
		}
	}
	return env
}
