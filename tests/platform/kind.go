package platform

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/pelletier/go-toml"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// RegistryConfigDir is where containerd on a Kind node looks for per-registry
// hosts.toml files; scripts/cluster-up writes localhost:5001's there.
const RegistryConfigDir = "/etc/containerd/certs.d"

// ReadKindConfig decodes a Kind cluster configuration strictly into kind's own
// v1alpha4 types: a misspelled field is an error, as `kind create cluster` would make it.
func ReadKindConfig(path string) (*v1alpha4.Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kind config: %w", err)
	}
	var cluster v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &cluster); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &cluster, nil
}

// CheckKindConfig reports what would stop the cluster from pulling images from the
// local registry: it must be a kind.x-k8s.io/v1alpha4 Cluster with the given name
// whose containerd reads registry settings from RegistryConfigDir. Every node runs a
// pinned node image, so every learner gets the Kubernetes release the doctor checks
// kubectl against.
func CheckKindConfig(cluster *v1alpha4.Cluster, name string) []error {
	var errs []error
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" {
		errs = append(errs, fmt.Errorf("kind config is %s %s, want kind.x-k8s.io/v1alpha4 Cluster", cluster.APIVersion, cluster.Kind))
	}
	if cluster.Name != name {
		errs = append(errs, fmt.Errorf("cluster is named %q, want %q", cluster.Name, name))
	}
	configPath := ""
	for _, patch := range cluster.ContainerdConfigPatches {
		tree, err := toml.Load(patch)
		if err != nil {
			errs = append(errs, fmt.Errorf("containerd config patch is not TOML: %w", err))
			continue
		}
		if v, ok := tree.GetPath([]string{"plugins", "io.containerd.grpc.v1.cri", "registry", "config_path"}).(string); ok {
			configPath = v
		}
	}
	if configPath != RegistryConfigDir {
		errs = append(errs, errors.New("no containerd config patch sets the CRI registry config_path to "+RegistryConfigDir))
	}
	for i, node := range cluster.Nodes {
		if !pinnedNodeImage.MatchString(node.Image) {
			errs = append(errs, fmt.Errorf("node %d runs image %q, want kindest/node:vX.Y.Z@sha256:… (kind's default for the kind release scripts/doctor asks for, pinned by digest)", i, node.Image))
		}
	}
	return errs
}

// pinnedNodeImage is a Kind node image named by its Kubernetes release and its digest, as
// kind's configuration guide asks; scripts/doctor reads the release from it.
var pinnedNodeImage = regexp.MustCompile(`^kindest/node:v[0-9]+\.[0-9]+\.[0-9]+@sha256:[0-9a-f]{64}$`)

// ZoneLabel is the well-known node label of a failure domain, which kind/ha.yaml gives its
// workers and the replicated brokers spread over.
const ZoneLabel = "topology.kubernetes.io/zone"

// CheckKindZones reports what keeps a Kind config from offering the given number of failure
// domains: that many workers, each labelled with a zone of its own, and a control-plane with
// no zone, so that nothing spread over zones runs there.
func CheckKindZones(cluster *v1alpha4.Cluster, zones int) []error {
	var errs []error
	seen := map[string]int{}
	workers := 0
	for i, node := range cluster.Nodes {
		zone, labelled := node.Labels[ZoneLabel]
		switch {
		case node.Role == v1alpha4.ControlPlaneRole && labelled:
			errs = append(errs, fmt.Errorf("node %d, the control-plane, is in zone %q: want none", i, zone))
		case node.Role == v1alpha4.WorkerRole && zone == "":
			errs = append(errs, fmt.Errorf("node %d, a worker, has no %s label", i, ZoneLabel))
		case node.Role == v1alpha4.WorkerRole:
			if other, dup := seen[zone]; dup {
				errs = append(errs, fmt.Errorf("nodes %d and %d are both in zone %q", other, i, zone))
			}
			seen[zone] = i
		}
		if node.Role == v1alpha4.WorkerRole {
			workers++
		}
	}
	if workers != zones {
		errs = append(errs, fmt.Errorf("%d workers, want %d, one per zone", workers, zones))
	}
	return errs
}
