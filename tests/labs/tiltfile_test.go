package labs_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
	"github.com/backend-prep/backend-prep/tests/platform"
)

// Every step of docs/learn is a button in the Tilt UI: a manual local resource labelled labs
// that runs the step's self-check against the cluster's port-forwards, and only when clicked.
func TestTiltHasASelfCheckButtonPerStep(t *testing.T) {
	run, err := platform.ExecTiltfile(filepath.Join(stack.RepoRoot(), "Tiltfile"), platform.TiltOptions{})
	require.NoError(t, err)

	steps := []string{"docker", "kubernetes", "rabbitmq", "kafka", "grpc", "system", "observe"}
	for i, step := range steps {
		name := fmt.Sprintf("lab-%d-%s", i+1, step)
		t.Run(name, func(t *testing.T) {
			j := slices.IndexFunc(run.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == name })
			require.GreaterOrEqual(t, j, 0, "no local_resource %q", name)
			lr := run.LocalResources[j]
			assert.Equal(t, []string{"labs"}, lr.Labels)
			assert.True(t, lr.Manual, "runs when clicked")
			assert.False(t, lr.AutoInit, "`tilt up` and `tilt ci` do not run it")
			assert.Contains(t, lr.Cmd, fmt.Sprintf("go run ./labs/selfcheck %d", i+1))
		})
	}

	t.Run("the observe check asks the cluster's Jaeger for its trace", func(t *testing.T) {
		j := slices.IndexFunc(run.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "lab-7-observe" })
		require.GreaterOrEqual(t, j, 0)
		assert.Contains(t, run.LocalResources[j].Cmd, "--jaeger http://127.0.0.1:16686")
		jaeger := run.Resource("jaeger")
		require.NotNil(t, jaeger)
		assert.True(t, slices.ContainsFunc(jaeger.PortForwards, func(pf platform.PortForward) bool { return pf.Local == 16686 }),
			"the check reaches Jaeger through a port-forward of localhost:16686: %v", jaeger.PortForwards)
	})

	t.Run("the RabbitMQ check gets the credentials of the cluster", func(t *testing.T) {
		j := slices.IndexFunc(run.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "lab-3-rabbitmq" })
		require.GreaterOrEqual(t, j, 0)
		cmd := run.LocalResources[j].Cmd
		assert.Contains(t, cmd, "RABBITMQ_URL=")
		assert.Contains(t, cmd, "get secret rabbitmq-credentials")
		assert.Contains(t, cmd, "{{.data.username | base64decode}}:{{.data.password | base64decode}}@127.0.0.1:5672/")

		rabbitmq := run.Resource("rabbitmq")
		require.NotNil(t, rabbitmq)
		assert.Contains(t, rabbitmq.PortForwards, platform.PortForward{Local: 5672, Container: 5672, Name: "AMQP localhost:5672"},
			"the check reaches the broker through a port-forward")
	})
}
