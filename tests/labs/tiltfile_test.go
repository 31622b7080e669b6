package labs_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
	"github.com/backend-prep/backend-prep/tests/platform"
)

// Every step of docs/learn is a button in the Tilt UI: a manual local resource labelled labs
// that runs the step's self-check against the cluster's port-forwards, and only when clicked.
func TestTiltHasASelfCheckButtonPerStep(t *testing.T) {
	tilt, err := platform.ExecTiltfile(filepath.Join(stack.RepoRoot(), "Tiltfile"), platform.TiltOptions{})
	require.NoError(t, err)

	steps := []string{"docker", "kubernetes", "rabbitmq", "kafka", "grpc", "system", "observe"}
	for i, step := range steps {
		name := fmt.Sprintf("lab-%d-%s", i+1, step)
		t.Run(name, func(t *testing.T) {
			j := slices.IndexFunc(tilt.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == name })
			require.GreaterOrEqual(t, j, 0, "no local_resource %q", name)
			lr := tilt.LocalResources[j]
			assert.Equal(t, []string{"labs"}, lr.Labels)
			assert.True(t, lr.Manual, "runs when clicked")
			assert.False(t, lr.AutoInit, "`tilt up` and `tilt ci` do not run it")
			assert.Contains(t, lr.Cmd, fmt.Sprintf("go run ./labs/selfcheck %d", i+1))
		})
	}

	t.Run("the labs resource lists the incidents, and its buttons act on each of them", func(t *testing.T) {
		j := slices.IndexFunc(tilt.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "labs" })
		require.GreaterOrEqual(t, j, 0, "no local_resource labs")
		lr := tilt.LocalResources[j]
		assert.Equal(t, "go run ./labs/selfcheck lab", lr.Cmd)
		assert.True(t, lr.Manual)
		assert.False(t, lr.AutoInit)

		// The incidents the lab knows, from its own list.
		list := run(t, 30*time.Second, "selfcheck", "lab", "list")
		require.Equal(t, 0, list.code, list.output)
		var names []string
		for _, line := range strings.Split(list.output, "\n")[1:] {
			if name, _, ok := strings.Cut(line, " "); ok && name != "" && name != "progress:" {
				names = append(names, name)
			}
		}
		require.GreaterOrEqual(t, len(names), 6, list.output)

		for _, action := range []string{"start", "hint", "check", "reset"} {
			i := slices.IndexFunc(tilt.Buttons, func(b platform.Button) bool { return b.Name == "lab-"+action })
			require.GreaterOrEqual(t, i, 0, "no button lab-%s", action)
			btn := tilt.Buttons[i]
			assert.Equal(t, "labs", btn.Resource)
			require.Len(t, btn.Inputs, 1)
			assert.Equal(t, "SCENARIO", btn.Inputs[0].Name)
			assert.Equal(t, names, btn.Inputs[0].Choices, "the button offers every incident of the lab, in its order")
			require.Equal(t, []string{"sh", "-c"}, btn.Argv[:2])
			assert.Contains(t, btn.Argv[2], "go run ./labs/selfcheck lab "+action+` "$SCENARIO"`)
			assert.Contains(t, btn.Argv[2], "get secret rabbitmq-credentials", "the RabbitMQ incidents need the cluster's credentials")
			assert.Equal(t, action == "reset", btn.RequiresConfirmation)
		}
	})

	t.Run("the observe check asks the cluster's Jaeger for its trace", func(t *testing.T) {
		j := slices.IndexFunc(tilt.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "lab-7-observe" })
		require.GreaterOrEqual(t, j, 0)
		assert.Contains(t, tilt.LocalResources[j].Cmd, "--jaeger http://127.0.0.1:16686")
		jaeger := tilt.Resource("jaeger")
		require.NotNil(t, jaeger)
		assert.True(t, slices.ContainsFunc(jaeger.PortForwards, func(pf platform.PortForward) bool { return pf.Local == 16686 }),
			"the check reaches Jaeger through a port-forward of localhost:16686: %v", jaeger.PortForwards)
	})

	t.Run("the RabbitMQ check gets the credentials of the cluster", func(t *testing.T) {
		j := slices.IndexFunc(tilt.LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "lab-3-rabbitmq" })
		require.GreaterOrEqual(t, j, 0)
		cmd := tilt.LocalResources[j].Cmd
		assert.Contains(t, cmd, "RABBITMQ_URL=")
		assert.Contains(t, cmd, "get secret rabbitmq-credentials")
		assert.Contains(t, cmd, "{{.data.username | base64decode}}:{{.data.password | base64decode}}@127.0.0.1:5672/")

		rabbitmq := tilt.Resource("rabbitmq")
		require.NotNil(t, rabbitmq)
		assert.Contains(t, rabbitmq.PortForwards, platform.PortForward{Local: 5672, Container: 5672, Name: "AMQP localhost:5672"},
			"the check reaches the broker through a port-forward")
	})
}
