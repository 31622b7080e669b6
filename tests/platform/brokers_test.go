package platform_test

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/backend-prep/backend-prep/tests/platform"
)

const namespace = "backend-prep"

// container returns the first container of the named workload in the dev render.
func container(t *testing.T, objects []platform.Object, workload string) *corev1.Container {
	t.Helper()
	w, ok := platform.FindWorkload(objects, workload)
	require.True(t, ok, "no workload %q", workload)
	return &w.Template.Spec.Containers[0]
}

func env(t *testing.T, objects []platform.Object, c *corev1.Container, name string) string {
	t.Helper()
	v, ok := platform.EnvValue(objects, c, name)
	require.True(t, ok, "container %q sets no literal %s", c.Name, name)
	return v
}

// listeners parses Kafka's "NAME://host:port,…" lists.
func listeners(t *testing.T, list string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(list, ",") {
		name, addr, ok := strings.Cut(l, "://")
		require.True(t, ok, "listener %q", l)
		out[name] = addr
	}
	return out
}

// serviceAddress checks that host:port names a Service of the namespace
// (<name>.<namespace>.svc) and a port it exposes, and returns the Service.
func serviceAddress(t *testing.T, objects []platform.Object, hostPort string) *corev1.Service {
	t.Helper()
	host, port, err := net.SplitHostPort(hostPort)
	require.NoError(t, err)
	name, ok := strings.CutSuffix(host, "."+namespace+".svc")
	require.True(t, ok, "%s is not <service>.%s.svc", host, namespace)
	o, ok := platform.Find(objects, "Service", name)
	require.True(t, ok, "no Service %q for %s", name, hostPort)
	svc := o.Obj.(*corev1.Service)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	assert.True(t, func() bool {
		for _, p := range svc.Spec.Ports {
			if int(p.Port) == n {
				return true
			}
		}
		return false
	}(), "Service %q exposes no port %d", name, n)
	return svc
}

func TestKafkaRunsTheOfficialImageAsASingleKRaftNode(t *testing.T) {
	objects := rendered(t, "manifests/overlays/dev")
	kafka := container(t, objects, "kafka")
	get := func(name string) string { return env(t, objects, kafka, name) }

	// The cluster runs the Kafka release `make brokers` runs here, so what the tests prove
	// holds for `make up` too; a bump is made in both places at once.
	pom, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "brokers.d", "kafka", "pom.xml"))
	require.NoError(t, err)
	version := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(pom)
	require.NotNil(t, version, "scripts/brokers.d/kafka/pom.xml sets no kafka.version")
	assert.Equal(t, "apache/kafka:"+string(version[1]), kafka.Image)
	_, named := platform.Find(objects, "Service", "kafka")
	assert.False(t, named, `a Service named "kafka" injects KAFKA_PORT, which the image reads as a broker property`)

	assert.Equal(t, "broker,controller", get("KAFKA_PROCESS_ROLES"))
	id, err := base64.RawURLEncoding.DecodeString(get("CLUSTER_ID"))
	require.NoError(t, err, "CLUSTER_ID is a base64url UUID")
	assert.Len(t, id, 16)

	bound := listeners(t, get("KAFKA_LISTENERS"))
	advertised := listeners(t, get("KAFKA_ADVERTISED_LISTENERS"))
	protocols := map[string]string{}
	for _, kv := range strings.Split(get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"), ",") {
		name, proto, _ := strings.Cut(kv, ":")
		protocols[name] = proto
	}
	for name := range bound {
		assert.Contains(t, protocols, name, "listener %s has no security protocol", name)
	}
	for name := range advertised {
		assert.Contains(t, bound, name, "advertised listener %s is not bound", name)
	}
	assert.Contains(t, advertised, get("KAFKA_INTER_BROKER_LISTENER_NAME"))

	t.Run("pods reach the internal listener through the headless Service", func(t *testing.T) {
		addr := advertised["INTERNAL"]
		svc := serviceAddress(t, objects, addr)
		assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
		_, port, _ := net.SplitHostPort(addr)
		assert.Equal(t, ":"+port, bound["INTERNAL"])
	})
	t.Run("the host listener is localhost:9092, which Tilt forwards to the same pod port", func(t *testing.T) {
		assert.Equal(t, "localhost:9092", advertised["HOST"])
		assert.Equal(t, ":9092", bound["HOST"])
		res := tiltfile(t).Resource("kafka")
		require.NotNil(t, res)
		assert.Contains(t, res.PortForwards, platform.PortForward{Local: 9092, Container: 9092, Name: "Kafka bootstrap localhost:9092"})
	})
	t.Run("the controller listens on the pod's loopback only", func(t *testing.T) {
		controller := get("KAFKA_CONTROLLER_LISTENER_NAMES")
		assert.True(t, strings.HasPrefix(bound[controller], "localhost:"), "controller bound to %q", bound[controller])
		assert.NotContains(t, advertised, controller)
		assert.Equal(t, get("KAFKA_NODE_ID")+"@"+bound[controller], get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
	})
	t.Run("internal topics keep one replica", func(t *testing.T) {
		for _, name := range []string{
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
		} {
			assert.Equal(t, "1", get(name), name)
		}
	})
	t.Run("the heap is bounded well inside the memory limit", func(t *testing.T) {
		m := regexp.MustCompile(`-Xmx(\d+)m`).FindStringSubmatch(get("KAFKA_HEAP_OPTS"))
		require.NotNil(t, m, "KAFKA_HEAP_OPTS sets no -Xmx")
		heapMiB, _ := strconv.Atoi(m[1])
		limit := kafka.Resources.Limits[corev1.ResourceMemory]
		assert.LessOrEqual(t, int64(heapMiB)*2, limit.Value()/(1<<20), "heap %dMi needs room for the JVM beyond it under the %s limit", heapMiB, limit.String())
	})
	t.Run("the image's property renderer can read every KAFKA_ value", func(t *testing.T) {
		// It splits each variable at "=" and drops any value that contains one.
		for _, e := range kafka.Env {
			if strings.HasPrefix(e.Name, "KAFKA_") {
				assert.NotContains(t, e.Value, "=", e.Name)
			}
		}
	})
	t.Run("the log directory is on the persistent volume", func(t *testing.T) {
		require.Len(t, kafka.VolumeMounts, 1)
		assert.True(t, strings.HasPrefix(get("KAFKA_LOG_DIRS"), kafka.VolumeMounts[0].MountPath+"/"))
		assertVolumeClaim(t, objects, "kafka", kafka.VolumeMounts[0].Name)
	})
}

func assertVolumeClaim(t *testing.T, objects []platform.Object, workload, claim string) {
	t.Helper()
	o, ok := platform.Find(objects, "StatefulSet", workload)
	require.True(t, ok, "%s is not a StatefulSet", workload)
	found := false
	for _, c := range o.Obj.(*appsv1.StatefulSet).Spec.VolumeClaimTemplates {
		if c.Name == claim {
			found = true
			storage := c.Spec.Resources.Requests[corev1.ResourceStorage]
			assert.Positive(t, storage.Cmp(resource.MustParse("0")), "claim %q requests no storage", claim)
		}
	}
	assert.True(t, found, "%s mounts %q, which is no volume claim template", workload, claim)
}

func TestClientsUseTheBrokersAdvertisedAddresses(t *testing.T) {
	objects := rendered(t, "manifests/overlays/dev")
	kafka := container(t, objects, "kafka")
	internal := listeners(t, env(t, objects, kafka, "KAFKA_ADVERTISED_LISTENERS"))["INTERNAL"]
	for _, name := range []string{"order-api", "analytics"} {
		t.Run(name+" bootstraps from Kafka's internal listener", func(t *testing.T) {
			assert.Equal(t, internal, env(t, objects, container(t, objects, name), "KAFKA_BOOTSTRAP_SERVERS"))
		})
	}
	t.Run("order-api dials the validator's gRPC port", func(t *testing.T) {
		addr := env(t, objects, container(t, objects, "order-api"), "VALIDATOR_ADDR")
		svc := serviceAddress(t, objects, addr)
		assert.Equal(t, "validator", svc.Name)
		_, port, _ := net.SplitHostPort(addr)
		assert.Equal(t, port, strconv.Itoa(int(container(t, objects, "validator").Ports[0].ContainerPort)))
	})
}

func TestRabbitMQRunsTheManagementImageWithItsDataOnAVolume(t *testing.T) {
	objects := rendered(t, "manifests/overlays/dev")
	rabbit := container(t, objects, "rabbitmq")
	assert.Regexp(t, `^rabbitmq:4\.\d+\.\d+-management$`, rabbit.Image)

	t.Run("readiness is a TCP check on the AMQP port", func(t *testing.T) {
		require.NotNil(t, rabbit.ReadinessProbe.TCPSocket)
		port, err := platform.ResolvePort(rabbit, rabbit.ReadinessProbe.TCPSocket.Port)
		require.NoError(t, err)
		assert.Equal(t, int32(5672), port)
	})
	t.Run("data lives on a persistent volume", func(t *testing.T) {
		for _, m := range rabbit.VolumeMounts {
			if m.MountPath == "/var/lib/rabbitmq" {
				assertVolumeClaim(t, objects, "rabbitmq", m.Name)
				return
			}
		}
		t.Fatal("nothing is mounted at /var/lib/rabbitmq")
	})
}

func TestNetworkPoliciesAllowOnlyTheDesignedConnections(t *testing.T) {
	// What `tilt up -- --observability` applies: the dev overlay and the optional metrics.
	objects := slices.Concat(rendered(t, "manifests/overlays/dev"), rendered(t, "manifests/optional/observability"))
	nsLabels := map[string]string{"kubernetes.io/metadata.name": namespace}
	pod := func(name string) platform.Pod {
		return platform.Pod{Namespace: namespace, NamespaceLabels: nsLabels, Labels: map[string]string{"app.kubernetes.io/name": name}}
	}
	outsider := platform.Pod{Namespace: "default", NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "default"}, Labels: map[string]string{"app.kubernetes.io/name": "order-api"}}
	// The proxy of the Gateway "public", as Envoy Gateway v1.9.1 labels it, in its namespace.
	gatewayProxy := func(gateway string) platform.Pod {
		return platform.Pod{
			Namespace:       "envoy-gateway-system",
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "envoy-gateway-system"},
			Labels: map[string]string{
				"app.kubernetes.io/name":                         "envoy",
				"app.kubernetes.io/component":                    "proxy",
				"app.kubernetes.io/managed-by":                   "envoy-gateway",
				"gateway.envoyproxy.io/owning-gateway-name":      gateway,
				"gateway.envoyproxy.io/owning-gateway-namespace": namespace,
			},
		}
	}
	cases := []struct {
		from    platform.Pod
		fromArg string
		to      string
		port    int32
		allowed bool
	}{
		{pod("order-api"), "order-api", "validator", 50051, true},
		{pod("notifier"), "notifier", "validator", 50051, false},
		{pod("analytics"), "analytics", "validator", 50051, false},
		{pod("order-api"), "order-api", "kafka", 29092, true},
		{pod("analytics"), "analytics", "kafka", 29092, true},
		{pod("kafka-ui"), "kafka-ui", "kafka", 29092, true},
		{pod("notifier"), "notifier", "kafka", 29092, false},
		{pod("validator"), "validator", "kafka", 29092, false},
		{pod("order-api"), "order-api", "rabbitmq", 5672, true},
		{pod("notifier"), "notifier", "rabbitmq", 5672, true},
		{pod("analytics"), "analytics", "rabbitmq", 5672, false},
		{pod("order-api"), "order-api", "rabbitmq", 15672, false},
		{pod("notifier"), "notifier", "order-api", 9090, true},
		{pod("kafka"), "kafka", "analytics", 9090, true},
		{outsider, "another namespace", "order-api", 9090, false},
		{outsider, "another namespace", "validator", 50051, false},
		{outsider, "another namespace", "order-api", 8080, true},
		{outsider, "another namespace", "analytics", 8081, true},
		{pod("order-api"), "order-api", "jaeger", 4318, true},
		{pod("validator"), "validator", "jaeger", 4318, true},
		{pod("notifier"), "notifier", "jaeger", 4318, true},
		{pod("analytics"), "analytics", "jaeger", 4317, true},
		{pod("kafka"), "kafka", "jaeger", 4318, false},
		{pod("order-api"), "order-api", "jaeger", 16686, false},
		{outsider, "another namespace", "jaeger", 4318, false},
		// The nodes of a broker among themselves (the ha profile): KRaft, Erlang distribution.
		{pod("kafka"), "kafka", "kafka", 9093, true},
		{pod("order-api"), "order-api", "kafka", 9093, false},
		{pod("rabbitmq"), "rabbitmq", "rabbitmq", 4369, true},
		{pod("rabbitmq"), "rabbitmq", "rabbitmq", 25672, true},
		{pod("notifier"), "notifier", "rabbitmq", 25672, false},
		{pod("kafka"), "kafka", "rabbitmq", 4369, false},
		{pod("prometheus"), "prometheus", "rabbitmq", 15692, true},
		{pod("prometheus"), "prometheus", "order-api", 9090, true},
		{pod("prometheus"), "prometheus", "analytics", 9090, true},
		{pod("order-api"), "order-api", "rabbitmq", 15692, false},
		{pod("prometheus"), "prometheus", "rabbitmq", 5672, false},
		// The optional observability kustomization, applied next to the dev overlay.
		{pod("grafana"), "grafana", "prometheus", 9090, true},
		{pod("order-api"), "order-api", "prometheus", 9090, false},
		{outsider, "another namespace", "prometheus", 9090, false},
		{outsider, "another namespace", "grafana", 3000, false},
		// The Gateway's proxy: the two HTTP APIs it routes to, nothing else.
		{gatewayProxy("public"), "the Gateway's proxy", "order-api", 8080, true},
		{gatewayProxy("public"), "the Gateway's proxy", "analytics", 8081, true},
		{gatewayProxy("public"), "the Gateway's proxy", "order-api", 9090, false},
		{gatewayProxy("public"), "the Gateway's proxy", "analytics", 9090, false},
		{gatewayProxy("public"), "the Gateway's proxy", "validator", 50051, false},
		{gatewayProxy("public"), "the Gateway's proxy", "kafka", 29092, false},
		{gatewayProxy("public"), "the Gateway's proxy", "rabbitmq", 15672, false},
		{gatewayProxy("public"), "the Gateway's proxy", "jaeger", 16686, false},
	}
	for _, tc := range cases {
		verdict := "may not"
		if tc.allowed {
			verdict = "may"
		}
		t.Run(tc.fromArg+" "+verdict+" reach "+tc.to+" on "+strconv.Itoa(int(tc.port)), func(t *testing.T) {
			assert.Equal(t, tc.allowed, platform.IngressAllowed(objects, tc.from, pod(tc.to), tc.port))
		})
	}
	// allow-order-api-http and allow-analytics-http admit every client on the HTTP ports today;
	// the Gateway's own policies must let its proxy through without them, and only its proxy.
	t.Run("the Gateway's path does not rest on the open HTTP policies", func(t *testing.T) {
		var narrowed []platform.Object
		for _, o := range objects {
			if o.Kind != "NetworkPolicy" || (o.Name != "allow-order-api-http" && o.Name != "allow-analytics-http") {
				narrowed = append(narrowed, o)
			}
		}
		require.Len(t, narrowed, len(objects)-2)
		assert.True(t, platform.IngressAllowed(narrowed, gatewayProxy("public"), pod("order-api"), 8080))
		assert.True(t, platform.IngressAllowed(narrowed, gatewayProxy("public"), pod("analytics"), 8081))
		assert.False(t, platform.IngressAllowed(narrowed, gatewayProxy("public"), pod("order-api"), 8081))
		assert.False(t, platform.IngressAllowed(narrowed, gatewayProxy("another-gateway"), pod("order-api"), 8080), "another Gateway's proxy")
		assert.False(t, platform.IngressAllowed(narrowed, outsider, pod("order-api"), 8080))
	})
	t.Run("without the policies everything would be allowed", func(t *testing.T) {
		var withoutPolicies []platform.Object
		for _, o := range objects {
			if o.Kind != "NetworkPolicy" {
				withoutPolicies = append(withoutPolicies, o)
			}
		}
		assert.True(t, platform.IngressAllowed(withoutPolicies, pod("notifier"), pod("validator"), 50051))
	})
}
