package platform

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RequiredLabels are the recommended app.kubernetes.io labels every object and pod
// template carries, so `kubectl get -l` and dashboards can group them.
var RequiredLabels = []string{
	"app.kubernetes.io/name",
	"app.kubernetes.io/component",
	"app.kubernetes.io/part-of",
}

// CheckLabels reports objects and pod templates without the required labels, or
// labelled as part of something other than partOf.
func CheckLabels(objects []Object, partOf string) []error {
	var errs []error
	check := func(what string, l map[string]string) {
		for _, key := range RequiredLabels {
			if l[key] == "" {
				errs = append(errs, fmt.Errorf("%s: missing label %s", what, key))
			}
		}
		if v, ok := l["app.kubernetes.io/part-of"]; ok && v != partOf {
			errs = append(errs, fmt.Errorf("%s: label app.kubernetes.io/part-of is %q, want %q", what, v, partOf))
		}
	}
	for _, o := range objects {
		m, err := metaOf(o.Obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, err))
			continue
		}
		check(o.String(), m.GetLabels())
	}
	for _, w := range Workloads(objects) {
		check(w.String()+" pod template", w.Template.Labels)
	}
	return errs
}

// CheckSelectors reports workloads whose selector does not select their own pods.
func CheckSelectors(objects []Object) []error {
	var errs []error
	for _, w := range Workloads(objects) {
		if w.Selector == nil {
			errs = append(errs, fmt.Errorf("%s: no selector", w))
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: selector: %w", w, err))
			continue
		}
		if sel.Empty() {
			errs = append(errs, fmt.Errorf("%s: empty selector would match every pod", w))
			continue
		}
		if !sel.Matches(labels.Set(w.Template.Labels)) {
			errs = append(errs, fmt.Errorf("%s: selector %s does not match the pod template labels %v", w, sel, w.Template.Labels))
		}
	}
	return errs
}

// CheckServices reports Services that select no workload, or whose target ports are
// not ports the selected containers declare.
func CheckServices(objects []Object) []error {
	var errs []error
	for _, o := range objects {
		svc, ok := o.Obj.(*corev1.Service)
		if !ok || svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		if len(svc.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("%s: no selector", o))
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var targets []Workload
		for _, w := range Workloads(objects) {
			if w.Namespace == o.Namespace && sel.Matches(labels.Set(w.Template.Labels)) {
				targets = append(targets, w)
			}
		}
		if len(targets) == 0 {
			errs = append(errs, fmt.Errorf("%s: selector %s matches no workload's pods", o, sel))
			continue
		}
		for _, port := range svc.Spec.Ports {
			target := port.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(port.Port)
			}
			for _, w := range targets {
				if !workloadServes(w, target) {
					errs = append(errs, fmt.Errorf("%s: port %q targets %s, which no container of %s declares", o, port.Name, target.String(), w))
				}
			}
		}
	}
	return errs
}

func workloadServes(w Workload, port intstr.IntOrString) bool {
	for _, c := range w.Template.Spec.Containers {
		if _, err := ResolvePort(&c, port); err == nil {
			return true
		}
	}
	return false
}

// Hardening says which deviations from the default rules a workload may have, and why.
type Hardening struct {
	// WritableRoot names workloads whose images must write to their root filesystem,
	// with the reason. Every other container must run with readOnlyRootFilesystem.
	WritableRoot map[string]string
}

// restrictedVolume reports whether a volume type is allowed by the "restricted" Pod
// Security Standard.
func restrictedVolume(v corev1.Volume) bool {
	s := v.VolumeSource
	return s.ConfigMap != nil || s.Secret != nil || s.EmptyDir != nil ||
		s.PersistentVolumeClaim != nil || s.DownwardAPI != nil || s.Projected != nil ||
		s.Ephemeral != nil || s.CSI != nil
}

// CheckPods reports pod templates that break the project's rules: the "restricted" Pod
// Security Standard (the namespace enforces it), resources on every container, probes on
// every container but init containers, no service links, no API token, and a read-only root
// filesystem unless rules.WritableRoot explains why not.
func CheckPods(objects []Object, rules Hardening) []error {
	var errs []error
	for _, w := range Workloads(objects) {
		spec := &w.Template.Spec
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", w, fmt.Sprintf(format, args...)))
		}
		if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
			fail("enableServiceLinks must be false (service links inject *_PORT/*_SERVICE_HOST variables)")
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			fail("automountServiceAccountToken must be false (nothing here calls the Kubernetes API)")
		}
		if spec.ServiceAccountName == "" {
			fail("no serviceAccountName (the default account is shared by everything in the namespace)")
		} else if _, ok := Find(objects, "ServiceAccount", spec.ServiceAccountName); !ok {
			fail("serviceAccountName %q: no such ServiceAccount", spec.ServiceAccountName)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			fail("must not share the node's network, PID or IPC namespace")
		}
		for _, v := range spec.Volumes {
			if !restrictedVolume(v) {
				fail("volume %q has a type the restricted Pod Security Standard forbids", v.Name)
			}
		}
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		for _, c := range Containers(spec) {
			fail := func(format string, args ...any) {
				errs = append(errs, fmt.Errorf("%s container %q: %s", w, c.Name, fmt.Sprintf(format, args...)))
			}
			if !initContainer(spec, c) {
				checkProbes(c, fail)
			}
			checkResources(c, fail)
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			if nonRoot := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot == nil || !*nonRoot {
				fail("runAsNonRoot must be true")
			}
			uid := firstInt(sc.RunAsUser, psc.RunAsUser)
			if uid == nil {
				fail("runAsUser must be set to a numeric non-root id (an image's named user cannot be verified as non-root)")
			} else if *uid == 0 {
				fail("runAsUser is 0 (root)")
			}
			if profile := firstSeccomp(sc.SeccompProfile, psc.SeccompProfile); profile == nil || profile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				fail("seccompProfile must be RuntimeDefault")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				fail("allowPrivilegeEscalation must be false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				fail("must not be privileged")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				fail("capabilities must drop ALL")
			} else if len(sc.Capabilities.Add) > 0 {
				fail("must not add capabilities %v", sc.Capabilities.Add)
			}
			readOnly := sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
			if _, exempt := rules.WritableRoot[w.Name]; !readOnly && !exempt {
				fail("readOnlyRootFilesystem must be true")
			}
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					fail("port %d binds a host port", p.ContainerPort)
				}
			}
		}
	}
	return errs
}

// initContainer reports whether c is one of the pod's init containers: they run to completion
// before the others start, and the API server refuses probes on them.
func initContainer(spec *corev1.PodSpec, c *corev1.Container) bool {
	return slices.ContainsFunc(spec.InitContainers, func(i corev1.Container) bool { return i.Name == c.Name })
}

func checkProbes(c *corev1.Container, fail func(string, ...any)) {
	probes := map[string]*corev1.Probe{
		"readinessProbe": c.ReadinessProbe,
		"livenessProbe":  c.LivenessProbe,
		"startupProbe":   c.StartupProbe,
	}
	for _, kind := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		p := probes[kind]
		if p == nil {
			if kind != "startupProbe" {
				fail("no %s", kind)
			}
			continue
		}
		var port *intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = &p.HTTPGet.Port
		case p.TCPSocket != nil:
			port = &p.TCPSocket.Port
		case p.GRPC != nil:
			grpcPort := intstr.FromInt32(p.GRPC.Port)
			port = &grpcPort
		case p.Exec != nil:
			continue
		default:
			fail("%s has no handler", kind)
			continue
		}
		if _, err := ResolvePort(c, *port); err != nil {
			fail("%s: %v", kind, err)
		}
	}
}

func checkResources(c *corev1.Container, fail func(string, ...any)) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[name]; !ok || q.IsZero() {
			fail("no %s request", name)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		fail("no memory limit")
	} else if req, ok := c.Resources.Requests[corev1.ResourceMemory]; ok && req.Cmp(q) > 0 {
		fail("memory request %s is above the limit %s", req.String(), q.String())
	}
}

func firstBool(vs ...*bool) *bool {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstInt(vs ...*int64) *int64 {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstSeccomp(vs ...*corev1.SeccompProfile) *corev1.SeccompProfile {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// pinnedTag matches a tag that names a release: it contains a digit and is not
// "latest" (e.g. 4.3.1, 4.3.5-management, v1.5.0).
var pinnedTag = regexp.MustCompile(`^[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*$`)

// IsPinned reports whether an image reference names a fixed release: a digest, or a
// tag with a version number in it.
func IsPinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image
	if slash := strings.LastIndex(name, "/"); slash >= 0 {
		name = name[slash+1:]
	}
	colon := strings.LastIndex(name, ":")
	if colon < 0 {
		return false
	}
	tag := name[colon+1:]
	return tag != "latest" && pinnedTag.MatchString(tag)
}

// CheckImages reports containers whose image is neither built by the Tiltfile (built
// holds the image refs it builds) nor a pinned upstream release.
func CheckImages(objects []Object, built []string) []error {
	var errs []error
	for _, w := range Workloads(objects) {
		for _, c := range Containers(&w.Template.Spec) {
			switch {
			case slices.Contains(built, c.Image):
			case IsPinned(c.Image):
			default:
				errs = append(errs, fmt.Errorf("%s container %q: image %q is neither built by the Tiltfile nor a pinned release", w, c.Name, c.Image))
			}
		}
	}
	return errs
}

// keysOf returns the keys a ConfigMap or Secret provides.
func keysOf(o Object) []string {
	var keys []string
	switch v := o.Obj.(type) {
	case *corev1.ConfigMap:
		for k := range v.Data {
			keys = append(keys, k)
		}
		for k := range v.BinaryData {
			keys = append(keys, k)
		}
	case *corev1.Secret:
		for k := range v.Data {
			keys = append(keys, k)
		}
		for k := range v.StringData {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// CheckReferences reports references from pod templates to ConfigMaps, Secrets or keys
// that the manifests do not contain (a pod referring to them would never start).
func CheckReferences(objects []Object) []error {
	var errs []error
	ref := func(w Workload, where, kind, name, key string, optional *bool) {
		if optional != nil && *optional {
			return
		}
		o, ok := Find(objects, kind, name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s %s: no %s %q", w, where, kind, name))
			return
		}
		if key != "" && !slices.Contains(keysOf(o), key) {
			errs = append(errs, fmt.Errorf("%s %s: %s %q has no key %q", w, where, kind, name, key))
		}
	}
	for _, w := range Workloads(objects) {
		spec := &w.Template.Spec
		for _, c := range Containers(spec) {
			where := fmt.Sprintf("container %q", c.Name)
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					ref(w, where, "ConfigMap", from.ConfigMapRef.Name, "", from.ConfigMapRef.Optional)
				}
				if from.SecretRef != nil {
					ref(w, where, "Secret", from.SecretRef.Name, "", from.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					ref(w, where+" env "+e.Name, "ConfigMap", r.Name, r.Key, r.Optional)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					ref(w, where+" env "+e.Name, "Secret", r.Name, r.Key, r.Optional)
				}
			}
		}
		for _, v := range spec.Volumes {
			where := fmt.Sprintf("volume %q", v.Name)
			if cm := v.ConfigMap; cm != nil {
				ref(w, where, "ConfigMap", cm.Name, "", cm.Optional)
				for _, item := range cm.Items {
					ref(w, where, "ConfigMap", cm.Name, item.Key, cm.Optional)
				}
			}
			if s := v.Secret; s != nil {
				ref(w, where, "Secret", s.SecretName, "", s.Optional)
				for _, item := range s.Items {
					ref(w, where, "Secret", s.SecretName, item.Key, s.Optional)
				}
			}
		}
		for _, c := range Containers(spec) {
			for _, m := range c.VolumeMounts {
				i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
				claim := slices.ContainsFunc(volumeClaimNames(w), func(n string) bool { return n == m.Name })
				if i < 0 && !claim {
					errs = append(errs, fmt.Errorf("%s container %q mounts %q, which is neither a volume nor a volume claim template", w, c.Name, m.Name))
					continue
				}
				if i >= 0 && m.SubPath != "" && spec.Volumes[i].ConfigMap != nil {
					ref(w, fmt.Sprintf("container %q mount %q", c.Name, m.MountPath), "ConfigMap", spec.Volumes[i].ConfigMap.Name, m.SubPath, spec.Volumes[i].ConfigMap.Optional)
				}
			}
		}
	}
	return errs
}

// EnvSource says where a container environment variable comes from.
type EnvSource struct {
	Name string
	From string // "value", "ConfigMap <name>", "Secret <name>", "field", "resource"
}

// ContainerEnv returns the environment variables a container gets from its manifest:
// env entries and every key of the ConfigMaps and Secrets it imports with envFrom.
func ContainerEnv(objects []Object, c *corev1.Container) []EnvSource {
	var out []EnvSource
	for _, from := range c.EnvFrom {
		var o Object
		var ok bool
		switch {
		case from.ConfigMapRef != nil:
			o, ok = Find(objects, "ConfigMap", from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			o, ok = Find(objects, "Secret", from.SecretRef.Name)
		}
		if !ok {
			continue
		}
		for _, k := range keysOf(o) {
			out = append(out, EnvSource{Name: from.Prefix + k, From: o.Kind + " " + o.Name})
		}
	}
	for _, e := range c.Env {
		src := "value"
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.ConfigMapKeyRef != nil:
				src = "ConfigMap " + e.ValueFrom.ConfigMapKeyRef.Name
			case e.ValueFrom.SecretKeyRef != nil:
				src = "Secret " + e.ValueFrom.SecretKeyRef.Name
			case e.ValueFrom.FieldRef != nil:
				src = "field"
			case e.ValueFrom.ResourceFieldRef != nil:
				src = "resource"
			}
		}
		out = append(out, EnvSource{Name: e.Name, From: src})
	}
	return out
}

// EnvValue returns the literal value of a variable a container sets, looking through
// ConfigMaps it imports; ok is false for Secrets and computed values.
func EnvValue(objects []Object, c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, e.ValueFrom == nil
		}
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if o, ok := Find(objects, "ConfigMap", from.ConfigMapRef.Name); ok {
			if v, ok := o.Obj.(*corev1.ConfigMap).Data[strings.TrimPrefix(name, from.Prefix)]; ok {
				return v, true
			}
		}
	}
	return "", false
}
