package platform_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// dockerfileRules are the shared Dockerfile's promises; the module files come from
// go.work, so a new library module must be added to the dependency layer.
func dockerfileRules(t *testing.T) platform.DockerfileRules {
	t.Helper()
	ws, err := platform.ReadWorkspace(repoRoot(t))
	require.NoError(t, err)
	require.NotEmpty(t, ws.Libs)
	var modFiles []string
	for _, lib := range ws.Libs {
		modFiles = append(modFiles, lib+"/go.mod")
	}
	modFiles = append(modFiles, "services/${SERVICE}/go.mod")
	return platform.DockerfileRules{
		Targets:     []string{"dev", "prod"},
		Final:       "prod",
		Dev:         "dev",
		ModFiles:    modFiles,
		KafkaModule: "github.com/confluentinc/confluent-kafka-go",
	}
}

func TestDockerfileKeepsItsPromises(t *testing.T) {
	d, err := platform.ParseDockerfile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	requireNoProblems(t, platform.CheckDockerfile(d, dockerfileRules(t)))
	assert.Contains(t, d.BaseImage("prod"), "distroless")
	assert.Equal(t, "65532:65532", d.User("prod"))
}

// Each case breaks one promise in a copy of the real Dockerfile and expects the check
// to notice. A replacement that no longer applies fails the test, so the cases follow
// the Dockerfile as it changes.
func TestDockerfileChecksCatchBrokenPromises(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	cases := []struct {
		name     string
		old, new string
		want     string
	}{
		{"no prod target", "AS prod", "AS release", `no "prod" target`},
		{"prod runs as root", "USER 65532:65532\nENTRYPOINT [\"/server\"]", "USER 0\nENTRYPOINT [\"/server\"]", `target "prod": USER 0 is root`},
		{"prod runs as a named user", "USER 65532:65532\nENTRYPOINT [\"/server\"]", "USER nonroot\nENTRYPOINT [\"/server\"]", "USER nonroot is not numeric"},
		{"dev runs as root", "USER 65532:65532\nENTRYPOINT [\"/app/server\"]", "USER root\nENTRYPOINT [\"/app/server\"]", `target "dev": USER root is not numeric`},
		{"Kafka services not linked against musl", "-tags musl -trimpath", "-trimpath", "the release build lacks -tags musl"},
		{"Kafka services not static", `-extldflags "-static"`, "", `the release build lacks -extldflags "-static"`},
		{"no Kafka detection", "grep -q '^github.com/confluentinc/confluent-kafka-go/'", "true", "never checks for github.com/confluentinc/confluent-kafka-go"},
		{"dev builds without the musl tag", "go build -tags musl -o /app/server .", "go build -o /app/server .", "does not build with -tags musl"},
		{"no C toolchain", "apk add --no-cache gcc musl-dev", "apk add --no-cache git", "installs no C toolchain"},
		{"hard-coded architecture", "CGO_ENABLED=0 go build", "CGO_ENABLED=0 GOARCH=amd64 go build", "sets GOARCH"},
		{"pinned platform", "FROM golang:${GO_VERSION}-alpine AS toolchain", "FROM --platform=linux/amd64 golang:${GO_VERSION}-alpine AS toolchain", "pins --platform=linux/amd64"},
		{"library module missing from the dependency layer", "COPY --chown=65532:65532 libs/kafka/go.mod libs/kafka/go.sum* libs/kafka/\n", "", "libs/kafka/go.mod is not copied before `go mod download`"},
		{"sources before the dependency layer", "RUN go mod download", "COPY libs/ /src/libs/\nRUN go mod download", "copies libs/ before `go mod download`"},
		{"floating base image", "golang:${GO_VERSION}-alpine", "golang:latest", `starts FROM "golang:latest"`},
		{"fat release image", "gcr.io/distroless/static-debian13:nonroot", "alpine:3.22", "use a minimal base"},
		{"no syntax directive", "# syntax=docker/dockerfile:1\n", "", "missing `# syntax=docker/dockerfile:1`"},
		{"shell-form entrypoint", `ENTRYPOINT ["/server"]`, "ENTRYPOINT /server", `target "prod" has no exec-form ENTRYPOINT`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(original), tc.old, "the mutation no longer applies to the Dockerfile")
			broken := strings.Replace(string(original), tc.old, tc.new, 1)
			path := filepath.Join(t.TempDir(), "Dockerfile")
			require.NoError(t, os.WriteFile(path, []byte(broken), 0o600))
			d, err := platform.ParseDockerfile(path)
			require.NoError(t, err)
			requireProblem(t, platform.CheckDockerfile(d, dockerfileRules(t)), tc.want)
		})
	}
}

func TestDockerignoreKeepsTheContextToTheGoModules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	require.NotEmpty(t, patterns)
	assert.Equal(t, "*", patterns[0], "start from an empty context")
	assert.Contains(t, patterns, "!libs/")
	assert.Contains(t, patterns, "!services/")
	assert.Contains(t, patterns, "**/*_test.go", "editing a test must not rebuild an image")
}
