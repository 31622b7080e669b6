package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The incidents of step 1: a small service and its Dockerfile, copied into labs/_workspace, that
// work with go run and fail in a container. lab check builds the learner's copy into an image
// and runs it with Docker the way the step does; no image is pulled (the base is scratch).

// dockerNeeds is what the incidents of step 1 need.
const dockerNeeds = "Docker (no image is pulled)"

// serviceWait bounds the wait for a container's service to answer through its published port.
const serviceWait = 10 * time.Second

var publishedPort = scenario{
	name:  "published-port",
	step:  1,
	needs: dockerNeeds,
	title: "the container runs, but nothing answers on its port",
	symptom: "The order-status service in labs/_workspace/published-port answers `curl localhost:8080/healthz` " +
		"under go run. In a container (`docker run -p 8080:8080`), docker ps shows it up with its port " +
		"published and its log says it listens, but every curl gets `Connection reset by peer` (or an " +
		"empty reply). `make lab ARGS='check published-port'` builds the image and asks it through its port.",
	hints: []string{
		"The container is up and Docker publishes its port. Where does Docker send a connection made to the published port on your machine?",
		"A container has a network namespace of its own, with its own loopback interface. Docker forwards the published port to the container's address on its network (172.17.0.x on the default bridge), not to the container's loopback.",
		"Read the service's log line: it listens on localhost:8080. Inside the container, localhost is the container's own loopback, which nothing outside the container can reach.",
		"Listen on every interface of the container: make the default of --addr \":8080\" in main.go (or pass it in the Dockerfile: ENTRYPOINT [\"/app\", \"--addr\", \":8080\"]).",
	},
	inject:  func(context.Context, config) error { return copyIncident("published-port") },
	restore: removeImageIncident("published-port"),
	checks: imageChecks("published-port",
		imageBehaviour{"a request through the published port reaches the service", answersThroughPublishedPort}),
}

var stopSignal = scenario{
	name:  "stop-signal",
	step:  1,
	needs: dockerNeeds,
	title: "docker stop cuts off the checkouts in flight",
	symptom: "The checkout service in labs/_workspace/stop-signal finishes the checkouts in flight when you " +
		"press Ctrl-C: its log says \"drained\". In a container, `docker stop` ends it at once: the customer " +
		"whose card was being charged gets no answer, the log never says \"drained\", and docker ps -a shows " +
		"Exited (2). Every deploy on Kubernetes would do the same. `make lab ARGS='check stop-signal'` " +
		"builds the image, starts a checkout and stops the container in the middle of it.",
	hints: []string{
		"Compare Ctrl-C in a terminal with docker stop. What does each of them send to the program?",
		"docker stop sends the image's STOPSIGNAL, SIGTERM unless the Dockerfile says otherwise, and SIGKILL when the program has not exited after the timeout (10 s). Exited (2) is not SIGKILL's 137: the program died of the signal at once.",
		"Which signals does the program ask for with signal.NotifyContext? A Go program dies of a SIGTERM it did not ask for; as a container's PID 1, whose signals the kernel does not act on, Go's runtime exits with status 2 instead.",
		"Ask for SIGTERM as well: signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM). Kubernetes stops a container with SIGTERM too.",
	},
	inject:  func(context.Context, config) error { return copyIncident("stop-signal") },
	restore: removeImageIncident("stop-signal"),
	checks: imageChecks("stop-signal",
		imageBehaviour{"docker stop lets the checkout in flight finish", drainsOnDockerStop}),
}

// labImage and labContainer name what lab check builds and runs for an incident; the images of
// the services (backend-prep/<service>) are never touched.
func labImage(name string) string     { return "backend-prep-lab/" + name }
func labContainer(name string) string { return "backend-prep-lab-" + name }

// imageBehaviour is a check of an incident's image: it gets a container of it whose service
// answers through its published port.
type imageBehaviour struct {
	name string
	run  func(ctx context.Context, c *container) (string, error)
}

// imageChecks are the checks of an incident of step 1: Docker answers, the learner's copy builds
// into an image, then the image behaves.
func imageChecks(name string, behaviours ...imageBehaviour) func(cfg config) ([]check, func()) {
	return func(config) ([]check, func()) {
		d := &dockerRun{}
		var image string
		checks := append(d.daemonChecks(), []check{
			{
				name: "labs/_workspace/" + name + " builds into an image",
				run: func(ctx context.Context) (string, error) {
					if !d.daemon {
						return "", blocked("a Docker daemon")
					}
					var err error
					image, err = buildImage(ctx, name)
					return image, err
				},
			},
		}...)
		for _, b := range behaviours {
			checks = append(checks, check{
				name: b.name,
				run: func(ctx context.Context) (string, error) {
					if image == "" {
						return "", blocked("the image")
					}
					return onContainer(ctx, name, image, b.run)
				},
				hint: "make lab ARGS='hint " + name + "' gives one hint at a time",
			})
		}
		return checks, func() {}
	}
}

// buildImage compiles the learner's copy into a static Linux binary, app, next to its
// Dockerfile, and builds the image from that directory, as the program's comment shows.
func buildImage(ctx context.Context, name string) (string, error) {
	ws, err := workspace(name)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(ws, "Dockerfile")); err != nil {
		return "", fmt.Errorf("%s/Dockerfile is gone: make lab ARGS='start %s' copies it again", ws, name)
	}
	if err := goBuild(ctx, name, filepath.Join(ws, "app"), "CGO_ENABLED=0", "GOOS=linux"); err != nil {
		return "", err
	}
	image := labImage(name)
	removeImage(ctx, image) // so that the image of an earlier check is not left behind, untagged
	if _, err := commandWithin(ctx, buildTimeout, "docker", "build", "--quiet", "--tag", image, ws); err != nil {
		return "", err
	}
	return image, nil
}

// removeImageIncident is the reset of an incident of step 1: its container, its image and its
// workspace go.
func removeImageIncident(name string) func(context.Context, config) error {
	return func(ctx context.Context, _ config) error {
		if _, err := exec.LookPath("docker"); err == nil {
			removeContainer(ctx, labContainer(name))
			removeImage(ctx, labImage(name))
		}
		return removeIncident(name)
	}
}

// removeContainer removes the container, running or not, if there is one.
func removeContainer(ctx context.Context, container string) {
	_, _ = command(ctx, "docker", "rm", "--force", container)
}

// removeImage removes the image, if there is one.
func removeImage(ctx context.Context, image string) {
	_, _ = command(ctx, "docker", "image", "rm", "--force", image)
}

// container is one run of an incident's image, its port 8080 published on a free port of
// 127.0.0.1.
type container struct {
	name string
	base string // http://127.0.0.1:<published port>
}

// runContainer starts a container of image, after removing any left by an earlier check; the
// caller removes it.
func runContainer(ctx context.Context, name, image string) (*container, error) {
	c := &container{name: labContainer(name)}
	removeContainer(ctx, c.name)
	if _, err := command(ctx, "docker", "run", "--detach", "--name", c.name, "--publish", "127.0.0.1::8080", image); err != nil {
		return nil, err
	}
	out, err := command(ctx, "docker", "port", c.name, "8080/tcp")
	if err != nil {
		removeContainer(ctx, c.name)
		return nil, err
	}
	addr, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		removeContainer(ctx, c.name)
		return nil, fmt.Errorf("docker port %s 8080/tcp printed %q: %w", c.name, out, err)
	}
	c.base = "http://" + addr
	return c, nil
}

// state is the container's status and exit code, as docker inspect reports them.
func (c *container) state(ctx context.Context) (status string, exitCode int, err error) {
	out, err := command(ctx, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c.name)
	if err != nil {
		return "", 0, err
	}
	status, code, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	exitCode, err = strconv.Atoi(code)
	return status, exitCode, err
}

// logs is what the container's program wrote, on standard output and standard error.
func (c *container) logs(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", c.name).CombinedOutput()
	if err != nil {
		return "(docker logs: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

// ready waits until GET /healthz answers 200 through the published port, and fails with the
// last error seen, or at once when the container has exited.
func (c *container) ready(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(serviceWait)
	var last error
	for {
		if status, code, err := c.state(ctx); err == nil && status == "exited" {
			return fmt.Errorf("the container exited with code %d; its log: %q", code, c.logs(ctx))
		}
		last = c.healthz(ctx, client)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
	return fmt.Errorf("the container runs and publishes its port 8080 on %s, but no request through it "+
		"got an answer in %s (the last: %w); its log: %q", strings.TrimPrefix(c.base, "http://"), serviceWait, last, c.logs(ctx))
}

// healthz asks GET /healthz through the published port once.
func (c *container) healthz(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz answered %s", res.Status)
	}
	return nil
}

// onContainer runs a container of image with its port published, as step 1 does, waits until
// its service answers through that port, hands it to check and removes it.
func onContainer(ctx context.Context, name, image string, check func(context.Context, *container) (string, error)) (string, error) {
	c, err := runContainer(ctx, name, image)
	if err != nil {
		return "", err
	}
	defer removeContainer(context.WithoutCancel(ctx), c.name)
	if err := c.ready(ctx); err != nil {
		return "", err
	}
	return check(ctx, c)
}

// answersThroughPublishedPort is the check of published-port: onContainer has asked the service
// through the published port, and it answered.
func answersThroughPublishedPort(_ context.Context, c *container) (string, error) {
	return "GET " + c.base + "/healthz answered 200", nil
}

// drainsOnDockerStop starts a checkout, stops the container in the middle of it with docker stop
// and wants the checkout answered and the container to exit 0.
func drainsOnDockerStop(ctx context.Context, c *container) (string, error) {
	type answer struct {
		status string
		err    error
	}
	answered := make(chan answer, 1)
	checkoutCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() { // owned by this check: it ends with the request, within checkoutCtx
		req, err := http.NewRequestWithContext(checkoutCtx, http.MethodPost, c.base+"/v1/checkout", strings.NewReader("{}"))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		answered <- answer{status: res.Status}
	}()
	time.Sleep(500 * time.Millisecond) // the checkout is charging the card: 2 s

	began := time.Now()
	if _, err := commandWithin(ctx, 30*time.Second, "docker", "stop", "-t", "10", c.name); err != nil {
		return "", err
	}
	took := time.Since(began).Round(100 * time.Millisecond)
	a := <-answered
	_, code, err := c.state(ctx)
	if err != nil {
		return "", err
	}
	logs := c.logs(ctx)
	switch {
	case a.err != nil:
		return "", fmt.Errorf("docker stop ended the container in %s with exit code %d while a checkout was in flight, "+
			"and the customer got no answer (%v); its log: %q", took, code, a.err, logs)
	case a.status != "200 OK":
		return "", fmt.Errorf("the checkout in flight at docker stop answered %s, want 200 OK; its log: %q", a.status, logs)
	case code != 0:
		return "", fmt.Errorf("the checkout in flight was answered, but the container exited with code %d after docker stop "+
			"(%s); its log: %q", code, took, logs)
	}
	return fmt.Sprintf("the checkout in flight answered 200, and the container exited 0, %s after docker stop", took), nil
}
