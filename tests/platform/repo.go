// Package platform checks the local development platform without running it: the
// shared Dockerfile, the Kubernetes manifests (kustomize base and overlays), the
// Tiltfile and the Kind configuration. Kind, Tilt and image pulls are not available
// where these checks run, so each file is parsed with the real tool's parser or API
// types and its promises are checked against the others: what the Tiltfile builds is
// what the manifests run, what a Deployment sets is what the service's config reads.
//
// Every check returns the problems it found instead of failing a test itself, so the
// tests can also feed it broken inputs and prove that it notices.
package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
)

// RepoRoot finds the repository root: the nearest directory at or above the working
// directory that holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in the working directory or above it")
		}
		dir = parent
	}
}

// Workspace lists the modules of a go.work file by directory, relative to the
// repository root and without a leading "./".
type Workspace struct {
	Libs     []string // e.g. "libs/platform"
	Services []string // e.g. "services/order-api"
	Other    []string // anything else the workspace uses
}

// ServiceNames returns the service directory names, e.g. "order-api".
func (w Workspace) ServiceNames() []string {
	names := make([]string, 0, len(w.Services))
	for _, s := range w.Services {
		names = append(names, filepath.Base(s))
	}
	return names
}

// ReadWorkspace parses root/go.work.
func ReadWorkspace(root string) (Workspace, error) {
	path := filepath.Join(root, "go.work")
	data, err := os.ReadFile(path)
	if err != nil {
		return Workspace{}, fmt.Errorf("read go.work: %w", err)
	}
	wf, err := modfile.ParseWork(path, data, nil)
	if err != nil {
		return Workspace{}, fmt.Errorf("parse go.work: %w", err)
	}
	var ws Workspace
	for _, use := range wf.Use {
		dir := filepath.ToSlash(filepath.Clean(use.Path))
		switch {
		case strings.HasPrefix(dir, "libs/"):
			ws.Libs = append(ws.Libs, dir)
		case strings.HasPrefix(dir, "services/"):
			ws.Services = append(ws.Services, dir)
		default:
			ws.Other = append(ws.Other, dir)
		}
	}
	slices.Sort(ws.Libs)
	slices.Sort(ws.Services)
	return ws, nil
}
