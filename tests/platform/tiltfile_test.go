package platform_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/platform"
)

var tiltRules = platform.TiltRules{
	Labels:           []string{"infra", "services", "tools", "labs"},
	ExtensionRepoURL: "https://github.com/tilt-dev/tilt-extensions",
}

func TestTiltfileExecutesAndEverythingItNamesExists(t *testing.T) {
	requireNoProblems(t, tiltfile(t).Check(tiltRules))
}

func TestTiltfileChecksCatchBrokenTiltfiles(t *testing.T) {
	cases := []struct {
		fixture string
		want    string
	}{
		{"missing-path", "context of image backend-prep/order-api: services/no-such-service does not exist"},
		{"unknown-workload", `k8s_resource("payments"): no workload of that name`},
		{"unknown-dependency", `resource "unit-tests" depends on "databse", which does not exist`},
		{"dependency-cycle", "resource_deps form a cycle: a -> b -> a"},
		{"unpinned-extension", `extension repo ref "master" is not a commit hash`},
		{"unknown-keyword", `k8s_resource: unexpected keyword argument "port_forward"`},
		{"unknown-builtin", "undefined: helm"},
		{"uncategorized", "Secret/backend-prep/rabbitmq-credentials belongs to no resource"},
		{"undeclared-port", "forwards localhost:9093 to container port 9093, which StatefulSet/backend-prep/kafka does not declare"},
		{"unused-image", `image "backend-prep/payments" is built but no deployed container uses it`},
		{"sync-outside-context", "sync of services/validator, which is not in its build context"},
		{"unlabelled", `resource "unit-tests" has labels [], want one of`},
		{"object-claimed-twice", `object "rabbitmq-credentials:secret" already belongs to a resource`},
		{"too-old-floor", `ci_settings(readiness_timeout=) needs Tilt 0.35.0, but version_settings(constraint=">=0.33.0") lets Tilt 0.33.0 run this file`},
		{"no-version-floor", "the Tiltfile sets no version_settings(constraint=...)"},
		{"unknown-since", "update_settings(suppress_unused_image_warnings=): the first Tilt release that accepts it is not known here"},
	}
	root := repoRoot(t)
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			run, err := platform.ExecTiltfile(filepath.Join("testdata", "tiltfiles", tc.fixture+".Tiltfile"), platform.TiltOptions{Dir: root})
			if err != nil {
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			requireProblem(t, run.Check(tiltRules), tc.want)
		})
	}
}

// Every workspace service gets an image from the shared Dockerfile's dev target, and the
// live update fits that image: files sync to where the Dockerfile copies them, the
// rebuild writes the binary the entrypoint runs, and the restart signal is the file the
// Dockerfile creates for the unprivileged user.
func TestEveryServiceImageLiveUpdatesIntoTheSharedDevImage(t *testing.T) {
	root := repoRoot(t)
	ws, err := platform.ReadWorkspace(root)
	require.NoError(t, err)
	dockerfile, err := platform.ParseDockerfile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	run := tiltfile(t)
	for _, service := range ws.ServiceNames() {
		t.Run(service, func(t *testing.T) {
			img := run.Image("backend-prep/" + service)
			require.NotNil(t, img, "the Tiltfile builds no image for services/%s", service)
			assert.Equal(t, filepath.Join(root, "Dockerfile"), img.Dockerfile)
			assert.Equal(t, root, img.Context)
			assert.Equal(t, "dev", img.Target)
			assert.Equal(t, map[string]string{"SERVICE": service}, img.BuildArgs)
			assert.ElementsMatch(t, []string{"libs", "services/" + service}, img.Only)
			require.True(t, img.WithRestart, "built without the restart_process extension")
			assert.Contains(t, dockerfile.TouchedFiles("dev"), img.RestartFile, "the dev image does not create the restart file")
			require.NotNil(t, dockerfile.Stage("dev"))

			destinations := dockerfile.CopyDestinations("dev")
			var syncs, downloadTriggers []string
			var build string
			for _, step := range img.LiveUpdate {
				switch step.Kind {
				case "sync":
					rel, err := filepath.Rel(root, step.Local)
					require.NoError(t, err)
					syncs = append(syncs, rel)
					copied := strings.ReplaceAll(step.Remote+"/", "/"+service+"/", "/${SERVICE}/")
					assert.Contains(t, destinations, copied, "sync target %s is not where the Dockerfile copies %s", step.Remote, rel)
				case "run":
					if strings.Contains(step.Command, "go build") {
						build = step.Command
					}
					if strings.Contains(step.Command, "go mod download") {
						downloadTriggers = step.Triggers
					}
				}
			}
			assert.ElementsMatch(t, []string{"libs", "services/" + service}, syncs)
			for _, mod := range append(slices.Clone(ws.Libs), "services/"+service) {
				assert.Contains(t, downloadTriggers, filepath.Join(root, mod, "go.mod"), "a change to %s/go.mod must download modules before the rebuild", mod)
			}
			require.NotEmpty(t, build, "no live update step rebuilds the binary")
			require.NotEmpty(t, img.Entrypoint)
			assert.Contains(t, build, "-o "+img.Entrypoint[0], "the rebuild must replace the binary the entrypoint runs")
			assert.Contains(t, build, "-tags musl")
			// The memory figure the dev limit is set from (docs/platform.md, "Memory") was
			// measured with two compiles at a time and no inherited GOMEMLIMIT.
			assert.Contains(t, build, " -p 2 ", "the rebuild must bound its parallelism: on a 16-core laptop go build would run 16 compiles in the pod")
			assert.Contains(t, build, "GOMEMLIMIT=off go build", "the rebuild must not inherit the server's GOMEMLIMIT (the pod's whole limit)")
			assert.Contains(t, build, "cd /src/services/"+service+" ")
		})
	}
}

func TestTiltResourcesAreLabelledAndForwardTheDesignedPorts(t *testing.T) {
	run := tiltfile(t)
	cases := []struct {
		resource string
		label    string
		ports    []int // local ports, docs/architecture.md "Ports"
	}{
		{"platform", "infra", nil},
		{"kafka", "infra", []int{9092}},
		{"rabbitmq", "infra", []int{15672}},
		{"validator", "services", []int{50051}},
		{"order-api", "services", []int{8080}},
		{"notifier", "services", nil},
		{"analytics", "services", []int{8081}},
		{"gateway", "infra", nil},
		{"unit-tests", "tools", nil},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			res := run.Resource(tc.resource)
			require.NotNil(t, res, "no resource %q", tc.resource)
			assert.Contains(t, res.Labels, tc.label)
			var local []int
			for _, pf := range res.PortForwards {
				local = append(local, pf.Local)
			}
			for _, p := range tc.ports {
				assert.Contains(t, local, p)
			}
		})
	}
}

// A service starts only after what it talks to is ready: what it talks to is read from
// its environment, so a new dependency in the manifests needs a matching resource_deps.
func TestServicesStartAfterTheBrokersAndServicesTheyUse(t *testing.T) {
	run := tiltfile(t)
	uses := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": "kafka",
		"RABBITMQ_URL":            "rabbitmq",
		"VALIDATOR_ADDR":          "validator",
	}
	dependsOn := func(from, to string) bool {
		seen := map[string]bool{}
		var walk func(string) bool
		walk = func(name string) bool {
			res := run.Resource(name)
			if res == nil || seen[name] {
				return false
			}
			seen[name] = true
			return slices.Contains(res.Deps, to) || slices.ContainsFunc(res.Deps, walk)
		}
		return walk(from)
	}
	for _, w := range platform.Workloads(run.Objects) {
		c := &w.Template.Spec.Containers[0]
		for _, e := range platform.ContainerEnv(run.Objects, c) {
			if dep, ok := uses[e.Name]; ok {
				t.Run(w.Name+" waits for "+dep, func(t *testing.T) {
					assert.True(t, dependsOn(w.Name, dep), "%s reads %s but does not wait for %s", w.Name, e.Name, dep)
				})
			}
		}
		t.Run(w.Name+" waits for the namespace", func(t *testing.T) {
			assert.True(t, dependsOn(w.Name, "platform"))
		})
	}
}

func TestSampleOrderButtonPostsTheDesignExample(t *testing.T) {
	run := tiltfile(t)
	b := slices.IndexFunc(run.Buttons, func(b platform.Button) bool { return b.Name == "place-sample-order" })
	require.GreaterOrEqual(t, b, 0, "no button place-sample-order")
	btn := run.Buttons[b]
	assert.Equal(t, "order-api", btn.Resource)
	require.Equal(t, "curl", btn.Argv[0])
	assert.Contains(t, btn.Argv, "http://localhost:8080/v1/orders")
	assert.Contains(t, btn.Argv, "content-type: application/json")
	i := slices.Index(btn.Argv, "-d")
	require.GreaterOrEqual(t, i, 0, "the button sends no body")
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(btn.Argv[i+1]), &body))
	assert.Equal(t, map[string]any{
		"customer_id": "c-42",
		"items":       []any{map[string]any{"sku": "BOOK-001", "quantity": float64(2)}},
	}, body)
}

func TestUnitTestsRunOnlyWhenAsked(t *testing.T) {
	i := slices.IndexFunc(tiltfile(t).LocalResources, func(lr platform.LocalResource) bool { return lr.Name == "unit-tests" })
	require.GreaterOrEqual(t, i, 0)
	lr := tiltfile(t).LocalResources[i]
	assert.Equal(t, "make test-unit", lr.Cmd)
	assert.True(t, lr.Manual)
	assert.False(t, lr.AutoInit, "`tilt ci` must not wait for it")
}

func TestKafkaUIIsOffUnlessTheFlagIsGiven(t *testing.T) {
	assert.Nil(t, tiltfile(t).Resource("kafka-ui"))

	root := repoRoot(t)
	run, err := platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"kafka-ui": true}})
	require.NoError(t, err)
	requireNoProblems(t, run.Check(tiltRules))
	res := run.Resource("kafka-ui")
	require.NotNil(t, res)
	assert.Contains(t, res.Labels, "tools")
	assert.Contains(t, res.Deps, "kafka")

	_, err = platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"kafka-iu": true}})
	assert.ErrorContains(t, err, "unknown flag --kafka-iu")
}

// Jaeger is always on, and every service links to its profiler next to its metrics; Prometheus
// and Grafana come with --observability, each with a link to its UI.
func TestTracingIsAlwaysOnAndMetricsUIsOnlyWithTheFlag(t *testing.T) {
	run := tiltfile(t)
	jaeger := run.Resource("jaeger")
	require.NotNil(t, jaeger)
	assert.Contains(t, jaeger.Labels, "infra")
	assert.Contains(t, jaeger.Deps, "platform")
	require.Len(t, jaeger.PortForwards, 1)
	assert.Equal(t, 16686, jaeger.PortForwards[0].Local)
	assert.Nil(t, run.Resource("prometheus"))
	assert.Nil(t, run.Resource("grafana"))

	for _, service := range []string{"order-api", "validator", "notifier", "analytics"} {
		t.Run(service+" links to its profiler on its forwarded admin port", func(t *testing.T) {
			res := run.Resource(service)
			require.NotNil(t, res)
			var metrics int
			for _, pf := range res.PortForwards {
				if pf.Container == 9090 {
					metrics = pf.Local
				}
			}
			require.NotZero(t, metrics, "%s forwards no admin port", service)
			require.Len(t, res.Links, 1)
			assert.Equal(t, "http://localhost:"+strconv.Itoa(metrics)+"/debug/pprof/", res.Links[0].URL)
		})
	}

	root := repoRoot(t)
	on, err := platform.ExecTiltfile(filepath.Join(root, "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"observability": true}})
	require.NoError(t, err)
	requireNoProblems(t, on.Check(tiltRules))
	for name, port := range map[string]int{"prometheus": 9090, "grafana": 3000} {
		res := on.Resource(name)
		require.NotNil(t, res, "no resource %q with --observability", name)
		assert.Contains(t, res.Labels, "tools")
		require.Len(t, res.PortForwards, 1)
		assert.Equal(t, port, res.PortForwards[0].Local)
		assert.Equal(t, port, res.PortForwards[0].Container)
	}
	assert.Contains(t, on.Resource("grafana").Deps, "prometheus")
}

// `make up` runs scripts/doctor first: it must ask for the same oldest Tilt as the
// Tiltfile, or a learner with an older one passes the doctor and fails in `tilt up`.
func TestDoctorAsksForTheTiltfilesTiltFloor(t *testing.T) {
	floor, err := tiltfile(t).MinTilt()
	require.NoError(t, err)
	assert.Equal(t, floor, scriptSetting(t, "doctor", "MIN_TILT"))
}

// The extension ref the Tiltfile pins is the one docs/platform.md lists with where it
// was checked, so a bump cannot skip the table (and the check the table asks for).
func TestThePinnedExtensionRefIsInThePinsTable(t *testing.T) {
	run := tiltfile(t)
	require.NotEmpty(t, run.ExtensionRepos)
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "platform.md"))
	require.NoError(t, err)
	for _, repo := range run.ExtensionRepos {
		assert.Contains(t, string(doc), "`"+repo.Ref+"`", "docs/platform.md does not list the extension ref %s", repo.Ref)
	}
}

// scripts/doctor checks, before `make up`, that every port Tilt will forward is free:
// its list is the Tiltfile's forwards, with and without the Kafka UI.
func TestDoctorChecksEveryForwardedPort(t *testing.T) {
	forwards := func(run *platform.TiltRun) []string {
		var ports []string
		for _, res := range run.K8sResources {
			for _, pf := range res.PortForwards {
				ports = append(ports, strconv.Itoa(pf.Local))
			}
		}
		return ports
	}
	assert.ElementsMatch(t, forwards(tiltfile(t)), strings.Fields(scriptSetting(t, "doctor", "FORWARDED_PORTS")))

	withUI, err := platform.ExecTiltfile(filepath.Join(repoRoot(t), "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"kafka-ui": true}})
	require.NoError(t, err)
	extra := slices.DeleteFunc(forwards(withUI), func(p string) bool { return slices.Contains(forwards(tiltfile(t)), p) })
	assert.Equal(t, []string{scriptSetting(t, "doctor", "KAFKA_UI_PORT")}, extra)

	withMetrics, err := platform.ExecTiltfile(filepath.Join(repoRoot(t), "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"observability": true}})
	require.NoError(t, err)
	extra = slices.DeleteFunc(forwards(withMetrics), func(p string) bool { return slices.Contains(forwards(tiltfile(t)), p) })
	assert.ElementsMatch(t, strings.Fields(scriptSetting(t, "doctor", "OBSERVABILITY_PORTS")), extra)
}

func TestTiltReleaseTableHoldsReleaseNumbers(t *testing.T) {
	for use, since := range platform.TiltSince() {
		assert.Regexp(t, `^[0-9]+\.[0-9]+\.[0-9]+$`, since, use)
	}
}

// docs/platform.md tells a learner what `make up` shows: the resources under each label
// of the Tilt UI and what is reachable from the laptop. Both tables must say what the
// Tiltfile does, with the Kafka UI, the metrics (--observability) and --autoscale on, and what kind
// publishes (the Gateway).
func TestPlatformDocListsTheTiltResourcesAndPorts(t *testing.T) {
	run, err := platform.ExecTiltfile(filepath.Join(repoRoot(t), "Tiltfile"), platform.TiltOptions{Flags: map[string]any{"kafka-ui": true, "observability": true, "autoscale": true}})
	require.NoError(t, err)
	resources, _, errs := run.Assemble()
	require.Empty(t, errs)
	byLabel := map[string][]string{}
	var ports []string
	for _, res := range resources {
		for _, l := range res.Labels {
			byLabel[l] = append(byLabel[l], res.Name)
		}
		for _, pf := range res.PortForwards {
			ports = append(ports, strconv.Itoa(pf.Local))
		}
	}

	// And the port kind publishes for the Gateway (kind/cluster.yaml).
	cluster, err := platform.ReadKindConfig(filepath.Join(repoRoot(t), "kind", "cluster.yaml"))
	require.NoError(t, err)
	for _, node := range cluster.Nodes {
		for _, m := range node.ExtraPortMappings {
			ports = append(ports, strconv.Itoa(int(m.HostPort)))
		}
	}

	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "platform.md"))
	require.NoError(t, err)
	code := regexp.MustCompile("`([^`]+)`")
	documented := map[string][]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z]+)` +\\| (.*)\\|$").FindAllStringSubmatch(string(doc), -1) {
		for _, name := range code.FindAllStringSubmatch(m[2], -1) {
			documented[m[1]] = append(documented[m[1]], name[1])
		}
	}
	for label, names := range byLabel {
		assert.ElementsMatch(t, names, documented[label], "docs/platform.md, label %s", label)
	}

	section := string(doc)[strings.Index(string(doc), "### What you can reach from your laptop"):]
	section = section[:strings.Index(section, "\n### ")]
	var reachable []string
	for _, m := range regexp.MustCompile(`(?:localhost|\x60):([0-9]{4,5})\b`).FindAllStringSubmatch(section, -1) {
		reachable = append(reachable, m[1])
	}
	slices.Sort(reachable)
	slices.Sort(ports)
	assert.Equal(t, ports, slices.Compact(reachable), "docs/platform.md, \"What you can reach from your laptop\"")
}
