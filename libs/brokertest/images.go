package brokertest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// The brokers' images are the ones the platform runs, read from the workload manifests
// under manifests/base: tests meet the same brokers as `make up`, and a bump is one edit
// there (docs/platform.md, "Pinned versions").
var (
	kafkaImage    = sync.OnceValues(func() (string, error) { return manifestImage("kafka/statefulset.yaml", "apache/kafka") })
	rabbitMQImage = sync.OnceValues(func() (string, error) { return manifestImage("rabbitmq/statefulset.yaml", "rabbitmq") })
	postgresImage = sync.OnceValues(func() (string, error) { return manifestImage("postgres/statefulset.yaml", "postgres") })
)

// manifestImage returns the image of repository repo that manifests/base/<file> runs,
// found from the working directory up (tests run inside the repository).
func manifestImage(file, repo string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "manifests", "base", filepath.FromSlash(file))
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the %s image from the manifests: %w", repo, err)
	}
	return imageIn(data, repo, path)
}

// imageIn finds the one `image: <repo>:<tag>` line of a manifest.
func imageIn(manifest []byte, repo, where string) (string, error) {
	re := regexp.MustCompile(`(?m)^\s*(?:-\s+)?image:\s*["']?(` + regexp.QuoteMeta(repo) + `:[^\s"'@]+(?:@sha256:[0-9a-f]{64})?)["']?\s*$`)
	m := re.FindAllSubmatch(manifest, -1)
	switch len(m) {
	case 1:
		return string(m[0][1]), nil
	case 0:
		return "", fmt.Errorf("%s runs no %s:<tag> image", where, repo)
	default:
		return "", fmt.Errorf("%s names %d %s images, want one", where, len(m), repo)
	}
}

// repoRoot is the nearest directory, from the working directory up, that holds go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: the broker images are read from the repository's manifests")
		}
		dir = parent
	}
}
