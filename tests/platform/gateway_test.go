package platform_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// withClass is what Tilt applies for the Gateway: a kustomization and the cluster-scoped
// objects of manifests/cluster (the GatewayClass).
func withClass(t *testing.T, dir string) []platform.Object {
	t.Helper()
	return slices.Concat(rendered(t, dir), rendered(t, "manifests/cluster"))
}

func TestGatewayAPIObjectsMatchTheirCRDSchemas(t *testing.T) {
	schemas := gatewayAPISchemas(t)
	for _, kind := range []string{"GatewayClass", "Gateway", "HTTPRoute"} {
		assert.Contains(t, schemas.Kinds(), schema.GroupVersionKind{Group: gatewayv1.GroupName, Version: "v1", Kind: kind})
	}
	for _, dir := range []string{"manifests/base", "manifests/overlays/dev", "manifests/cluster"} {
		t.Run(dir, func(t *testing.T) {
			objects := rendered(t, dir)
			checked := slices.ContainsFunc(objects, func(o platform.Object) bool { return o.Group() == gatewayv1.GroupName })
			require.True(t, checked, "%s renders no Gateway API object", dir)
			requireNoProblems(t, schemas.Check(objects))
		})
	}
}

func TestGatewayRoutesReachServicesThatExist(t *testing.T) {
	for _, dir := range []string{"manifests/base", "manifests/overlays/dev"} {
		t.Run(dir, func(t *testing.T) {
			requireNoProblems(t, platform.CheckGatewayAPI(withClass(t, dir), envoyGatewayController))
		})
	}
	t.Run("the designed routes", func(t *testing.T) {
		// docs/platform.md, "Traffic into the cluster": the two HTTP APIs, by path prefix.
		want := map[string]string{"/v1/orders": "order-api:8080", "/v1/stats": "analytics:8081"}
		got := map[string]string{}
		for _, o := range rendered(t, "manifests/overlays/dev") {
			route, ok := o.Obj.(*gatewayv1.HTTPRoute)
			if !ok {
				continue
			}
			for _, ref := range route.Spec.ParentRefs {
				assert.Equal(t, "public", string(ref.Name), "%s", o)
			}
			for _, rule := range route.Spec.Rules {
				require.Len(t, rule.Matches, 1, "%s", o)
				path := rule.Matches[0].Path
				require.NotNil(t, path, "%s", o)
				assert.Equal(t, gatewayv1.PathMatchPathPrefix, *path.Type)
				require.Len(t, rule.BackendRefs, 1, "%s", o)
				ref := rule.BackendRefs[0]
				got[*path.Value] = string(ref.Name) + ":" + strconv.Itoa(int(*ref.Port))
			}
		}
		assert.Equal(t, want, got)
	})
}

// `curl localhost:8000/v1/orders` works because three files agree: the EnvoyProxy fixes the
// proxy Service's nodePort, kind publishes that node port on the laptop, and the doctor checks
// that the laptop's port is free. scripts/cluster-up warns about a cluster without the mapping.
func TestKindPublishesTheGatewaysNodePortOnLocalhost(t *testing.T) {
	ports, errs := platform.GatewayProxyPorts(rendered(t, "manifests/overlays/dev"))
	requireNoProblems(t, errs)
	require.Len(t, ports, 1, "the dev overlay fixes one nodePort for the Gateway's proxy")
	nodePort := ports[0].NodePort
	assert.Equal(t, "backend-prep/public", ports[0].Gateway)

	cluster, err := platform.ReadKindConfig(filepath.Join(repoRoot(t), "kind", "cluster.yaml"))
	require.NoError(t, err)
	require.Len(t, cluster.Nodes, 1)
	mappings := cluster.Nodes[0].ExtraPortMappings
	require.Len(t, mappings, 1, "kind/cluster.yaml publishes one port: the Gateway's")
	m := mappings[0]
	assert.Equal(t, nodePort, m.ContainerPort, "kind must publish the node port the Gateway's proxy Service uses")
	assert.Equal(t, "127.0.0.1", m.ListenAddress, "the Gateway is for this machine only, not its network")
	assert.EqualValues(t, "TCP", m.Protocol)
	require.NotZero(t, m.HostPort, "a fixed host port: without one kind picks a random port")

	hostPort := strconv.Itoa(int(m.HostPort))
	assert.Equal(t, hostPort, scriptSetting(t, "doctor", "GATEWAY_PORT"), "scripts/doctor must check the port kind publishes")
	assert.Equal(t, strconv.Itoa(int(nodePort)), scriptSetting(t, "doctor", "GATEWAY_NODE_PORT"))
	assert.Equal(t, clusterName+"-control-plane", scriptSetting(t, "doctor", "KIND_NODE"))
	assert.Equal(t, strconv.Itoa(int(nodePort)), scriptSetting(t, "cluster-up", "GATEWAY_NODE_PORT"))

	// Not one of Tilt's port-forwards, with or without the optional parts.
	run, err := platform.ExecTiltfile(filepath.Join(repoRoot(t), "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"kafka-ui": true, "observability": true}})
	require.NoError(t, err)
	resources, _, _ := run.Assemble()
	for _, res := range resources {
		for _, pf := range res.PortForwards {
			assert.NotEqual(t, int(m.HostPort), pf.Local, "resource %q forwards localhost:%d, where kind publishes the Gateway", res.Name, pf.Local)
		}
	}
	gw := run.Resource("gateway")
	require.NotNil(t, gw)
	require.NotEmpty(t, gw.Links)
	for _, l := range gw.Links {
		assert.True(t, strings.HasPrefix(l.URL, "http://localhost:"+hostPort+"/"), "link %s is not the Gateway's address", l.URL)
	}
}

// Tilt applies the Gateway API objects as one resource, once the Services behind its routes
// are ready; the Gateway's NetworkPolicies come with the others, in "platform".
func TestTiltAppliesTheGatewayAfterItsBackends(t *testing.T) {
	run := tiltfile(t)
	gw := run.Resource("gateway")
	require.NotNil(t, gw, "no resource gateway")
	assert.Contains(t, gw.Labels, "infra")
	var kinds []string
	for _, o := range gw.Objects {
		kinds = append(kinds, o.Kind)
	}
	assert.ElementsMatch(t, []string{"GatewayClass", "EnvoyProxy", "Gateway", "HTTPRoute", "HTTPRoute"}, kinds)
	for _, o := range gw.Objects {
		route, ok := o.Obj.(*gatewayv1.HTTPRoute)
		if !ok {
			continue
		}
		for _, rule := range route.Spec.Rules {
			for _, ref := range rule.BackendRefs {
				assert.Contains(t, gw.Deps, string(ref.Name), "the gateway resource must wait for %s, which %s routes to", ref.Name, o)
			}
		}
	}
	platformRes := run.Resource("platform")
	require.NotNil(t, platformRes)
	var policies []string
	for _, o := range platformRes.Objects {
		if o.Kind == "NetworkPolicy" {
			policies = append(policies, o.Name)
		}
	}
	assert.Contains(t, policies, "allow-order-api-from-gateway")
	assert.Contains(t, policies, "allow-analytics-from-gateway")
}

// scripts/cluster-up installs the Envoy Gateway release docs/platform.md lists, the way its
// documentation does (server-side apply of the release's install.yaml), and waits for its
// controller within a bound.
func TestClusterUpInstallsThePinnedEnvoyGateway(t *testing.T) {
	version := scriptSetting(t, "cluster-up", "ENVOY_GATEWAY_VERSION")
	assert.Regexp(t, `^v[0-9]+\.[0-9]+\.[0-9]+$`, version)
	assert.Equal(t, "https://github.com/envoyproxy/gateway/releases/download/${ENVOY_GATEWAY_VERSION}/install.yaml",
		scriptSetting(t, "cluster-up", "ENVOY_GATEWAY_INSTALL_URL"))
	assert.Equal(t, "envoy-gateway-system", scriptSetting(t, "cluster-up", "ENVOY_GATEWAY_NAMESPACE"))
	assert.Regexp(t, `^[0-9]+m$`, scriptSetting(t, "cluster-up", "ENVOY_GATEWAY_WAIT"))
	up, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "cluster-up"))
	require.NoError(t, err)
	assert.Contains(t, string(up), `apply --server-side -f "${ENVOY_GATEWAY_INSTALL_URL}"`)
	assert.Contains(t, string(up), `wait --timeout="${ENVOY_GATEWAY_WAIT}" -n "${ENVOY_GATEWAY_NAMESPACE}"`)
	assert.Contains(t, string(up), `deployment/envoy-gateway --for=condition=Available`)

	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "platform.md"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(doc), "| Envoy Gateway | `"+version+"` |"), "docs/platform.md's pins table must list Envoy Gateway %s, which scripts/cluster-up installs", version)
}
