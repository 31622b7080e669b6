package platform_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// The kustomizations the repository ships: the hardened base, what Tilt deploys, the
// cluster's own objects (the GatewayClass), and the optional Kafka UI and metrics
// (Prometheus and Grafana).
var kustomizations = []string{
	"manifests/base",
	"manifests/overlays/dev",
	"manifests/overlays/autoscale",
	"manifests/overlays/ha",
	"manifests/cluster",
	"manifests/optional/kafka-ui",
	"manifests/optional/observability",
}

// clusterScoped are the kinds of the manifests that belong to no namespace.
var clusterScoped = []string{"Namespace", "GatewayClass"}

// Brokers run images that write to their root filesystem at start-up.
var brokerWritableRoot = map[string]string{
	"kafka":    "the apache/kafka image renders /opt/kafka/config at start-up",
	"rabbitmq": "the Erlang runtime writes under /etc/rabbitmq and /var/log",
}

// hardening returns the exemptions allowed in a render: the dev overlay also lets the
// services write, because live updates rebuild the binary inside the container (the
// autoscale and ha overlays are the dev overlay adapted).
func hardening(dir string) platform.Hardening {
	rules := platform.Hardening{WritableRoot: map[string]string{}}
	for k, v := range brokerWritableRoot {
		rules.WritableRoot[k] = v
	}
	if dir == "manifests/overlays/dev" || dir == "manifests/overlays/autoscale" || dir == "manifests/overlays/ha" {
		for _, s := range []string{"order-api", "validator", "notifier", "analytics"} {
			rules.WritableRoot[s] = "live update compiles inside the container"
		}
	}
	return rules
}

func TestManifestsRenderAndDecodeStrictlyIntoKubernetesTypes(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objects := rendered(t, dir)
			require.NotEmpty(t, objects)
			for _, o := range objects {
				if slices.Contains(clusterScoped, o.Kind) {
					assert.Empty(t, o.Namespace, "%s is cluster-scoped", o)
				} else {
					assert.Equal(t, "backend-prep", o.Namespace, "%s is outside the backend-prep namespace", o)
				}
			}
		})
	}
}

func TestStrictDecodingRejectsAnUnknownField(t *testing.T) {
	_, err := platform.Render(filepath.Join("testdata", "manifests", "unknown-field"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "spec.template.spec.containers[0].imagePullPolicyy"`)
}

func TestManifestsCrossReferencesHold(t *testing.T) {
	checks := map[string]func(dir string, objects []platform.Object) []error{
		"labels":     func(_ string, o []platform.Object) []error { return platform.CheckLabels(o, "backend-prep") },
		"selectors":  func(_ string, o []platform.Object) []error { return platform.CheckSelectors(o) },
		"services":   func(_ string, o []platform.Object) []error { return platform.CheckServices(o) },
		"pods":       func(d string, o []platform.Object) []error { return platform.CheckPods(o, hardening(d)) },
		"references": func(_ string, o []platform.Object) []error { return platform.CheckReferences(o) },
	}
	for _, dir := range kustomizations {
		for name, check := range checks {
			if name == "references" && dir == "manifests/base" {
				continue // the base leaves credentials to an overlay
			}
			t.Run(dir+"/"+name, func(t *testing.T) {
				requireNoProblems(t, check(dir, rendered(t, dir)))
			})
		}
	}
}

func TestCrossReferenceChecksCatchBrokenManifests(t *testing.T) {
	good := func(t *testing.T) []platform.Object {
		objects, err := platform.Render(filepath.Join("testdata", "manifests", "good"))
		require.NoError(t, err)
		return objects
	}
	all := func(objects []platform.Object) []error {
		var errs []error
		errs = append(errs, platform.CheckLabels(objects, "backend-prep")...)
		errs = append(errs, platform.CheckSelectors(objects)...)
		errs = append(errs, platform.CheckServices(objects)...)
		errs = append(errs, platform.CheckPods(objects, platform.Hardening{})...)
		errs = append(errs, platform.CheckReferences(objects)...)
		errs = append(errs, platform.CheckImages(objects, []string{"backend-prep/demo"})...)
		return errs
	}
	t.Run("the unbroken fixture passes", func(t *testing.T) {
		requireNoProblems(t, all(good(t)))
	})
	cases := []struct {
		fixture string
		want    string
	}{
		{"selector-mismatch", "does not match the pod template labels"},
		{"service-target-port", `targets metrics, which no container`},
		{"missing-probe", "no readinessProbe"},
		{"probe-port", "livenessProbe: container \"demo\" declares no port admin"},
		{"root-user", "runAsUser is 0 (root)"},
		{"writable-root", "readOnlyRootFilesystem must be true"},
		{"service-links", "enableServiceLinks must be false"},
		{"missing-limit", "no memory limit"},
		{"unpinned-image", `image "nginx:latest" is neither built by the Tiltfile nor a pinned release`},
		{"missing-secret-key", `Secret "demo" has no key "database-url"`},
		{"missing-label", "missing label app.kubernetes.io/part-of"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			objects, err := platform.Render(filepath.Join("testdata", "manifests", tc.fixture))
			require.NoError(t, err)
			requireProblem(t, all(objects), tc.want)
		})
	}
}

func TestServicesAreReadOnlyInTheBaseAndWritableOnlyForLiveUpdate(t *testing.T) {
	base := rendered(t, "manifests/base")
	dev := rendered(t, "manifests/overlays/dev")
	for _, service := range []string{"order-api", "validator", "notifier", "analytics"} {
		t.Run(service, func(t *testing.T) {
			prod, ok := platform.FindWorkload(base, service)
			require.True(t, ok)
			live, ok := platform.FindWorkload(dev, service)
			require.True(t, ok)
			assert.True(t, *prod.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem)
			assert.False(t, *live.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem)
			// Everything else about the pod is the same: the overlay adapts, it does not fork.
			liveSpec := live.Template.Spec.DeepCopy()
			liveSpec.Containers[0].SecurityContext = prod.Template.Spec.Containers[0].SecurityContext
			liveSpec.Containers[0].Resources = prod.Template.Spec.Containers[0].Resources
			prodSpec := &prod.Template.Spec
			assert.Equal(t, prodSpec, liveSpec)
		})
	}
}

func TestEveryImageIsBuiltByTheTiltfileOrAPinnedRelease(t *testing.T) {
	built := builtImages(t)
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			requireNoProblems(t, platform.CheckImages(rendered(t, dir), built))
		})
	}
}
