package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Step 1, Docker: one multi-stage Dockerfile builds every service — a dev target for Tilt's
// live updates and a small prod target — and Docker builds and runs the images.

// dockerRun is what the checks of step 1 share.
type dockerRun struct {
	cli    bool // the docker CLI is on PATH
	daemon bool // the Docker daemon answered
}

// daemonChecks are the first two checks of every step-1 check list: the CLI is there and the
// daemon answers. The checks after them need both.
func (d *dockerRun) daemonChecks() []check {
	return []check{
		{
			name: "the docker CLI is installed",
			run:  d.cliInstalled,
			hint: hintDockerCLI,
		},
		{
			name: "the Docker daemon answers",
			run:  d.daemonAnswers,
			hint: hintDockerDaemon,
		},
	}
}

func dockerChecks(config) ([]check, func()) {
	d := &dockerRun{}
	return append(d.daemonChecks(), []check{
		{
			name: "the Dockerfile has the targets dev and prod",
			run:  d.dockerfileStages,
			hint: "every `FROM <image> AS <name>` line starts a stage that `docker build --target <name>` can build; " +
				"`git diff Dockerfile` shows what changed",
		},
		{
			name: "an image of every service exists locally",
			run:  d.imagesExist,
			hint: "`make images` builds the prod image of each service (backend-prep/<service>:prod); " +
				"`make up` has Tilt build the dev images",
		},
	}...), func() {}
}

func (d *dockerRun) cliInstalled(context.Context) (string, error) {
	path, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("no docker on PATH: %w", err)
	}
	d.cli = true
	return path, nil
}

func (d *dockerRun) daemonAnswers(ctx context.Context) (string, error) {
	if !d.cli {
		return "", blocked("the docker CLI")
	}
	out, err := command(ctx, "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return "", err
	}
	d.daemon = true
	return "server " + strings.TrimSpace(string(out)), nil
}

// dockerfileStages reads the stages of the Dockerfile from its FROM lines ("FROM <image> AS
// <name>") and wants the two targets the project builds: dev for Tilt, prod for release.
func (d *dockerRun) dockerfileStages(context.Context) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return "", err
	}
	var stages []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && strings.EqualFold(f[0], "FROM") && strings.EqualFold(f[len(f)-2], "AS") {
			stages = append(stages, f[len(f)-1])
		}
	}
	for _, target := range []string{"dev", "prod"} {
		if !slices.Contains(stages, target) {
			return "", fmt.Errorf("no stage named %s among %v", target, stages)
		}
	}
	return "stages " + strings.Join(stages, ", "), nil
}

// imagesExist lists the local images and looks for each service's: backend-prep/<service>
// from `make images`, or the <registry>/backend-prep_<service> that Tilt pushes to the
// cluster's registry.
func (d *dockerRun) imagesExist(ctx context.Context) (string, error) {
	if !d.daemon {
		return "", blocked("a Docker daemon")
	}
	out, err := command(ctx, "docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return "", err
	}
	images := strings.Fields(string(out))
	var found, missing []string
	for _, s := range services {
		i := slices.IndexFunc(images, func(image string) bool {
			repo, _, _ := strings.Cut(image, ":")
			return repo == "backend-prep/"+s || strings.HasSuffix(repo, "/backend-prep_"+s)
		})
		if i < 0 {
			missing = append(missing, s)
			continue
		}
		found = append(found, images[i])
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("no image of %s", strings.Join(missing, ", "))
	}
	return strings.Join(found, ", "), nil
}
