package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Incidents in the cluster of make up: each changes one object of the namespace with a JSON
// patch (incidents/<name>.patch.json), as a hurried `kubectl edit` would, and lab reset applies
// incidents/<name>.restore.json, which puts back what manifests/overlays/dev deploys. tests/platform
// applies both to the rendered manifests: this machine has no cluster to run them against.

// clusterPatch is a JSON patch of one object of the namespace.
type clusterPatch struct {
	kind, name string // e.g. deployment analytics
}

func (c clusterPatch) apply(ctx context.Context, cfg config, file string) error {
	patch, err := incidentSources.ReadFile("incidents/" + file)
	if err != nil {
		return err
	}
	_, err = command(ctx, "kubectl", "-n", cfg.namespace, "patch", c.kind, c.name, "--type=json",
		"-p", string(patch), "--request-timeout", callTimeout.String())
	if err != nil {
		return fmt.Errorf("%w (is the cluster of make up running, and kubectl's context kind-backend-prep?)", err)
	}
	return nil
}

// clusterScenario fills in what every cluster incident shares: the patch, its undoing, and
// the checks of its own followed by step 2's.
func clusterScenario(s scenario, target clusterPatch, own func(cfg config) []check) scenario {
	s.needs = "make up (the cluster)"
	s.inject = func(ctx context.Context, cfg config) error { return target.apply(ctx, cfg, s.name+".patch.json") }
	s.restore = func(ctx context.Context, cfg config) error { return target.apply(ctx, cfg, s.name+".restore.json") }
	s.checks = func(cfg config) ([]check, func()) {
		steps, release := kubernetesChecks(cfg)
		return append(own(cfg), steps...), release
	}
	return s
}

// kubectlGet decodes `kubectl -n <namespace> get <args> -o json`.
func kubectlGet(ctx context.Context, cfg config, v any, args ...string) error {
	args = append([]string{"-n", cfg.namespace, "get"}, args...)
	args = append(args, "-o", "json", "--request-timeout", callTimeout.String())
	out, err := command(ctx, "kubectl", args...)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

var oomLimit = clusterScenario(scenario{
	name:  "oom-limit",
	step:  2,
	title: "analytics restarts over and over",
	symptom: "Since a change to analytics' Deployment, /v1/stats answers only now and then, and " +
		"`kubectl -n backend-prep get pods` shows analytics' RESTARTS climbing. Its logs end " +
		"abruptly, with no error.",
	hints: []string{
		"A process that stops without a last log line was most likely killed. Who kills containers in Kubernetes, and where does it say so?",
		"kubectl -n backend-prep describe pod -l app.kubernetes.io/name=analytics: read Last State and its Reason.",
		"OOMKilled: the container used more memory than its limit, and the kernel killed it. Compare the limit with what analytics needs (docs/platform.md gives each service's memory).",
		"Put back the requests and limits manifests/overlays/dev deploys: kubectl -n backend-prep set resources deployment analytics --requests=memory=128Mi --limits=memory=768Mi (or let Tilt apply the manifests again).",
	},
}, clusterPatch{"deployment", "analytics"}, func(cfg config) []check {
	return []check{{
		name: "analytics' pods are ready, and none was OOMKilled",
		run:  podsNotOOMKilled(cfg),
		hint: "make lab ARGS='hint oom-limit' gives one hint at a time",
	}}
})

var runsAsRoot = clusterScenario(scenario{
	name:  "runs-as-root",
	step:  2,
	title: "after a deploy, nobody is notified",
	symptom: "Since a change to the notifier's Deployment, orders are accepted and counted but nobody is " +
		"notified; `kubectl -n backend-prep get pods` shows no notifier pod at all, and " +
		"`kubectl -n backend-prep rollout status deployment/notifier` never finishes.",
	hints: []string{
		"A Deployment makes pods through a ReplicaSet. If no pod exists, ask the ReplicaSet why: its events.",
		"kubectl -n backend-prep describe replicaset -l app.kubernetes.io/name=notifier: FailedCreate, forbidden by what?",
		"The namespace enforces the Pod Security Standard restricted (its labels say so): pods must run as a non-root user. Look at the pod template's securityContext.",
		"Put back what manifests/base/notifier/deployment.yaml says: runAsNonRoot true, runAsUser 65532 (kubectl -n backend-prep edit deployment notifier, or let Tilt apply the manifests again).",
	},
}, clusterPatch{"deployment", "notifier"}, func(cfg config) []check {
	return []check{{
		name: "the notifier's pod template runs as a non-root user, as the namespace's Pod Security level demands",
		run:  notifierNonRoot(cfg),
		hint: "make lab ARGS='hint runs-as-root' gives one hint at a time",
	}, {
		name: "the notifier's rollout is complete",
		run:  notifierRolledOut(cfg),
		hint: "kubectl -n backend-prep rollout status deployment/notifier; the ReplicaSet's events say what blocks it",
	}}
})

func podsNotOOMKilled(cfg config) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return podsReadyNotOOMKilled(ctx, cfg) }
}

func podsReadyNotOOMKilled(ctx context.Context, cfg config) (string, error) {
	var pods struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				ContainerStatuses []struct {
					Ready        bool `json:"ready"`
					RestartCount int  `json:"restartCount"`
					LastState    struct {
						Terminated *struct {
							Reason string `json:"reason"`
						} `json:"terminated"`
					} `json:"lastState"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := kubectlGet(ctx, cfg, &pods, "pods", "-l", "app.kubernetes.io/name=analytics"); err != nil {
		return "", err
	}
	var ready []string
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if t := c.LastState.Terminated; t != nil && t.Reason == "OOMKilled" && !c.Ready {
				return "", fmt.Errorf("%s was OOMKilled (%d restarts): it needs more memory than its limit", p.Metadata.Name, c.RestartCount)
			}
			if c.Ready {
				ready = append(ready, p.Metadata.Name)
			}
		}
	}
	if len(ready) == 0 {
		return "", fmt.Errorf("no analytics pod is ready (%d pods)", len(pods.Items))
	}
	return strings.Join(ready, ", ") + " ready", nil
}

// deployment is the part of a Deployment the checks read.
type deployment struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool  `json:"runAsNonRoot"`
					RunAsUser    *int64 `json:"runAsUser"`
				} `json:"securityContext"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration int64 `json:"observedGeneration"`
		UpdatedReplicas    int32 `json:"updatedReplicas"`
		AvailableReplicas  int32 `json:"availableReplicas"`
	} `json:"status"`
}

func notifierNonRoot(cfg config) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var d deployment
		if err := kubectlGet(ctx, cfg, &d, "deployment", "notifier"); err != nil {
			return "", err
		}
		return nonRoot(d)
	}
}

func nonRoot(d deployment) (string, error) {
	sc := d.Spec.Template.Spec.SecurityContext
	switch {
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		return "", fmt.Errorf("runAsNonRoot is not true: the restricted Pod Security level refuses such pods")
	case sc.RunAsUser != nil && *sc.RunAsUser == 0:
		return "", fmt.Errorf("runAsUser is 0 (root): the restricted Pod Security level refuses such pods")
	}
	user := "the image's user"
	if sc.RunAsUser != nil {
		user = fmt.Sprintf("user %d", *sc.RunAsUser)
	}
	return "runAsNonRoot, " + user, nil
}

func notifierRolledOut(cfg config) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var d deployment
		if err := kubectlGet(ctx, cfg, &d, "deployment", "notifier"); err != nil {
			return "", err
		}
		return rolledOut(d)
	}
}

func rolledOut(d deployment) (string, error) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Metadata.Generation || d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
		return "", fmt.Errorf("%d of %d replicas updated, %d available", d.Status.UpdatedReplicas, want, d.Status.AvailableReplicas)
	}
	return fmt.Sprintf("%d of %d replicas updated and available", d.Status.AvailableReplicas, want), nil
}
