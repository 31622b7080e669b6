// Command kubectl is a stand-in for the one kubectl subcommand the course runs without a
// cluster, `kubectl kustomize DIR`, for the test that runs the course's commands on a machine
// without kubectl. It renders with the kustomize API, the library kubectl itself embeds for
// that subcommand, with the options kubectl's flags default to. Every other subcommand fails and says so.
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 || args[0] != "kustomize" {
		return fmt.Errorf("this kubectl stand-in only runs `kubectl kustomize DIR`, not `kubectl %v`", args)
	}
	// As kubectl's own flags leave it: the kustomization's sortOptions decide, else the
	// legacy order (namespaces first, then by kind).
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), args[1])
	if err != nil {
		return err
	}
	out, err := resources.AsYaml()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
