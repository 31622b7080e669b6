package platform_test

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// envoyGatewayController is the controllerName Envoy Gateway acts for (Envoy Gateway v1.9.1,
// examples/kubernetes/quickstart.yaml), installed by scripts/cluster-up.
const envoyGatewayController = "gateway.envoyproxy.io/gatewayclass-controller"

var (
	crdOnce    sync.Once
	crdSchemas *platform.CRDSchemas
	crdErr     error
)

// gatewayAPISchemas are the standard channel's CRD schemas of the kinds the manifests use,
// from the sigs.k8s.io/gateway-api module this module requires.
func gatewayAPISchemas(t *testing.T) *platform.CRDSchemas {
	t.Helper()
	crdOnce.Do(func() {
		var dir string
		if dir, crdErr = platform.GatewayAPICRDDir(t.Context()); crdErr != nil {
			return
		}
		crdSchemas, crdErr = platform.LoadCRDSchemas(
			filepath.Join(dir, "gateway.networking.k8s.io_gatewayclasses.yaml"),
			filepath.Join(dir, "gateway.networking.k8s.io_gateways.yaml"),
			filepath.Join(dir, "gateway.networking.k8s.io_httproutes.yaml"),
		)
	})
	require.NoError(t, crdErr)
	return crdSchemas
}

// The checks must be able to fail: each fixture breaks one thing the cluster would only show
// as a route that answers 404 or 503, or an object the API server refuses.
func TestGatewayChecksCatchBrokenManifests(t *testing.T) {
	class, err := platform.Render(filepath.Join("testdata", "gateway", "class"))
	require.NoError(t, err)
	schemas := gatewayAPISchemas(t)
	all := func(objects []platform.Object) []error {
		objects = slices.Concat(objects, class)
		errs := platform.CheckGatewayAPI(objects, envoyGatewayController)
		errs = append(errs, schemas.Check(objects)...)
		_, portErrs := platform.GatewayProxyPorts(objects)
		return append(errs, portErrs...)
	}
	t.Run("the unbroken fixture passes", func(t *testing.T) {
		objects, err := platform.Render(filepath.Join("testdata", "gateway", "good"))
		require.NoError(t, err)
		requireNoProblems(t, all(objects))
		ports, errs := platform.GatewayProxyPorts(objects)
		require.Empty(t, errs)
		assert.Equal(t, []platform.GatewayProxyPort{{Gateway: "demo/demo", Listener: 80, NodePort: 30080}}, ports)
	})
	t.Run("another controller's class", func(t *testing.T) {
		objects, err := platform.Render(filepath.Join("testdata", "gateway", "good"))
		require.NoError(t, err)
		requireProblem(t, platform.CheckGatewayAPI(slices.Concat(objects, class), "example.com/gateway-controller"),
			`controllerName is "gateway.envoyproxy.io/gatewayclass-controller", want "example.com/gateway-controller"`)
	})
	cases := []struct {
		fixture string
		want    string
	}{
		{"route-to-missing-service", `backendRef "demo-v2": no such Service in namespace demo`},
		{"route-to-missing-port", `backendRef "demo": the Service has no port 8080`},
		{"route-to-missing-gateway", `parentRef "public": no such Gateway in namespace demo`},
		{"route-to-missing-listener", `parentRef "demo": the Gateway has no listener "https"`},
		{"missing-class", `gatewayClassName "nginx": no such GatewayClass`},
		{"missing-parameters", `infrastructure.parametersRef gateway.envoyproxy.io/EnvoyProxy "demo-proxy": no such object`},
		{"ingress-path-type", "at '/spec/rules/0/matches/0/path/type': value must be one of 'Exact', 'PathPrefix', 'RegularExpression'"},
		{"envoyproxy-patch-unknown-field", `envoyService.patch.value is not a Service: strict decoding error: unknown field "spec.ports[0].nodeport"`},
		{"envoyproxy-patch-other-port", "envoyService.patch sets the nodePort of port 8080, which no listener of Gateway/demo/demo has"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			objects, err := platform.Render(filepath.Join("testdata", "gateway", tc.fixture))
			require.NoError(t, err)
			requireProblem(t, all(objects), tc.want)
		})
	}

	// A misspelled field fails twice over: the Go types refuse it, and so does the schema.
	t.Run("unknown fields", func(t *testing.T) {
		_, err := platform.Render(filepath.Join("testdata", "gateway", "route-unknown-field"))
		assert.ErrorContains(t, err, `unknown field "spec.rules[0].backendRef"`)
		_, err = platform.Render(filepath.Join("testdata", "gateway", "envoyproxy-unknown-field"))
		assert.ErrorContains(t, err, `unknown field "spec.provider.kubernetes.envoyServce"`)

		objects, err := platform.Render(filepath.Join("testdata", "gateway", "good"))
		require.NoError(t, err)
		i := slices.IndexFunc(objects, func(o platform.Object) bool { return o.Kind == "HTTPRoute" })
		require.GreaterOrEqual(t, i, 0)
		route := objects[i]
		route.JSON = []byte(strings.Replace(string(route.JSON), `"backendRefs"`, `"backendRef"`, 1))
		requireProblem(t, schemas.Check([]platform.Object{route}), "additional properties 'backendRef' not allowed")
	})
}
