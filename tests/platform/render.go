package platform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Object is one decoded Kubernetes object.
type Object struct {
	APIVersion string // group/version, or version for the core group
	Kind       string
	Name       string
	Namespace  string
	Obj        runtime.Object
	// JSON is the document as rendered, converted to JSON: what kubectl sends, before any
	// decoding fills in defaults or drops what a Go type does not know.
	JSON []byte
}

// Group is the object's API group, "" for the core group.
func (o Object) Group() string {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// String names the object the way kubectl does: kind/namespace/name.
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// scheme knows the API groups the manifests may use. An object of any other kind
// fails to decode, so a typo in apiVersion or kind cannot slip through. Besides the
// Kubernetes API: the Gateway API's standard types, and the one Envoy Gateway kind the
// manifests use, EnvoyProxy, as the small type of envoyproxy.go.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		appsv1.AddToScheme,
		autoscalingv2.AddToScheme,
		batchv1.AddToScheme,
		networkingv1.AddToScheme,
		policyv1.AddToScheme,
		rbacv1.AddToScheme,
		gatewayv1.Install,
		addEnvoyProxy,
	} {
		if err := add(s); err != nil {
			panic(err) // registering built-in API types cannot fail
		}
	}
	return s
}()

// strictDecoder rejects unknown and duplicated fields, the way `kubectl apply
// --validate=strict` does.
var strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// Render builds a kustomization directory with the kustomize API (the library behind
// `kubectl kustomize`) and decodes the result strictly into the official API types.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return DecodeStrict(out)
}

// DecodeStrict decodes a stream of YAML documents into API objects; any unknown field,
// duplicated field or unregistered kind is an error naming the document.
func DecodeStrict(stream []byte) ([]Object, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objects []Object
	var errs []error
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("split YAML stream: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		meta, err := metaOf(obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		asJSON, err := yaml.YAMLToJSON(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		objects = append(objects, Object{
			APIVersion: gvk.GroupVersion().String(),
			Kind:       gvk.Kind,
			Name:       meta.GetName(),
			Namespace:  meta.GetNamespace(),
			Obj:        obj,
			JSON:       asJSON,
		})
	}
	return objects, errors.Join(errs...)
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}
