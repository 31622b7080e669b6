package platform

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// EnvoyProxyGroupVersion is the API group of Envoy Gateway's own kinds.
var EnvoyProxyGroupVersion = schema.GroupVersion{Group: "gateway.envoyproxy.io", Version: "v1alpha1"}

// EnvoyProxy is Envoy Gateway's EnvoyProxy (gateway.envoyproxy.io/v1alpha1): how the
// controller runs a Gateway's proxy. Only the fields the manifests use are declared, with
// the names and JSON tags of Envoy Gateway v1.9.1's api/v1alpha1 (envoyproxy_types.go,
// shared_types.go). Decoding is strict, so any other field is an error here, even one
// the real CRD accepts: add it here, from those files, before using it.
//
// Envoy Gateway's own Go module is not a dependency: it would raise this module's go
// directive and upgrade many shared dependencies. Its CRD schema is not copied either; the
// Gateway API kinds, whose module is small, are checked against their CRD schemas
// (crdschema.go).
type EnvoyProxy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              EnvoyProxySpec `json:"spec"`
}

// EnvoyProxySpec is EnvoyProxySpec, reduced to the provider.
type EnvoyProxySpec struct {
	Provider *EnvoyProxyProvider `json:"provider,omitempty"`
}

// EnvoyProxyProvider is EnvoyProxyProvider: type Kubernetes, and its settings.
type EnvoyProxyProvider struct {
	Type       string                        `json:"type"`
	Kubernetes *EnvoyProxyKubernetesProvider `json:"kubernetes,omitempty"`
}

// EnvoyProxyKubernetesProvider is EnvoyProxyKubernetesProvider: the proxy's Deployment
// and Service.
type EnvoyProxyKubernetesProvider struct {
	EnvoyDeployment *EnvoyProxyDeployment `json:"envoyDeployment,omitempty"`
	EnvoyService    *EnvoyProxyService    `json:"envoyService,omitempty"`
}

// EnvoyProxyDeployment is KubernetesDeploymentSpec, reduced to the envoy container.
type EnvoyProxyDeployment struct {
	Container *EnvoyProxyContainer `json:"container,omitempty"`
}

// EnvoyProxyContainer is KubernetesContainerSpec, reduced to its resources.
type EnvoyProxyContainer struct {
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// EnvoyProxyService is KubernetesServiceSpec, reduced to the Service's type and a patch.
type EnvoyProxyService struct {
	// Type is ClusterIP, LoadBalancer (Envoy Gateway's default) or NodePort.
	Type  *string              `json:"type,omitempty"`
	Patch *KubernetesPatchSpec `json:"patch,omitempty"`
}

// KubernetesPatchSpec is KubernetesPatchSpec: a patch Envoy Gateway applies to the object it
// generates. Type is StrategicMerge (the default) or JSONMerge; Value is the patch.
type KubernetesPatchSpec struct {
	Type  *string         `json:"type,omitempty"`
	Value json.RawMessage `json:"value"`
}

// EnvoyProxy's enumerations: the kubebuilder Enum markers of EnvoyProxyProviderType and
// ServiceType, and for a patch's type the merge types internal/utils/merge.go applies
// (MergeType has no Enum marker; its third constant, Replace, is refused there).
var (
	envoyProxyProviderTypes = []string{"Kubernetes", "Host"}
	envoyProxyServiceTypes  = []string{"ClusterIP", "LoadBalancer", "NodePort"}
	envoyProxyPatchTypes    = []string{"StrategicMerge", "JSONMerge"}
)

// DeepCopyObject implements runtime.Object.
func (in *EnvoyProxy) DeepCopyObject() runtime.Object {
	data, err := json.Marshal(in)
	if err != nil {
		panic(err) // the type has only JSON-marshalable fields
	}
	out := new(EnvoyProxy)
	if err := json.Unmarshal(data, out); err != nil {
		panic(err)
	}
	return out
}

func addEnvoyProxy(s *runtime.Scheme) error {
	s.AddKnownTypes(EnvoyProxyGroupVersion, &EnvoyProxy{})
	return nil
}
