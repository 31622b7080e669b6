package platform

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Pod identifies a connection end for NetworkPolicy evaluation: its namespace, the
// labels of that namespace, and its own labels.
type Pod struct {
	Namespace       string
	NamespaceLabels map[string]string
	Labels          map[string]string
}

// IngressAllowed evaluates the NetworkPolicies of a rendered manifest the way the
// Kubernetes NetworkPolicy API defines them: a pod selected by no ingress policy accepts
// everything; a selected pod accepts a TCP connection on port only if some rule of a
// selecting policy allows both the source and the port. Named ports and ipBlock peers are
// not used by this project and never match.
func IngressAllowed(objects []Object, from, to Pod, port int32) bool {
	selected := false
	for _, o := range objects {
		np, ok := o.Obj.(*networkingv1.NetworkPolicy)
		if !ok || np.Namespace != to.Namespace || !appliesToIngress(np) {
			continue
		}
		if !matches(&np.Spec.PodSelector, to.Labels) {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			if portAllowed(rule.Ports, port) && peerAllowed(rule.From, np.Namespace, from) {
				return true
			}
		}
	}
	return !selected
}

func appliesToIngress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true // ingress is always implied
	}
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.IntValue() == int(port) && p.Port.IntValue() != 0 {
			return true
		}
		if p.EndPort != nil && p.Port.IntValue() != 0 && int(port) >= p.Port.IntValue() && port <= *p.EndPort {
			return true
		}
	}
	return false
}

func peerAllowed(peers []networkingv1.NetworkPolicyPeer, policyNamespace string, from Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		switch {
		case peer.NamespaceSelector != nil:
			if matches(peer.NamespaceSelector, from.NamespaceLabels) &&
				(peer.PodSelector == nil || matches(peer.PodSelector, from.Labels)) {
				return true
			}
		case peer.PodSelector != nil:
			if from.Namespace == policyNamespace && matches(peer.PodSelector, from.Labels) {
				return true
			}
		}
	}
	return false
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}
