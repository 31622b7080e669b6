package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Step 2, Kubernetes: Tilt applies manifests/ to the Kind cluster — a Deployment, a Service and
// a ConfigMap per service, a StatefulSet per broker — in the namespace backend-prep. The checks
// ask kubectl, as a learner would, with the current context.

// brokers are the StatefulSets of the system.
var brokers = []string{"kafka", "rabbitmq"}

// configMaps are the ConfigMaps of manifests/base: one per service, and RabbitMQ's.
var configMaps = append(append([]string{}, services...), "rabbitmq-config")

// kubernetesRun is what the checks of step 2 share.
type kubernetesRun struct {
	cfg     config
	cli     bool // kubectl is on PATH
	cluster bool // kubectl reached the cluster
}

func kubernetesChecks(cfg config) ([]check, func()) {
	k := &kubernetesRun{cfg: cfg}
	ns := cfg.namespace
	return []check{
		{
			name: "kubectl is installed",
			run:  k.cliInstalled,
			hint: "install kubectl: https://kubernetes.io/docs/tasks/tools/ ; `make doctor` checks every tool the course needs",
		},
		{
			name: "kubectl reaches the cluster of its current context",
			run:  k.reachesCluster,
			hint: "is the cluster up? `make up` creates it with Kind and makes kind-backend-prep the current " +
				"context; `kubectl config get-contexts` lists yours, `kubectl config use-context kind-backend-prep` picks it",
		},
		{
			name: "namespace " + ns + " exists",
			run:  k.namespaceExists,
			hint: "Tilt creates it with everything in manifests/: is `make up` running? Check the platform resource in Tilt",
		},
		{
			name: "every Deployment in " + ns + " is available",
			run:  k.deploymentsAvailable,
			hint: "`kubectl -n " + ns + " get pods` shows which pod is not ready, `kubectl -n " + ns +
				" describe pod <name>` says why (Events, at the bottom); Tilt shows each resource's logs",
		},
		{
			name: "every StatefulSet in " + ns + " is ready (the brokers)",
			run:  k.statefulSetsReady,
			hint: "the brokers take a minute to start; `kubectl -n " + ns + " get pods -w` watches them, " +
				"`kubectl -n " + ns + " logs kafka-0` tells what one is doing",
		},
		{
			name: "every Service in " + ns + " has ready endpoints",
			run:  k.servicesHaveEndpoints,
			hint: "a Service sends traffic only to ready pods whose labels match its selector: compare " +
				"`kubectl -n " + ns + " get endpointslices` with `kubectl -n " + ns + " get pods --show-labels`",
		},
		{
			name: "the ConfigMaps of the system exist",
			run:  k.configMapsExist,
			hint: "they come from manifests/base/<name>/configmap.yaml; Tilt applies them with their workload",
		},
	}, func() {}
}

func (k *kubernetesRun) cliInstalled(context.Context) (string, error) {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		return "", fmt.Errorf("no kubectl on PATH: %w", err)
	}
	k.cli = true
	return path, nil
}

// reachesCluster names the current context and asks the API server for its version. Without
// a context, kubectl would try localhost:8080 — order-api's port under `make run`.
func (k *kubernetesRun) reachesCluster(ctx context.Context) (string, error) {
	if !k.cli {
		return "", blocked("kubectl")
	}
	out, err := command(ctx, "kubectl", "config", "current-context")
	if err != nil {
		return "", err
	}
	current := strings.TrimSpace(string(out))
	var version struct {
		Server struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := k.kubectlJSON(ctx, &version, "version"); err != nil {
		return "", err
	}
	if version.Server.GitVersion == "" {
		return "", fmt.Errorf("context %s: the API server did not say its version", current)
	}
	k.cluster = true
	return fmt.Sprintf("context %s, Kubernetes %s", current, version.Server.GitVersion), nil
}

func (k *kubernetesRun) namespaceExists(ctx context.Context) (string, error) {
	var ns struct {
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	}
	if err := k.get(ctx, &ns, "get", "namespace", k.cfg.namespace); err != nil {
		return "", err
	}
	return ns.Status.Phase, nil
}

// workloads is the part of a Deployment or StatefulSet list the checks read.
type workloads struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Replicas *int32 `json:"replicas"`
		} `json:"spec"`
		Status struct {
			ReadyReplicas     int32 `json:"readyReplicas"`
			AvailableReplicas int32 `json:"availableReplicas"`
		} `json:"status"`
	} `json:"items"`
}

// deploymentsAvailable wants every service's Deployment, with all its replicas available:
// ready for at least minReadySeconds.
func (k *kubernetesRun) deploymentsAvailable(ctx context.Context) (string, error) {
	var list workloads
	if err := k.get(ctx, &list, "-n", k.cfg.namespace, "get", "deployments"); err != nil {
		return "", err
	}
	return checkReplicas(list, services, func(ready, available int32) int32 { return min(ready, available) })
}

func (k *kubernetesRun) statefulSetsReady(ctx context.Context) (string, error) {
	var list workloads
	if err := k.get(ctx, &list, "-n", k.cfg.namespace, "get", "statefulsets"); err != nil {
		return "", err
	}
	return checkReplicas(list, brokers, func(ready, _ int32) int32 { return ready })
}

// checkReplicas wants every expected workload in list, each with as many good replicas as it
// asks for, and describes them all ("order-api 1/1, ...").
func checkReplicas(list workloads, expected []string, good func(ready, available int32) int32) (string, error) {
	var each, problems []string
	seen := map[string]bool{}
	for _, w := range list.Items {
		want := int32(1) // the default when spec.replicas is not set
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		got := good(w.Status.ReadyReplicas, w.Status.AvailableReplicas)
		each = append(each, fmt.Sprintf("%s %d/%d", w.Metadata.Name, got, want))
		if got < want {
			problems = append(problems, fmt.Sprintf("%s has %d of %d replicas ready", w.Metadata.Name, got, want))
		}
		seen[w.Metadata.Name] = true
	}
	for _, name := range expected {
		if !seen[name] {
			problems = append(problems, name+" does not exist")
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return strings.Join(each, ", "), nil
}

// servicesHaveEndpoints matches every Service that selects pods with its EndpointSlices and
// wants at least one ready endpoint: a pod that would receive the Service's traffic.
func (k *kubernetesRun) servicesHaveEndpoints(ctx context.Context) (string, error) {
	var svcs struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Selector map[string]string `json:"selector"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := k.get(ctx, &svcs, "-n", k.cfg.namespace, "get", "services"); err != nil {
		return "", err
	}
	var endpointSlices struct {
		Items []struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Endpoints []struct {
				Conditions struct {
					Ready *bool `json:"ready"`
				} `json:"conditions"`
			} `json:"endpoints"`
		} `json:"items"`
	}
	if err := k.get(ctx, &endpointSlices, "-n", k.cfg.namespace, "get", "endpointslices"); err != nil {
		return "", err
	}
	ready := map[string]int{}
	for _, s := range endpointSlices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready { // unset means ready
				ready[s.Metadata.Labels["kubernetes.io/service-name"]]++
			}
		}
	}
	var each, empty []string
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) == 0 {
			continue // its endpoints are managed by hand, not by a selector
		}
		name := svc.Metadata.Name
		if ready[name] == 0 {
			empty = append(empty, name)
		}
		each = append(each, fmt.Sprintf("%s %d", name, ready[name]))
	}
	if len(each) == 0 {
		return "", fmt.Errorf("no Service in namespace %s", k.cfg.namespace)
	}
	if len(empty) > 0 {
		return "", fmt.Errorf("no ready endpoint behind %s", strings.Join(empty, ", "))
	}
	return strings.Join(each, ", "), nil
}

func (k *kubernetesRun) configMapsExist(ctx context.Context) (string, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := k.get(ctx, &list, "-n", k.cfg.namespace, "get", "configmaps"); err != nil {
		return "", err
	}
	present := map[string]bool{}
	for _, cm := range list.Items {
		present[cm.Metadata.Name] = true
	}
	var missing []string
	for _, name := range configMaps {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return strings.Join(configMaps, ", "), nil
}

// get is kubectlJSON for the checks that need the cluster the second check reached.
func (k *kubernetesRun) get(ctx context.Context, v any, args ...string) error {
	if !k.cluster {
		return blocked("a cluster kubectl reaches")
	}
	return k.kubectlJSON(ctx, v, args...)
}

// kubectlJSON runs `kubectl <args> -o json` with a request timeout and decodes the output.
func (k *kubernetesRun) kubectlJSON(ctx context.Context, v any, args ...string) error {
	if !k.cli {
		return blocked("kubectl")
	}
	args = append(args, "-o", "json", "--request-timeout", fmt.Sprint(callTimeout))
	out, err := command(ctx, "kubectl", args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
