package platform_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// The ha profile: three nodes of each broker, one per zone of kind/ha.yaml.
const (
	haOverlay = "manifests/overlays/ha"
	haNodes   = 3
)

// brokerSpread is how strictly each broker spreads: one node per Kind worker and per zone, or
// not scheduled at all.
var brokerSpread = map[string]corev1.UnsatisfiableConstraintAction{
	platform.ZoneLabel:   corev1.DoNotSchedule,
	corev1.LabelHostname: corev1.DoNotSchedule,
}

// haChecks are every check of the replicated profile, on one render.
func haChecks(objects []platform.Object) []error {
	errs := platform.CheckKafkaQuorum(objects, "kafka", haNodes)
	errs = append(errs, platform.CheckRabbitMQCluster(objects, "rabbitmq", haNodes)...)
	errs = append(errs, platform.CheckDisruptionBudgets(objects, "kafka", "rabbitmq", "order-api")...)
	errs = append(errs, platform.CheckSpread(objects, "kafka", brokerSpread)...)
	errs = append(errs, platform.CheckSpread(objects, "rabbitmq", brokerSpread)...)
	errs = append(errs, platform.CheckSpread(objects, "order-api", map[string]corev1.UnsatisfiableConstraintAction{
		corev1.LabelHostname: corev1.ScheduleAnyway,
	})...)
	return errs
}

func TestHAOverlayReplicatesTheBrokersAcrossZones(t *testing.T) {
	requireNoProblems(t, haChecks(rendered(t, haOverlay)))
}

// The clients need no code change, only their configuration: order-api and analytics bootstrap
// from every broker by its own name, and order-api creates its topic on all three.
func TestHAClientsKnowEveryBroker(t *testing.T) {
	objects := rendered(t, haOverlay)
	kafka, ok := platform.Find(objects, "StatefulSet", "kafka")
	require.True(t, ok)
	sts := kafka.Obj.(*appsv1.StatefulSet)
	var brokers []string
	for i := range haNodes {
		brokers = append(brokers, sts.Name+"-"+string(rune('0'+i))+"."+sts.Spec.ServiceName+"."+namespace+".svc:29092")
	}
	for _, client := range []string{"order-api", "analytics"} {
		assert.Equal(t, strings.Join(brokers, ","), env(t, objects, container(t, objects, client), "KAFKA_BOOTSTRAP_SERVERS"), client)
	}
	assert.Equal(t, "3", env(t, objects, container(t, objects, "order-api"), "KAFKA_TOPIC_REPLICATION"))

	api, ok := platform.FindWorkload(objects, "order-api")
	require.True(t, ok)
	assert.GreaterOrEqual(t, *api.Obj.(*appsv1.Deployment).Spec.Replicas, int32(2))

	// RabbitMQ's clients reach whichever node is ready, through a Service that load-balances.
	amqp := serviceAddress(t, objects, "rabbitmq.backend-prep.svc:5672")
	assert.NotEqual(t, corev1.ClusterIPNone, amqp.Spec.ClusterIP)
	assert.False(t, amqp.Spec.PublishNotReadyAddresses)

	// Every variable still one their configuration reads.
	root := repoRoot(t)
	for _, service := range []string{"order-api", "analytics"} {
		reads, err := platform.ConfigEnv(filepath.Join(root, "services", service), configPackage)
		require.NoError(t, err)
		requireNoProblems(t, platform.CheckEnv(service, platform.ContainerEnv(objects, container(t, objects, service)), reads))
	}
}

// Apart from what replication changes, the ha profile runs the dev overlay's pods: the same
// images, resources and hardening.
func TestHAOverlayAdaptsTheDevOverlay(t *testing.T) {
	dev := rendered(t, "manifests/overlays/dev")
	ha := rendered(t, haOverlay)
	for _, name := range []string{"validator", "notifier", "analytics", "postgres", "jaeger"} {
		d, ok := platform.FindWorkload(dev, name)
		require.True(t, ok)
		h, ok := platform.FindWorkload(ha, name)
		require.True(t, ok)
		assert.Equal(t, d.Template, h.Template, name)
	}
	for _, name := range []string{"kafka", "rabbitmq", "order-api"} {
		d, ok := platform.FindWorkload(dev, name)
		require.True(t, ok)
		h, ok := platform.FindWorkload(ha, name)
		require.True(t, ok)
		assert.Equal(t, d.Template.Spec.Containers[0].Image, h.Template.Spec.Containers[0].Image, name)
		assert.Equal(t, d.Template.Spec.Containers[0].Resources, h.Template.Spec.Containers[0].Resources, name)
		// An init container (RabbitMQ's cookie copy) runs the broker's own image: one pin.
		for _, c := range h.Template.Spec.InitContainers {
			assert.Equal(t, d.Template.Spec.Containers[0].Image, c.Image, "%s: init container %s", name, c.Name)
		}
	}
}

// The checks must be able to fail: each fixture is the ha overlay with one thing broken that
// only a cluster would show, as brokers that never form a quorum or a cluster, or lose writes.
func TestHAChecksCatchBrokenManifests(t *testing.T) {
	cases := []struct {
		fixture string
		want    string
	}{
		{"kafka-voters", "KAFKA_CONTROLLER_QUORUM_VOTERS is \"0@kafka-broker.backend-prep.svc:9093"},
		{"kafka-min-isr", `KAFKA_MIN_INSYNC_REPLICAS is "1", want 2`},
		{"kafka-ordered", "StatefulSet/backend-prep/kafka: podManagementPolicy must be Parallel"},
		{"rabbitmq-nodename", `RABBITMQ_NODENAME is "rabbit@$(POD_NAME)", want "rabbit@$(POD_NAME).rabbitmq-nodes.backend-prep"`},
		{"rabbitmq-no-plugin", "it must enable rabbitmq_peer_discovery_k8s"},
		{"rabbitmq-rbac", `RoleBinding/backend-prep/rabbitmq-peer-discovery grants the ServiceAccount "rabbitmq" access to the Kubernetes API`},
		{"rabbitmq-no-cookie", "so the nodes share no cookie"},
		{"pdb-selects-all", "PodDisruptionBudget/backend-prep/kafka also selects the pods of"},
		{"spread-schedule-anyway", "the spread over topology.kubernetes.io/zone is maxSkew 1, ScheduleAnyway; want 1, DoNotSchedule"},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			objects, err := platform.Render(filepath.Join("testdata", "ha", tc.fixture))
			require.NoError(t, err)
			requireProblem(t, haChecks(objects), tc.want)
		})
	}
}

// kind/ha.yaml is kind/cluster.yaml with three workers, one per zone: the same name, registry
// settings, node image and published Gateway port.
func TestKindHAConfigAddsThreeZonedWorkers(t *testing.T) {
	root := repoRoot(t)
	single, err := platform.ReadKindConfig(filepath.Join(root, "kind", "cluster.yaml"))
	require.NoError(t, err)
	ha, err := platform.ReadKindConfig(filepath.Join(root, "kind", "ha.yaml"))
	require.NoError(t, err)
	requireNoProblems(t, platform.CheckKindConfig(ha, clusterName))
	requireNoProblems(t, platform.CheckKindZones(ha, haNodes))

	assert.Equal(t, single.ContainerdConfigPatches, ha.ContainerdConfigPatches)
	require.Len(t, single.Nodes, 1)
	assert.Equal(t, single.Nodes[0], ha.Nodes[0], "the control-plane is the single profile's node")
	for _, node := range ha.Nodes[1:] {
		assert.Equal(t, single.Nodes[0].Image, node.Image)
		assert.Empty(t, node.ExtraPortMappings, "the Gateway's port is published once, by the control-plane")
	}

	shared, err := platform.ReadKindConfig(filepath.Join("testdata", "kind", "ha-shared-zone.yaml"))
	require.NoError(t, err)
	requireProblem(t, platform.CheckKindZones(shared, haNodes), `nodes 1 and 2 are both in zone "a"`)
	requireProblem(t, platform.CheckKindZones(shared, haNodes), "node 3, a worker, has no topology.kubernetes.io/zone label")
	requireProblem(t, platform.CheckKindZones(single, haNodes), "0 workers, want 3")
}

// make up PROFILE=ha creates the cluster of kind/ha.yaml and runs tilt up -- --ha; the
// Tiltfile then deploys the ha overlay, each budget and the RabbitMQ cookie with its workload.
func TestHAOptionDeploysTheHAOverlay(t *testing.T) {
	root := repoRoot(t)
	run, err := platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"ha": true}})
	require.NoError(t, err)
	requireNoProblems(t, run.Check(tiltRules))
	requireNoProblems(t, haChecks(run.Objects))

	holds := func(resource, kind, name string) {
		t.Helper()
		res := run.Resource(resource)
		require.NotNil(t, res, "no resource %q", resource)
		_, ok := platform.Find(res.Objects, kind, name)
		assert.True(t, ok, "resource %q does not hold %s %s", resource, kind, name)
	}
	holds("kafka", "PodDisruptionBudget", "kafka")
	holds("rabbitmq", "PodDisruptionBudget", "rabbitmq")
	holds("order-api", "PodDisruptionBudget", "order-api")
	holds("rabbitmq", "Service", "rabbitmq-nodes")
	holds("rabbitmq", "Secret", "rabbitmq-erlang-cookie")
	holds("rabbitmq", "ConfigMap", "rabbitmq-cluster-config")

	for _, o := range tiltfile(t).Objects {
		assert.NotEqual(t, "PodDisruptionBudget", o.Kind, "without --ha nothing is replicated")
	}
	_, err = platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"ha": true, "autoscale": true}})
	assert.ErrorContains(t, err, "--autoscale and --ha each deploy an overlay of their own")

	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	assert.Contains(t, string(makefile), "$(if $(filter ha,$(PROFILE)),--ha)")
	up, err := os.ReadFile(filepath.Join(root, "scripts", "cluster-up"))
	require.NoError(t, err)
	assert.Contains(t, string(up), `single) readonly KIND_CONFIG="${ROOT}/kind/cluster.yaml" ;;`)
	assert.Contains(t, string(up), `ha) readonly KIND_CONFIG="${ROOT}/kind/ha.yaml" ;;`)
	assert.Contains(t, string(up), "make down && make up PROFILE=${PROFILE}", "a cluster of the other profile is refused with what to do")
}
