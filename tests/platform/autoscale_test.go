package platform_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// `tilt up -- --autoscale` deploys the autoscale overlay: the dev overlay, an autoscaler for
// order-api, and no replica count in order-api's Deployment, which would undo the autoscaler
// at every apply. Without the option nothing autoscales and the count stays.
func TestAutoscaleOverlayHandsOrderAPIToAnAutoscaler(t *testing.T) {
	dev := rendered(t, "manifests/overlays/dev")
	auto := rendered(t, "manifests/overlays/autoscale")

	_, ok := platform.Find(dev, "HorizontalPodAutoscaler", "order-api")
	assert.False(t, ok, "the dev overlay has no autoscaler")
	o, ok := platform.Find(auto, "HorizontalPodAutoscaler", "order-api")
	require.True(t, ok)
	hpa := o.Obj.(*autoscalingv2.HorizontalPodAutoscaler)

	target := hpa.Spec.ScaleTargetRef
	assert.Equal(t, "apps/v1", target.APIVersion)
	assert.Equal(t, "Deployment", target.Kind)
	d, ok := platform.Find(auto, target.Kind, target.Name)
	require.True(t, ok, "the autoscaler's target %s/%s is in the overlay", target.Kind, target.Name)
	deployment := d.Obj.(*appsv1.Deployment)
	assert.Nil(t, deployment.Spec.Replicas, "the autoscaler owns the replica count")
	devDeployment, ok := platform.Find(dev, "Deployment", target.Name)
	require.True(t, ok)
	require.NotNil(t, devDeployment.Obj.(*appsv1.Deployment).Spec.Replicas, "without the option, the count is the manifest's")

	require.NotNil(t, hpa.Spec.MinReplicas)
	assert.GreaterOrEqual(t, *hpa.Spec.MinReplicas, int32(1))
	assert.Greater(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
	require.Len(t, hpa.Spec.Metrics, 1)
	m := hpa.Spec.Metrics[0]
	require.Equal(t, autoscalingv2.ResourceMetricSourceType, m.Type)
	assert.Equal(t, corev1.ResourceCPU, m.Resource.Name)
	require.Equal(t, autoscalingv2.UtilizationMetricType, m.Resource.Target.Type)
	// Utilization is a share of the request: without a CPU request the autoscaler cannot act.
	for _, c := range deployment.Spec.Template.Spec.Containers {
		_, has := c.Resources.Requests[corev1.ResourceCPU]
		assert.True(t, has, "container %s has a CPU request", c.Name)
	}

	// Apart from the replica count, order-api is the dev overlay's.
	devSpec := devDeployment.Obj.(*appsv1.Deployment).Spec.DeepCopy()
	devSpec.Replicas = nil
	assert.Equal(t, devSpec, &deployment.Spec)
}

func TestAutoscaleOptionInstallsMetricsServer(t *testing.T) {
	root := repoRoot(t)
	run, err := platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"autoscale": true}})
	require.NoError(t, err)
	requireNoProblems(t, run.Check(tiltRules))

	res := run.Resource("autoscaling")
	require.NotNil(t, res, "a resource holds the autoscaler")
	assert.Contains(t, res.Deps, "order-api")
	assert.Contains(t, res.Deps, "metrics-server")
	var hpa bool
	for _, o := range run.Objects {
		if o.Kind == "HorizontalPodAutoscaler" && o.Name == "order-api" {
			hpa = true
		}
	}
	assert.True(t, hpa, "--autoscale deploys the autoscale overlay")

	var cmd string
	for _, lr := range run.LocalResources {
		if lr.Name == "metrics-server" {
			cmd = lr.Cmd
		}
	}
	require.Equal(t, "scripts/metrics-server", cmd)
	info, err := os.Stat(filepath.Join(root, cmd))
	require.NoError(t, err)
	assert.NotZero(t, info.Mode()&0o111, "executable")
	out, err := exec.Command("bash", "-n", filepath.Join(root, cmd)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	script, err := os.ReadFile(filepath.Join(root, cmd))
	require.NoError(t, err)
	assert.Contains(t, string(script), `apply --server-side -k "$ROOT/manifests/metrics-server"`)

	for _, o := range tiltfile(t).Objects {
		assert.NotEqual(t, "HorizontalPodAutoscaler", o.Kind, "without --autoscale nothing autoscales")
	}
	assert.Nil(t, tiltfile(t).Resource("metrics-server"))
}

// metrics-server comes from its pinned release, with the flag Kind's self-signed kubelet
// certificates need written into the applied manifest: a patch applied afterwards would own the
// args list and make the next apply conflict.
func TestMetricsServerIsItsPinnedReleaseWithKindsFlag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests", "metrics-server", "kustomization.yaml"))
	require.NoError(t, err)
	var k kustypes.Kustomization
	require.NoError(t, yaml.UnmarshalStrict(b, &k))
	assert.Equal(t, []string{"https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.9.1/components.yaml"}, k.Resources)
	assert.Empty(t, k.Namespace, "its objects stay in kube-system")

	require.Len(t, k.Patches, 1)
	p := k.Patches[0]
	require.NotNil(t, p.Target)
	assert.Equal(t, "Deployment", p.Target.Kind)
	assert.Equal(t, "metrics-server", p.Target.Name)
	assert.Equal(t, "kube-system", p.Target.Namespace)
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(p.Patch), &ops))
	require.Len(t, ops, 1)
	assert.Equal(t, "add", ops[0].Op)
	assert.Equal(t, "/spec/template/spec/containers/0/args/-", ops[0].Path)
	assert.Equal(t, "--kubelet-insecure-tls", ops[0].Value)
}
