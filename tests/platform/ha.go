package platform

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podIndexField is the downward API path of a StatefulSet pod's ordinal: the label the
// StatefulSet controller sets on each of its pods.
var podIndexField = "metadata.labels['" + appsv1.PodIndexLabel + "']"

// replicatedSet returns the named StatefulSet and the headless Service that names its pods,
// reporting what keeps it from running nodes replicas that find each other: a different
// count, ordered start-up (each node's readiness waits for its peers), or a governing Service
// that is missing, not headless, or hides pods that are not ready yet.
func replicatedSet(objects []Object, name string, nodes int32) (*appsv1.StatefulSet, *corev1.Service, []error) {
	o, ok := Find(objects, "StatefulSet", name)
	if !ok {
		return nil, nil, []error{fmt.Errorf("no StatefulSet %q", name)}
	}
	sts := o.Obj.(*appsv1.StatefulSet)
	var errs []error
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != nodes {
		errs = append(errs, fmt.Errorf("%s: want %d replicas", o, nodes))
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		errs = append(errs, fmt.Errorf("%s: podManagementPolicy must be Parallel: a node is ready only once it has found its peers", o))
	}
	s, ok := Find(objects, "Service", sts.Spec.ServiceName)
	if !ok {
		return sts, nil, append(errs, fmt.Errorf("%s: serviceName %q: no such Service", o, sts.Spec.ServiceName))
	}
	svc := s.Obj.(*corev1.Service)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, fmt.Errorf("%s is not headless: its pods get no DNS names of their own", s))
	}
	if !svc.Spec.PublishNotReadyAddresses {
		errs = append(errs, fmt.Errorf("%s must publish not-ready addresses: the nodes resolve each other before they are ready", s))
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
		errs = append(errs, fmt.Errorf("%s does not select the pods of %s", s, o))
	}
	return sts, svc, errs
}

// podName returns the DNS name of a StatefulSet's pod ordinal under its headless Service.
func podName(sts *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc", sts.Name, ordinal, sts.Spec.ServiceName, sts.Namespace)
}

// fieldEnv reports whether the container sets the variable from the given field of its pod,
// before any variable whose value refers to it as $(name), as Kubernetes expands only those.
func fieldEnv(c *corev1.Container, name, field string) error {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != field {
		return fmt.Errorf("container %q must set %s from the pod's %s", c.Name, name, field)
	}
	for _, e := range c.Env[:i] {
		if strings.Contains(e.Value, "$("+name+")") {
			return fmt.Errorf("container %q: %s refers to $(%s) before it is set", c.Name, e.Name, name)
		}
	}
	return nil
}

// CheckKafkaQuorum reports what keeps the named StatefulSet from running nodes Kafka nodes
// that are each broker and KRaft controller, in one quorum, with every topic on every node and
// writes that survive one node down: node ids that are not the pods' ordinals, voters that are
// not the pods' names under the headless Service on the controller listener, brokers that do not
// advertise their own names, and replication factors or min.insync.replicas that do not match.
func CheckKafkaQuorum(objects []Object, name string, nodes int32) []error {
	sts, svc, errs := replicatedSet(objects, name, nodes)
	if sts == nil || svc == nil {
		return errs
	}
	c := &sts.Spec.Template.Spec.Containers[0]
	get := func(v string) string {
		value, _ := EnvValue(objects, c, v)
		return value
	}
	if roles := strings.Split(get("KAFKA_PROCESS_ROLES"), ","); !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
		errs = append(errs, fmt.Errorf("KAFKA_PROCESS_ROLES is %q, want broker,controller", get("KAFKA_PROCESS_ROLES")))
	}
	if err := fieldEnv(c, "KAFKA_NODE_ID", podIndexField); err != nil {
		errs = append(errs, err)
	}
	controllerPort := ""
	for _, l := range strings.Split(get("KAFKA_LISTENERS"), ",") {
		if addr, ok := strings.CutPrefix(l, get("KAFKA_CONTROLLER_LISTENER_NAMES")+"://"); ok {
			controllerPort = addr[strings.LastIndex(addr, ":")+1:]
		}
	}
	if port, err := strconv.Atoi(controllerPort); err != nil || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == port }) {
		errs = append(errs, fmt.Errorf("the controller listener's port %q is not a port the container declares", controllerPort))
	}
	var voters []string
	for i := range int(nodes) {
		voters = append(voters, fmt.Sprintf("%d@%s:%s", i, podName(sts, i), controllerPort))
	}
	if got := get("KAFKA_CONTROLLER_QUORUM_VOTERS"); got != strings.Join(voters, ",") {
		errs = append(errs, fmt.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS is %q, want each pod's ordinal and name: %q", got, strings.Join(voters, ",")))
	}
	if err := fieldEnv(c, "POD_NAME", "metadata.name"); err != nil {
		errs = append(errs, err)
	}
	internal := fmt.Sprintf("%s://$(POD_NAME).%s.%s.svc:", get("KAFKA_INTER_BROKER_LISTENER_NAME"), svc.Name, sts.Namespace)
	if !strings.Contains(get("KAFKA_ADVERTISED_LISTENERS"), internal) {
		errs = append(errs, fmt.Errorf("KAFKA_ADVERTISED_LISTENERS is %q: each broker must advertise its own name, %s…", get("KAFKA_ADVERTISED_LISTENERS"), internal))
	}
	want := map[string]int32{
		"KAFKA_DEFAULT_REPLICATION_FACTOR":                       nodes,
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 nodes,
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         nodes,
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": nodes,
		"KAFKA_MIN_INSYNC_REPLICAS":                              nodes - 1,
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    nodes - 1,
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            nodes - 1,
	}
	for _, v := range slices.Sorted(maps.Keys(want)) {
		if got := get(v); got != strconv.Itoa(int(want[v])) {
			errs = append(errs, fmt.Errorf("%s is %q, want %d", v, got, want[v]))
		}
	}
	return errs
}

// rabbitmqPeerPlugin is the peer discovery plugin that, from RabbitMQ 4.1 on, asks the
// Kubernetes API nothing: a blank node named rabbit@<statefulset>-<N>.<domain> joins
// <statefulset>-0 (rabbitmq-server v4.3.5, deps/rabbitmq_peer_discovery_k8s).
const rabbitmqPeerPlugin = "rabbitmq_peer_discovery_k8s"

// CheckRabbitMQCluster reports what keeps the named StatefulSet from running nodes RabbitMQ
// nodes in one cluster: node names that are not the pods' names under the headless Service,
// the peer discovery plugin not enabled or not configured in conf.d, the inter-node ports
// missing from that Service, no shared Erlang cookie, and any Kubernetes API access, which the
// plugin does not need.
func CheckRabbitMQCluster(objects []Object, name string, nodes int32) []error {
	sts, svc, errs := replicatedSet(objects, name, nodes)
	if sts == nil || svc == nil {
		return errs
	}
	spec := &sts.Spec.Template.Spec
	c := &spec.Containers[0]
	get := func(v string) string {
		value, _ := EnvValue(objects, c, v)
		return value
	}
	if err := fieldEnv(c, "POD_NAME", "metadata.name"); err != nil {
		errs = append(errs, err)
	}
	if get("RABBITMQ_USE_LONGNAME") != "true" {
		errs = append(errs, fmt.Errorf("RABBITMQ_USE_LONGNAME must be true: the node names are the pods' DNS names"))
	}
	if want := fmt.Sprintf("rabbit@$(POD_NAME).%s.%s", svc.Name, sts.Namespace); get("RABBITMQ_NODENAME") != want {
		errs = append(errs, fmt.Errorf("RABBITMQ_NODENAME is %q, want %q", get("RABBITMQ_NODENAME"), want))
	}
	if !slices.Contains(strings.Split(get("RABBITMQ_ENABLED_PLUGINS"), ","), rabbitmqPeerPlugin) {
		errs = append(errs, fmt.Errorf("RABBITMQ_ENABLED_PLUGINS is %q: it must enable %s", get("RABBITMQ_ENABLED_PLUGINS"), rabbitmqPeerPlugin))
	}
	if backend := rabbitmqSetting(objects, sts, "cluster_formation.peer_discovery_backend"); backend != "k8s" {
		errs = append(errs, fmt.Errorf("no file of /etc/rabbitmq/conf.d sets cluster_formation.peer_discovery_backend = k8s (got %q)", backend))
	}
	for _, port := range []int32{4369, 25672} {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
			errs = append(errs, fmt.Errorf("the Service %q has no port %d (Erlang distribution)", svc.Name, port))
		}
	}
	if !mountsSecretKey(objects, spec, ".erlang.cookie", "/var/lib/rabbitmq") {
		errs = append(errs, fmt.Errorf("%s/%s: no container copies a Secret's .erlang.cookie into /var/lib/rabbitmq, so the nodes share no cookie", sts.Kind, sts.Name))
	}
	for _, o := range objects {
		if rb, ok := o.Obj.(*rbacv1.RoleBinding); ok && bindsServiceAccount(rb.Subjects, spec.ServiceAccountName, sts.Namespace) {
			errs = append(errs, fmt.Errorf("%s grants the ServiceAccount %q access to the Kubernetes API, which the peer discovery does not use", o, spec.ServiceAccountName))
		}
		if crb, ok := o.Obj.(*rbacv1.ClusterRoleBinding); ok && bindsServiceAccount(crb.Subjects, spec.ServiceAccountName, sts.Namespace) {
			errs = append(errs, fmt.Errorf("%s grants the ServiceAccount %q access to the Kubernetes API, which the peer discovery does not use", o, spec.ServiceAccountName))
		}
	}
	return errs
}

// rabbitmqSetting returns the value the last file of /etc/rabbitmq/conf.d mounted from a
// ConfigMap gives a key, in the order RabbitMQ reads them (by file name).
func rabbitmqSetting(objects []Object, sts *appsv1.StatefulSet, key string) string {
	spec := &sts.Spec.Template.Spec
	mounts := slices.Clone(spec.Containers[0].VolumeMounts)
	slices.SortFunc(mounts, func(a, b corev1.VolumeMount) int { return strings.Compare(a.MountPath, b.MountPath) })
	value := ""
	for _, m := range mounts {
		if !strings.HasPrefix(m.MountPath, "/etc/rabbitmq/conf.d/") || m.SubPath == "" {
			continue
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || spec.Volumes[i].ConfigMap == nil {
			continue
		}
		o, ok := Find(objects, "ConfigMap", spec.Volumes[i].ConfigMap.Name)
		if !ok {
			continue
		}
		for _, line := range strings.Split(o.Obj.(*corev1.ConfigMap).Data[m.SubPath], "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.TrimSpace(k) == key {
				value = strings.TrimSpace(v)
			}
		}
	}
	return value
}

// mountsSecretKey reports whether some container mounts both a Secret holding key and the
// directory dir: the init container that copies the key there.
func mountsSecretKey(objects []Object, spec *corev1.PodSpec, key, dir string) bool {
	for _, c := range Containers(spec) {
		var secret, target bool
		for _, m := range c.VolumeMounts {
			target = target || m.MountPath == dir
			i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
			if i < 0 || spec.Volumes[i].Secret == nil {
				continue
			}
			if o, ok := Find(objects, "Secret", spec.Volumes[i].Secret.SecretName); ok && slices.Contains(keysOf(o), key) {
				secret = true
			}
		}
		if secret && target && strings.Contains(strings.Join(c.Command, " "), dir+"/"+key) {
			return true
		}
	}
	return false
}

func bindsServiceAccount(subjects []rbacv1.Subject, name, namespace string) bool {
	return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
		return s.Kind == rbacv1.ServiceAccountKind && s.Name == name && (s.Namespace == "" || s.Namespace == namespace)
	})
}

// CheckDisruptionBudgets reports workloads without exactly one PodDisruptionBudget that
// selects their pods, and only theirs, and lets at most one of them go at a time.
func CheckDisruptionBudgets(objects []Object, workloads ...string) []error {
	var errs []error
	for _, name := range workloads {
		w, ok := FindWorkload(objects, name)
		if !ok {
			errs = append(errs, fmt.Errorf("no workload %q", name))
			continue
		}
		var budgets []Object
		for _, o := range objects {
			pdb, ok := o.Obj.(*policyv1.PodDisruptionBudget)
			if !ok || !selects(pdb.Spec.Selector, w.Template.Labels) {
				continue
			}
			budgets = append(budgets, o)
			for _, other := range Workloads(objects) {
				if other.Name != w.Name && selects(pdb.Spec.Selector, other.Template.Labels) {
					errs = append(errs, fmt.Errorf("%s also selects the pods of %s", o, other))
				}
			}
			if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) {
				errs = append(errs, fmt.Errorf("%s: want maxUnavailable: 1 (and no minAvailable)", o))
			}
		}
		if len(budgets) != 1 {
			errs = append(errs, fmt.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", w, len(budgets)))
		}
	}
	return errs
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(l))
}

// CheckSpread reports a workload whose pods are not spread with a skew of at most one over
// each of the given topology keys, as strictly as asked, by a constraint that counts its own
// pods.
func CheckSpread(objects []Object, name string, keys map[string]corev1.UnsatisfiableConstraintAction) []error {
	w, ok := FindWorkload(objects, name)
	if !ok {
		return []error{fmt.Errorf("no workload %q", name)}
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		i := slices.IndexFunc(w.Template.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool { return c.TopologyKey == key })
		if i < 0 {
			errs = append(errs, fmt.Errorf("%s: no topologySpreadConstraint over %s", w, key))
			continue
		}
		c := w.Template.Spec.TopologySpreadConstraints[i]
		if c.MaxSkew != 1 || c.WhenUnsatisfiable != keys[key] {
			errs = append(errs, fmt.Errorf("%s: the spread over %s is maxSkew %d, %s; want 1, %s", w, key, c.MaxSkew, c.WhenUnsatisfiable, keys[key]))
		}
		if !selects(c.LabelSelector, w.Template.Labels) {
			errs = append(errs, fmt.Errorf("%s: the spread over %s does not count its own pods", w, key))
		}
	}
	return errs
}
