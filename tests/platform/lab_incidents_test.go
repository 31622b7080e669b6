package platform_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// The lab's cluster incidents (labs/selfcheck/scenarios_cluster.go) change one Deployment of
// the running cluster with a JSON patch, and their reset applies a second one. There is no
// cluster here to run them against, so this applies both to what `make up` deploys
// (manifests/overlays/dev), the way kubectl patch would: the broken variant must be the fault
// the incident describes, and the restored one exactly the manifests again.
func TestLabClusterIncidentsPatchWhatTheyClaim(t *testing.T) {
	root := repoRoot(t)
	original := rendered(t, "manifests/overlays/dev")

	cases := []struct {
		incident   string
		deployment string
		broken     func(t *testing.T, d *appsv1.Deployment)
	}{
		{"oom-limit", "analytics", func(t *testing.T, d *appsv1.Deployment) {
			res := d.Spec.Template.Spec.Containers[0].Resources
			assert.True(t, res.Limits.Memory().Equal(resource.MustParse("12Mi")), "limit %s", res.Limits.Memory())
			assert.True(t, res.Requests.Memory().Cmp(*res.Limits.Memory()) <= 0, "the API server refuses a request above the limit")
		}},
		{"runs-as-root", "notifier", func(t *testing.T, d *appsv1.Deployment) {
			sc := d.Spec.Template.Spec.SecurityContext
			require.NotNil(t, sc)
			assert.Equal(t, ptr(false), sc.RunAsNonRoot, "the restricted Pod Security level demands runAsNonRoot: true")
			assert.Equal(t, ptr(int64(0)), sc.RunAsUser, "root")
			for _, c := range d.Spec.Template.Spec.Containers {
				if c.SecurityContext != nil {
					assert.Nil(t, c.SecurityContext.RunAsNonRoot, "a container's own setting would override the pod's")
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.incident, func(t *testing.T) {
			before := deploymentOf(t, original, tc.deployment)
			patches := filepath.Join(root, "labs", "selfcheck", "incidents", tc.incident)

			broken := deploymentOf(t, renderPatched(t, root, tc.deployment, patches+".patch.json"), tc.deployment)
			tc.broken(t, broken)
			assert.False(t, equality.Semantic.DeepEqual(before.Spec, broken.Spec), "the patch changes nothing")

			restored := deploymentOf(t, renderPatched(t, root, tc.deployment, patches+".patch.json", patches+".restore.json"), tc.deployment)
			assert.True(t, equality.Semantic.DeepEqual(before.Spec, restored.Spec),
				"lab reset must put back what make up deploys:\nwant %+v\ngot  %+v", before.Spec.Template.Spec, restored.Spec.Template.Spec)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deploymentOf(t *testing.T, objects []platform.Object, name string) *appsv1.Deployment {
	t.Helper()
	o, ok := platform.Find(objects, "Deployment", name)
	require.True(t, ok, "no Deployment %s", name)
	d, ok := o.Obj.(*appsv1.Deployment)
	require.True(t, ok)
	return d
}

// renderPatched renders manifests/overlays/dev with the JSON patches applied in order to one
// Deployment, through a kustomization of its own.
func renderPatched(t *testing.T, root, deployment string, patches ...string) []platform.Object {
	t.Helper()
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, "manifests", "overlays", "dev"))
	require.NoError(t, err)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + base + "\npatches:\n"
	for i, p := range patches {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		name := filepath.Base(p)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600), "patch %d", i)
		k += "  - path: " + name + "\n    target:\n      kind: Deployment\n      name: " + deployment + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600))
	objects, err := platform.Render(dir)
	require.NoError(t, err)
	return objects
}
