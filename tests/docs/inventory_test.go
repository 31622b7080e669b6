package docs_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every command the course shows is accounted for: TestCoursePages runs it against real
// brokers and compares what it prints with what the page shows, or one of the rules below
// names the test that runs it, or says why it cannot run in CI.

// Why a command is not run by TestCoursePages.
const (
	cluster = "needs the Kind cluster of `make up`: Kind and Tilt cannot run in CI (no registry to pull node and broker images from)"
	docker  = "needs a Docker engine with base images (golang:alpine, distroless) pulled from a registry; CI reaches none"
	network = "downloads from the internet (@latest, external installers); the pinned equivalent runs in CI"
)

type rule struct {
	page string // the page it is about; empty: every page
	re   *regexp.Regexp
	why  string // not run, and why; or "run by …": which test runs it instead
}

func r(pattern, why string) rule { return rule{re: regexp.MustCompile(pattern), why: why} }

// on scopes a rule to one page, where a command means something else than elsewhere.
func on(page, pattern, why string) rule { return rule{page, regexp.MustCompile(pattern), why} }

func (r rule) matches(page, cmd string) bool {
	return (r.page == "" || r.page == page) && r.re.MatchString(cmd)
}

// rules are tried in order; the first that matches a command decides.
var rules = []rule{
	// Kubernetes and Tilt: the cluster, its objects and everything run inside it.
	r(`^kubectl kustomize `, ""), // rendered without a cluster: see tests/internal/kubectl
	r(`^kubectl `, cluster),
	r(`^export RABBITMQ_URL="\$\(kubectl `, cluster),
	r(`^make (up|down)\b`, cluster),
	r(`^make bench-cluster\b`, cluster+"; make bench runs the same benchmark against a system of its own (.ci/run)"),
	r(`^make doctor$`, "checks the tools of the Kind path (a running Docker engine, kind, kubectl, tilt), which this machine cannot have; tests/platform checks its syntax (bash -n)"),
	on("02-kubernetes.md", `^curl -sS localhost:9101/readyz$`, cluster+" (through Tilt's port-forward; 06-system.md runs it against the processes)"),
	// Docker.
	r(`^docker `, docker),
	r(`^make images$`, docker),
	r(`^make compose-(up|down)$`, docker+"; tests/platform loads compose.yaml with compose-go and checks it against the manifests (TestCompose…)"),
	on("01-docker.md", `^go mod download$`, "a step of the Dockerfile the page explains: it runs inside `docker build`, which "+docker),
	on("01-docker.md", `^make stop$`, "frees make run's ports for Compose; TestMakeRun (tests/docs) runs it against make run"),
	on("01-docker.md", `^curl -sS localhost:8081/v1/stats$`, "asks analytics under Compose, which "+docker+"; 04-kafka.md runs it against the process"),
	on("01-docker.md", `^grpcurl -plaintext localhost:50051 list$`, "talks to the container of `docker run`, which "+docker+"; 05-grpc.md runs it against the process"),
	// The self-checks.
	r(`^(go run \./labs/selfcheck|make selfcheck STEP=)[ =]?[1-2]\b`, cluster+" (step 1 also needs a Docker engine)"),
	r(`^(go run \./labs/selfcheck|make selfcheck STEP=)[ =]?([3-7]|rabbitmq|kafka|grpc|system|observe)\b`, "run by tests/labs (TestSelfChecks runs steps 3-7 against the running system, and each with its service stopped)"),
	// Step 8: the replicated brokers, which TestCoursePages starts for the page itself.
	r(`^(go run \./labs/selfcheck|make selfcheck STEP=)[ =]?(8|replicate)$`, "run by TestCoursePages on 08-replicate.md (doc-test directives): it fails with a broker down, and passes once all are back"),
	r(`^make brokers PROFILE=ha$`, "run by TestCoursePages in effect: it starts the same brokers for 08-replicate.md (scripts/brokers up with BROKERS_PROFILE=ha) on ports of their own, and stops them after it"),
	on("08-replicate.md", `^make brokers-stop PROFILE=ha$`, "run by TestCoursePages in effect: it stops the page's own brokers (scripts/brokers down) when the page is done"),
	on("08-replicate.md", `^make run PROFILE=ha$`, "run by TestCoursePages in effect: it starts the four services as the README's terminals 1-4 with every node's address in RABBITMQ_URL and KAFKA_BOOTSTRAP_SERVERS, as make run PROFILE=ha gives them; TestMakeRun runs make run"),
	on("08-replicate.md", `^scripts/brokers (env|(kafka-topics|kafka-metadata-quorum|rabbitmqctl)( …)?)$`, "not a command: names the tool whose commands the page's blocks run"),
	on("08-replicate.md", `^make brokers-reset PROFILE=ha$`, "not run: it deletes the replicated brokers' data, which the page's exercises go on with; TestMakeRunStartsTheBrokers runs make brokers-reset"),
	r(`^make lab ARGS='start oom-limit'$`, cluster+"; tests/platform applies the incident's patch and its reset to the rendered manifests (TestLabClusterIncidentsPatchWhatTheyClaim)"),
	r(`^make lab( ARGS=.*)?$`, "run by tests/labs (TestSelfChecks takes every incident of the lab that runs here through start, check, hints, the repair its write-up describes, check and reset, as go run ./labs/selfcheck lab)"),
	r(`^for s in 3 4 5 6; do go run \./labs/selfcheck \$s; done$`, "run by tests/labs (TestSelfChecks runs steps 3-6 against the running system)"),
	// The workflow around the system.
	r(`^make brokers$`, "run by .ci/run, which starts the brokers every test here uses"),
	r(`^make brokers-stop$`, "run by .ci/run when it ends, and by TestMakeRunStartsTheBrokers"),
	r(`^make brokers-reset$`, "run by TestMakeRunStartsTheBrokers (tests/docs), on brokers of its own"),
	r(`^RABBITMQ_MANAGEMENT_PORT=15672 make brokers$`, "not run: it restarts the brokers every other test shares; checked by hand (the management plugin ships with the rabbitmq-server package)"),
	r(`^make (test|lint)$`, "run by .ci/run"),
	r(`^make bench( BENCH_ARGS=.*)?$`, "run by .ci/run as make bench BENCH_ARGS=-quick, every section small and short; a flag's comparison (-linger, -channels, -prefetch, -queue, -sections) is the same benchmark with other settings, too long for CI"),
	r(`^make tools$`, "run by .ci/run (make lint installs the tools first)"),
	r(`^make generate$`, "run by .ci/run in effect: make lint generates into a scratch copy and fails on any difference (scripts/check-generated)"),
	r(`^make run$`, "run by TestMakeRun (tests/docs): the four services on the README's ports, stopped each way the README offers; TestMakeRunStartsTheBrokers runs it with no broker running"),
	r(`^bin/buf breaking `, "not run: it compares with the branch main of the reader's clone, which a CI checkout need not have"),
	r(`^kill -9$`, "run by tests/e2e (TestSystem SIGKILLs analytics and the notifier and checks the totals after their restart)"),
	// The reader's machine.
	r(`^sudo apt-get install `, "run by .ci/run in effect: it installs the same Debian packages (as root, without sudo)"),
	r(`^brew install `, "macOS only; this machine runs Debian"),
	r(`^sudo systemctl start docker$`, docker+" (and this machine runs no systemd)"),
	// Named in prose, not commands to run as written.
	on("03-rabbitmq.md", `^scripts/brokers rabbitmqctl …$`, "not a command: the form of the page's rabbitmqctl commands, which run"),
	on("03-rabbitmq.md", `^rabbitmqctl list_queues$`, "not a command: names the subcommand the page's blocks run"),
	on("02-kubernetes.md", `^go build$`, "not a command: what Tilt's live update runs in the container ("+cluster+")"),
	on("06-system.md", `^curl -d$`, "not a command: names curl's option -d"),
}

// accounting says how a command is covered: "" when TestCoursePages runs it.
func accounting(page, cmd string) (why string, ok bool) {
	for _, r := range rules {
		if r.matches(page, cmd) {
			return r.why, true
		}
	}
	return "", false
}

func TestEveryCommandIsAccountedFor(t *testing.T) {
	used := make([]bool, len(rules))
	type entry struct{ page, cmd, how string }
	var inventory []entry
	note := func(p *page, line int, cmd, how string) {
		inventory = append(inventory, entry{fmt.Sprintf("%s:%d", p.name, line), cmd, how})
	}
	for _, name := range coursePages {
		p := loadPage(t, name)
		ran := map[string]bool{} // what TestCoursePages runs on this page
		for _, it := range p.items {
			cmd := it.oneLine()
			if d, ok := strings.CutPrefix(it.directive, "run "); ok {
				code, _ := splitComment(d) // a `# terminal X` comment is not part of the command
				ran[collapse(code)] = true
				continue
			}
			if it.directive != "" {
				continue
			}
			why, matched := "", false
			for i, r := range rules {
				if r.matches(name, cmd) {
					why, matched, used[i] = r.why, true, true
					break
				}
			}
			if !matched || why == "" {
				ran[cmd] = true
				how := "run and compared by TestCoursePages"
				if it.has(needsJaeger) {
					how += " when it has Jaeger (bin/jaeger, or COURSE_JAEGER=1)"
				}
				note(p, it.line, cmd, how)
				continue
			}
			note(p, it.line, cmd, why)
		}
		for _, s := range p.spans {
			if ran[s.cmd] {
				note(p, s.line, s.cmd, "run by TestCoursePages (in a block or a doc-test directive of the page)")
				continue
			}
			i := slices.IndexFunc(rules, func(r rule) bool { return r.matches(name, s.cmd) })
			if !assert.GreaterOrEqual(t, i, 0, "%s:%d: `%s` is neither run by TestCoursePages nor covered by a rule", p.name, s.line, s.cmd) {
				continue
			}
			used[i] = true
			how := rules[i].why
			if how == "" {
				how = "run by TestCoursePages"
			}
			note(p, s.line, s.cmd, how)
		}
	}
	for i, u := range used {
		assert.True(t, u, "rule %q matches no command of the course any more", rules[i].re)
	}
	require.NotEmpty(t, inventory)
	sort.SliceStable(inventory, func(i, j int) bool { return inventory[i].how < inventory[j].how })
	var b strings.Builder
	for _, e := range inventory {
		fmt.Fprintf(&b, "%-24s %s\n%24s   -> %s\n", e.page, e.cmd, "", e.how)
	}
	t.Logf("the course's commands and how each is covered:\n%s", b.String())
}
