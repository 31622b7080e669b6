package platform

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload is an object that runs pods: its selector and its pod template.
type Workload struct {
	Object
	Selector *metav1.LabelSelector
	Template *corev1.PodTemplateSpec
}

// Workloads returns the objects that run pods, in manifest order.
func Workloads(objects []Object) []Workload {
	var out []Workload
	for _, o := range objects {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			out = append(out, Workload{Object: o, Selector: v.Spec.Selector, Template: &v.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, Workload{Object: o, Selector: v.Spec.Selector, Template: &v.Spec.Template})
		case *appsv1.DaemonSet:
			out = append(out, Workload{Object: o, Selector: v.Spec.Selector, Template: &v.Spec.Template})
		case *appsv1.ReplicaSet:
			out = append(out, Workload{Object: o, Selector: v.Spec.Selector, Template: &v.Spec.Template})
		case *batchv1.Job:
			out = append(out, Workload{Object: o, Selector: v.Spec.Selector, Template: &v.Spec.Template})
		case *batchv1.CronJob:
			out = append(out, Workload{Object: o, Selector: v.Spec.JobTemplate.Spec.Selector, Template: &v.Spec.JobTemplate.Spec.Template})
		}
	}
	return out
}

// Containers returns the init and regular containers of a pod spec.
func Containers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// Find returns the object of the given kind and name, if any.
func Find(objects []Object, kind, name string) (Object, bool) {
	i := slices.IndexFunc(objects, func(o Object) bool { return o.Kind == kind && o.Name == name })
	if i < 0 {
		return Object{}, false
	}
	return objects[i], true
}

// FindWorkload returns the workload with the given name, if any.
func FindWorkload(objects []Object, name string) (Workload, bool) {
	for _, w := range Workloads(objects) {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// ResolvePort finds the container port a probe or Service targets: by name for a named
// port, by number otherwise.
func ResolvePort(c *corev1.Container, port intstr.IntOrString) (int32, error) {
	for _, p := range c.Ports {
		if port.Type == intstr.String && p.Name == port.StrVal {
			return p.ContainerPort, nil
		}
		if port.Type == intstr.Int && p.ContainerPort == port.IntVal {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container %q declares no port %s", c.Name, port.String())
}

// ContainerPorts lists every port number the workload's containers declare.
func (w Workload) ContainerPorts() []int32 {
	var ports []int32
	for _, c := range Containers(&w.Template.Spec) {
		for _, p := range c.Ports {
			ports = append(ports, p.ContainerPort)
		}
	}
	return ports
}

// volumeClaimNames lists the volume claim templates of a StatefulSet: pods may mount
// them like volumes.
func volumeClaimNames(w Workload) []string {
	sts, ok := w.Obj.(*appsv1.StatefulSet)
	if !ok {
		return nil
	}
	var names []string
	for _, c := range sts.Spec.VolumeClaimTemplates {
		names = append(names, c.Name)
	}
	return names
}
