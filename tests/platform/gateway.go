package platform

import (
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The Gateway API's defaults for references (sigs.k8s.io/gateway-api apis/v1,
// shared_types.go: ParentReference and BackendObjectReference): a parentRef is a Gateway,
// a backendRef a core Service, both in the referring object's namespace.
const (
	gatewayGroup = gatewayv1.GroupName
	serviceNodePortMin,
	serviceNodePortMax = 30000, 32767 // the API server's default --service-node-port-range
)

// CheckGatewayAPI reports Gateway API objects that would not route anything: a Gateway
// whose GatewayClass or infrastructure parameters are not in the manifests; an HTTPRoute
// whose parentRef names no Gateway, no listener of it, or a listener that does not accept
// it; a backendRef that is not a Service of the manifests, in the route's namespace, on a
// port the Service has. A GatewayClass must name controller. objects must hold the
// cluster-scoped GatewayClass too (manifests/cluster next to an overlay).
func CheckGatewayAPI(objects []Object, controller string) []error {
	var errs []error
	fail := func(o Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	for _, o := range objects {
		switch v := o.Obj.(type) {
		case *gatewayv1.GatewayClass:
			if string(v.Spec.ControllerName) != controller {
				fail(o, "controllerName is %q, want %q (the controller scripts/cluster-up installs)", v.Spec.ControllerName, controller)
			}
		case *gatewayv1.Gateway:
			class := string(v.Spec.GatewayClassName)
			if _, ok := findIn(objects, "GatewayClass", "", class); !ok {
				fail(o, "gatewayClassName %q: no such GatewayClass", class)
			}
			if infra := v.Spec.Infrastructure; infra != nil && infra.ParametersRef != nil {
				ref := infra.ParametersRef
				p, ok := findIn(objects, string(ref.Kind), o.Namespace, ref.Name)
				if !ok || p.Group() != string(ref.Group) {
					fail(o, "infrastructure.parametersRef %s/%s %q: no such object in namespace %s", ref.Group, ref.Kind, ref.Name, o.Namespace)
				}
			}
		case *gatewayv1.HTTPRoute:
			if len(v.Spec.ParentRefs) == 0 {
				fail(o, "no parentRefs: the route is attached to no Gateway")
			}
			for _, ref := range v.Spec.ParentRefs {
				if err := checkParentRef(objects, o, ref); err != nil {
					fail(o, "%v", err)
				}
			}
			for i, rule := range v.Spec.Rules {
				if len(rule.BackendRefs) == 0 {
					fail(o, "rule %d has no backendRefs", i)
				}
				for _, ref := range rule.BackendRefs {
					if err := checkBackendRef(objects, o, ref.BackendObjectReference); err != nil {
						fail(o, "rule %d: %v", i, err)
					}
				}
			}
		}
	}
	return errs
}

func checkParentRef(objects []Object, route Object, ref gatewayv1.ParentReference) error {
	if ref.Group != nil && string(*ref.Group) != gatewayGroup || ref.Kind != nil && *ref.Kind != "Gateway" {
		return fmt.Errorf("parentRef %q is not a Gateway; these manifests attach routes to Gateways only", ref.Name)
	}
	ns := route.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	g, ok := findIn(objects, "Gateway", ns, string(ref.Name))
	if !ok {
		return fmt.Errorf("parentRef %q: no such Gateway in namespace %s", ref.Name, ns)
	}
	gw := g.Obj.(*gatewayv1.Gateway)
	listeners := gw.Spec.Listeners
	if ref.SectionName != nil {
		i := slices.IndexFunc(listeners, func(l gatewayv1.Listener) bool { return l.Name == *ref.SectionName })
		if i < 0 {
			return fmt.Errorf("parentRef %q: the Gateway has no listener %q", ref.Name, *ref.SectionName)
		}
		listeners = listeners[i : i+1]
	}
	if ref.Port != nil {
		listeners = slices.DeleteFunc(slices.Clone(listeners), func(l gatewayv1.Listener) bool { return l.Port != *ref.Port })
	}
	for _, l := range listeners {
		if listenerAccepts(l, gw.Namespace, route) {
			return nil
		}
	}
	return fmt.Errorf("parentRef %q: no listener of the Gateway accepts an HTTPRoute from namespace %s", ref.Name, route.Namespace)
}

// listenerAccepts applies a listener's allowedRoutes to an HTTPRoute: from Same (the
// default) or All namespaces, and kinds (by default, what the protocol carries: HTTPRoute
// for HTTP and HTTPS). A namespace selector cannot be judged without the cluster's
// namespaces, so it counts as not accepting.
func listenerAccepts(l gatewayv1.Listener, gatewayNamespace string, route Object) bool {
	if l.Protocol != gatewayv1.HTTPProtocolType && l.Protocol != gatewayv1.HTTPSProtocolType {
		return false
	}
	from := gatewayv1.NamespacesFromSame
	var kinds []gatewayv1.RouteGroupKind
	if a := l.AllowedRoutes; a != nil {
		kinds = a.Kinds
		if a.Namespaces != nil && a.Namespaces.From != nil {
			from = *a.Namespaces.From
		}
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
	case gatewayv1.NamespacesFromSame:
		if route.Namespace != gatewayNamespace {
			return false
		}
	default:
		return false
	}
	if len(kinds) == 0 {
		return true
	}
	return slices.ContainsFunc(kinds, func(k gatewayv1.RouteGroupKind) bool {
		return k.Kind == "HTTPRoute" && (k.Group == nil || string(*k.Group) == gatewayGroup)
	})
}

func checkBackendRef(objects []Object, route Object, ref gatewayv1.BackendObjectReference) error {
	if ref.Group != nil && *ref.Group != "" || ref.Kind != nil && *ref.Kind != "Service" {
		return fmt.Errorf("backendRef %q is not a Service; these manifests route to Services only", ref.Name)
	}
	if ref.Namespace != nil && string(*ref.Namespace) != route.Namespace {
		return fmt.Errorf("backendRef %q is in namespace %s: a reference across namespaces needs a ReferenceGrant, which these manifests do not use", ref.Name, *ref.Namespace)
	}
	s, ok := findIn(objects, "Service", route.Namespace, string(ref.Name))
	if !ok {
		return fmt.Errorf("backendRef %q: no such Service in namespace %s", ref.Name, route.Namespace)
	}
	if ref.Port == nil {
		return fmt.Errorf("backendRef %q names no port (a Service backend needs one)", ref.Name)
	}
	svc := s.Obj.(*corev1.Service)
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *ref.Port }) {
		return fmt.Errorf("backendRef %q: the Service has no port %d", ref.Name, *ref.Port)
	}
	return nil
}

// findIn returns the object of a kind, namespace ("" for cluster-scoped) and name.
func findIn(objects []Object, kind, namespace, name string) (Object, bool) {
	i := slices.IndexFunc(objects, func(o Object) bool {
		return o.Kind == kind && o.Namespace == namespace && o.Name == name
	})
	if i < 0 {
		return Object{}, false
	}
	return objects[i], true
}

// GatewayProxyPort is where a Gateway's proxy Service is published on the nodes: the
// nodePort an EnvoyProxy's Service patch gives the port of one of the Gateway's listeners.
type GatewayProxyPort struct {
	Gateway  string // namespace/name
	Listener int32  // the listener's port, the proxy Service's port
	NodePort int32
}

// GatewayProxyPorts checks the EnvoyProxy objects the Gateways use (their enumerations,
// and that a Service patch is a strict, typed patch of a NodePort Service that only sets
// nodePorts of the Gateway's listener ports) and returns the fixed node ports. A patch
// entry whose port is no listener's would not merge into the Service's port list: it would
// add a port Envoy does not listen on.
func GatewayProxyPorts(objects []Object) ([]GatewayProxyPort, []error) {
	var out []GatewayProxyPort
	var errs []error
	for _, o := range objects {
		ep, ok := o.Obj.(*EnvoyProxy)
		if !ok {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
		}
		p := ep.Spec.Provider
		if p == nil || p.Kubernetes == nil {
			continue
		}
		if !slices.Contains(envoyProxyProviderTypes, p.Type) {
			fail("provider.type %q is not one of %v", p.Type, envoyProxyProviderTypes)
		}
		svc := p.Kubernetes.EnvoyService
		if svc == nil || svc.Patch == nil {
			continue
		}
		if svc.Type != nil && !slices.Contains(envoyProxyServiceTypes, *svc.Type) {
			fail("envoyService.type %q is not one of %v", *svc.Type, envoyProxyServiceTypes)
		}
		if svc.Patch.Type != nil && !slices.Contains(envoyProxyPatchTypes, *svc.Patch.Type) {
			fail("envoyService.patch.type %q is not one of %v", *svc.Patch.Type, envoyProxyPatchTypes)
		}
		var patch corev1.Service
		if err := strictJSON(svc.Patch.Value, &patch); err != nil {
			fail("envoyService.patch.value is not a Service: %v", err)
			continue
		}
		users := gatewaysUsing(objects, o)
		if len(users) == 0 {
			fail("no Gateway names it in infrastructure.parametersRef")
		}
		for _, sp := range patch.Spec.Ports {
			if sp.NodePort == 0 {
				continue
			}
			if svc.Type == nil || *svc.Type != "NodePort" {
				fail("envoyService.patch sets nodePort %d, but envoyService.type is not NodePort", sp.NodePort)
			}
			if sp.NodePort < serviceNodePortMin || sp.NodePort > serviceNodePortMax {
				fail("nodePort %d is outside the default NodePort range %d-%d", sp.NodePort, serviceNodePortMin, serviceNodePortMax)
			}
			for _, g := range users {
				gw := g.Obj.(*gatewayv1.Gateway)
				if !slices.ContainsFunc(gw.Spec.Listeners, func(l gatewayv1.Listener) bool { return l.Port == sp.Port }) {
					fail("envoyService.patch sets the nodePort of port %d, which no listener of %s has", sp.Port, g)
					continue
				}
				out = append(out, GatewayProxyPort{Gateway: g.Namespace + "/" + g.Name, Listener: sp.Port, NodePort: sp.NodePort})
			}
		}
	}
	return out, errs
}

// gatewaysUsing returns the Gateways whose infrastructure.parametersRef names an EnvoyProxy.
func gatewaysUsing(objects []Object, proxy Object) []Object {
	var out []Object
	for _, o := range objects {
		gw, ok := o.Obj.(*gatewayv1.Gateway)
		if !ok || o.Namespace != proxy.Namespace || gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
			continue
		}
		ref := gw.Spec.Infrastructure.ParametersRef
		if string(ref.Group) == EnvoyProxyGroupVersion.Group && ref.Kind == "EnvoyProxy" && ref.Name == proxy.Name {
			out = append(out, o)
		}
	}
	return out
}

// strictJSON decodes a Service, or part of one, as the strict decoder decodes a document:
// an unknown or duplicated field is an error.
func strictJSON(data []byte, into *corev1.Service) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	fields["apiVersion"], fields["kind"] = json.RawMessage(`"v1"`), json.RawMessage(`"Service"`)
	doc, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	_, _, err = strictDecoder.Decode(doc, nil, into)
	return err
}
