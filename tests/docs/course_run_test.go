package docs_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

var update = flag.Bool("update", false, "rewrite the output docs/learn shows where the output got differs (blocks without …)")

// The pages name the local addresses of `make run` (docs/architecture.md, "Ports"): the system
// the test runs listens on them, so the commands run exactly as printed.
var systemPorts = []string{"8080", "8081", "50051", "9101", "9102", "9103", "9104"}

// TestCoursePages runs every command of the course that can run here, page by page, in the
// order a reader meets them, against real brokers and the four services started as the
// README's "terminal 1-4" commands start them, and compares what each prints with what the
// page shows (see compare_test.go for what may differ).
//
// Each page starts from a fresh system: its own RabbitMQ virtual host and its own Kafka topics,
// so earlier runs and other tests on the same brokers change nothing it prints. The commands
// are run with those names in place of the defaults the page shows, and the output is read with
// the defaults put back: --topic/-t orders.v1 becomes orders.v1-<run>, the Kafka examples'
// topic hello becomes hello-<run>, the group analytics of `--group analytics` analytics-<run>
// (the group the page's analytics joins), and rabbitmqctl's list and delete commands get
// -p <vhost>.
//
// Blocks marked needs-jaeger (the trace backend of `make jaeger`, step 7) run only when Jaeger
// can: when bin/jaeger is built, in CI (CI=true), or when COURSE_JAEGER=1 asks for it (`make
// jaeger` then builds it, a download of about 1.3 GB the first time); COURSE_JAEGER=0 skips them.
// Skipped, the test says so; every other command of the page runs either way.
func TestCoursePages(t *testing.T) {
	rootDir := courseBrokers(t)
	path := toolPath(t, rootDir)
	base := baseSystem(t)
	jaeger := jaegerWanted(rootDir)
	for _, name := range coursePages {
		p := loadPage(t, name)
		if !slices.ContainsFunc(p.items, func(it item) bool { return it.directive == "" && runs(name, it) }) {
			continue
		}
		t.Run(strings.TrimSuffix(name, ".md"), func(t *testing.T) {
			began := time.Now()
			var own *ownBrokers
			if slices.ContainsFunc(p.items, func(it item) bool { return it.directive == "brokers ha" }) {
				own = startOwnBrokers(t, rootDir)
			}
			s := newSessionOn(t, p, rootDir, path, base, own)
			s.jaeger = jaeger
			s.run()
			t.Logf("%s: ran in %s", name, time.Since(began).Round(time.Second))
		})
	}
}

// jaegerWanted tells whether the needs-jaeger blocks run: bin/jaeger is there, or CI=true or
// COURSE_JAEGER=1 has `make jaeger` build it. COURSE_JAEGER=0 skips them.
func jaegerWanted(rootDir string) bool {
	switch os.Getenv("COURSE_JAEGER") {
	case "1":
		return true
	case "0":
		return false
	}
	if os.Getenv("CI") == "true" {
		return true // CI runs every command of the course: .ci/run builds bin/jaeger first
	}
	info, err := os.Stat(filepath.Join(rootDir, "bin", "jaeger"))
	return err == nil && !info.IsDir()
}

// jaegerPorts are the ports `make jaeger` listens on (scripts/jaeger): OTLP over HTTP and gRPC,
// the query API and its gRPC twin.
var jaegerPorts = []string{"4318", "4317", "16686", "16685"}

// courseBrokers checks that the brokers are those of `make brokers`, on the addresses the course
// names, and returns the repository's root.
func courseBrokers(t *testing.T) string {
	t.Helper()
	kafka, amqpURL := brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t)
	require.Equal(t, "127.0.0.1:9092", kafka, "the course's commands name Kafka at 127.0.0.1:9092: run them against `make brokers`")
	require.True(t, strings.HasPrefix(amqpURL, "amqp://guest:guest@127.0.0.1:5672/"), "the course's commands use RabbitMQ at 127.0.0.1:5672: run them against `make brokers`")
	rootDir := stack.RepoRoot()
	status, err := exec.CommandContext(t.Context(), filepath.Join(rootDir, "scripts", "brokers"), "status").CombinedOutput()
	require.NoError(t, err, "the course's rabbitmqctl commands go through `scripts/brokers rabbitmqctl`: start the brokers with `make brokers`\n%s", status)
	return rootDir
}

// runs tells whether TestCoursePages runs a command of a page.
func runs(page string, it item) bool {
	why, covered := accounting(page, it.oneLine())
	return !covered || why == ""
}

// toolPath is the PATH of the commands: the pinned tools in bin/ (grpcurl, buf), the kubectl
// stand-in, then the machine's. The programs the pages use must all be there.
func toolPath(t *testing.T, rootDir string) string {
	t.Helper()
	standIn := t.TempDir()
	require.NoError(t, stack.Build(rootDir, filepath.Join(standIn, "kubectl"), "./tests/internal/kubectl"))
	path := standIn + string(os.PathListSeparator) + filepath.Join(rootDir, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, tool := range []string{"bash", "curl", "grpcurl", "kcat", "jq", "file", "ldd", "xargs", "go", "make"} {
		found := false
		for _, dir := range filepath.SplitList(path) {
			if info, err := os.Stat(filepath.Join(dir, tool)); err == nil && !info.IsDir() {
				found = true
				break
			}
		}
		require.True(t, found, "the course uses %s and it is not installed (grpcurl: `make tools`; kcat, jq, file: the OS packages of the same names)", tool)
	}
	_, err := os.Stat(filepath.Join(rootDir, "bin", "buf"))
	require.NoError(t, err, "the course runs bin/buf: `make tools` installs it")
	return path
}

// baseSystem is how the README starts the four services, one per terminal: label → command.
func baseSystem(t *testing.T) map[string]string {
	t.Helper()
	base := map[string]string{}
	for _, it := range loadPage(t, "README.md").items {
		if it.terminal != "" && strings.Contains(it.cmd, "bin/") {
			base[it.terminal] = it.cmd
		}
	}
	require.Len(t, base, 4, "the README starts the four services in terminals 1-4")
	return base
}

type session struct {
	own     *ownBrokers // the page's own brokers; nil: the shared ones, with a vhost and topics of the page's own
	t       *testing.T
	p       *page
	dir     string
	env     []string
	suffix  string
	vhost   string
	base    map[string]string
	terms   map[string]*stack.Proc
	edits   []edit
	started []string // terminals in start order, for a tidy stop
	jaeger  bool     // the needs-jaeger blocks run
	skipped int      // needs-jaeger commands not run
}

// edit replaces lines [from, to) of a page (-update).
type edit struct {
	from, to int
	lines    []string
}

func newSession(t *testing.T, p *page, dir, path string, base map[string]string) *session {
	t.Helper()
	return newSessionOn(t, p, dir, path, base, nil)
}

// newSessionOn is newSession on the page's own brokers, when own is not nil: they are fresh, so
// the page's commands run on the default names (orders.v1, the vhost /) as printed.
func newSessionOn(t *testing.T, p *page, dir, path string, base map[string]string, own *ownBrokers) *session {
	t.Helper()
	s := &session{t: t, p: p, dir: dir, base: base, terms: map[string]*stack.Proc{}, suffix: "run" + stack.UniqueSuffix(), own: own}
	if own == nil {
		s.vhost = "docs-" + s.suffix
		s.rabbitmqctl("add_vhost", s.vhost)
		s.rabbitmqctl("set_permissions", "-p", s.vhost, "guest", ".*", ".*", ".*")
		t.Cleanup(func() { s.rabbitmqctl("delete_vhost", s.vhost) })
		t.Cleanup(s.deleteTopics)
	}
	postgres := s.schema()
	t.Cleanup(s.stopAll)

	// The reader's shell: no settings of this test's own run, and not inside a make (under
	// `make test`, MAKELEVEL would make the pages' `make build` print "Entering directory").
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", strings.HasPrefix(name, "KAFKA_"), strings.HasPrefix(name, "RABBITMQ_"), strings.HasPrefix(name, "POSTGRES_"),
			strings.HasPrefix(name, "ANALYTICS_"), strings.HasPrefix(name, "OTEL_"), slices.Contains([]string{"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}, name):
		default:
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env,
		"PATH="+path,
		"POSTGRES_URL="+postgres,
		"SHUTDOWN_TIMEOUT=10s",
		// The progress the self-checks keep goes to a directory of the page's own, not the user's.
		"BACKEND_PREP_STATE_DIR="+t.TempDir(),
	)
	if own != nil {
		s.env = slices.DeleteFunc(s.env, func(kv string) bool {
			name, _, _ := strings.Cut(kv, "=")
			return slices.Contains([]string{"RABBITMQCTL", "BROKERS_STATE_DIR", "BROKERS_PROFILE"}, name)
		})
		s.env = append(s.env, own.env...)
		return s
	}
	s.env = append(s.env,
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
		"RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/"+s.vhost,
		"KAFKA_TOPIC=orders.v1-"+s.suffix,
		"ANALYTICS_GROUP_ID=analytics-"+s.suffix,
	)
	return s
}

// schema gives the page a schema of its own in order-api's PostgreSQL database, dropped when
// the page is done, and returns the POSTGRES_URL whose connections see only it: the
// Idempotency-Keys of earlier runs (kept for a day) and of other pages change nothing the page
// prints.
func (s *session) schema() string {
	s.t.Helper()
	base := brokertest.PostgresURL(s.t)
	name := "docs_" + s.suffix // "run" and hex digits: a plain identifier
	s.psql(base, "CREATE SCHEMA "+name)
	s.t.Cleanup(func() { s.psql(base, "DROP SCHEMA "+name+" CASCADE") })
	u, err := url.Parse(base)
	require.NoError(s.t, err, "POSTGRES_URL is a URL")
	q := u.Query()
	q.Set("search_path", name) // order-api's driver (pgx) sends it as a run-time setting
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *session) psql(conn, sql string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "psql", conn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql).CombinedOutput()
	require.NoError(s.t, err, "psql -c %q (the PostgreSQL client, which the postgresql package installs)\n%s", sql, out)
}

func (s *session) rabbitmqctl(args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(s.dir, "scripts", "brokers"), append([]string{"rabbitmqctl"}, args...)...).CombinedOutput()
	require.NoError(s.t, err, "rabbitmqctl %v\n%s", args, out)
}

func (s *session) run() {
	if !slices.Contains(s.directives(), "no system") {
		s.startSystem()
	}
	if s.jaeger && slices.ContainsFunc(s.p.items, func(it item) bool { return it.has(needsJaeger) }) {
		s.checkFree(jaegerPorts, "is `make jaeger` running? The page starts its own")
	}
	for _, it := range s.p.items {
		switch {
		case it.directive != "":
			s.directive(it)
		case !runs(s.p.name, it):
		case it.has(needsJaeger) && !s.jaeger:
			s.skipped++
		case it.terminal != "" || isLongRunning(it.cmd):
			s.startTerminal(it)
		case it.console:
			s.transcript(it)
		default:
			s.mustRun(it, true)
		}
	}
	if s.skipped > 0 {
		s.t.Logf("%s: %d command(s) of needs-jaeger blocks not run: COURSE_JAEGER=0, or no bin/jaeger (`scripts/jaeger build`) and COURSE_JAEGER=1 not set", s.p.name, s.skipped)
	}
	if *update && len(s.edits) > 0 {
		s.applyEdits()
	}
}

func (s *session) directives() []string {
	var out []string
	for _, it := range s.p.items {
		if it.directive != "" {
			out = append(out, it.directive)
		}
	}
	return out
}

// startSystem starts the README's four terminals and waits until analytics owns every partition.
func (s *session) startSystem() {
	s.t.Helper()
	s.checkPortsFree()
	for _, label := range []string{"1", "2", "3", "4"} {
		s.startTerminal(item{line: 0, cmd: s.base[label], terminal: label})
	}
	s.eventually("analytics owns the partitions of the page's topic", 90*time.Second, func() (bool, string) {
		ok, out := answers200("127.0.0.1:8081", "/v1/stats")
		return ok && strings.Contains(out, `"partitions":[0,1,2]`), out
	})
}

// checkPortsFree fails the test when something already listens on the system's ports.
func (s *session) checkPortsFree() {
	s.t.Helper()
	s.checkFree(systemPorts, "is `make run` running?")
}

func (s *session) checkFree(ports []string, hint string) {
	s.t.Helper()
	for _, port := range ports {
		if listening(s.t, port) {
			s.t.Fatalf("127.0.0.1:%s is in use (%s): the course's commands name these ports, and this test runs what listens there", port, hint)
		}
	}
}

// listening tells whether something accepts connections on a local port.
func listening(t *testing.T, port string) bool {
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", "127.0.0.1:"+port)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// answers200 tells whether GET addr+path answers 200, and what it answered.
func answers200(addr, path string) (bool, string) {
	status, body, err := stack.Get(addr, path)
	if err != nil {
		return false, err.Error()
	}
	return status == http.StatusOK, fmt.Sprintf("%d %s", status, body)
}

// eventually polls ok until it holds, failing the test with ok's last word after timeout.
func (s *session) eventually(what string, timeout time.Duration, ok func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		var done bool
		if done, last = ok(); done {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Fatalf("%s: not after %s (last: %s)", what, timeout, last)
}

// isLongRunning: commands a reader leaves running without a terminal comment.
func isLongRunning(cmd string) bool { return cmd == "make run" }

var (
	adminAddr    = regexp.MustCompile(`\bADMIN_ADDR=(\S+)`)
	topicName    = regexp.MustCompile(`\borders\.v1(\.[a-z0-9]+)*`)
	kafkaExample = regexp.MustCompile(`go run \./labs/examples/kafka/(producer|consumer|topics)\b`)
	rabbitList   = regexp.MustCompile(`rabbitmqctl (list_[a-z_]+|delete_queue|purge_queue)`)
	mutating     = regexp.MustCompile(`-d |--data|/producer|/consumer|delete_|bin/|xargs|seq |pprof|scripts/brokers (up|down)\b|^kill `)
	groupFlag    = regexp.MustCompile(`--group analytics\b`)
	helloTopic   = regexp.MustCompile(`--topic hello\b`) // the examples' topic, named by the page
)

// localize puts the page's names for this run into a command (see TestCoursePages).
func (s *session) localize(cmd string) string {
	if s.own != nil {
		return cmd // fresh brokers of the page's own: the default names are the page's
	}
	var b strings.Builder
	last := 0
	for _, m := range topicName.FindAllStringIndex(cmd, -1) {
		if m[1] < len(cmd) && cmd[m[1]] == '.' { // a proto name such as orders.v1.OrderValidation
			continue
		}
		b.WriteString(cmd[last:m[1]] + "-" + s.suffix)
		last = m[1]
	}
	b.WriteString(cmd[last:])
	cmd = b.String()
	cmd = helloTopic.ReplaceAllString(cmd, "$0-"+s.suffix) // before the --topic added below
	if !strings.Contains(cmd, "--delete-group") {          // which acts on groups alone, and refuses --topic
		cmd = kafkaExample.ReplaceAllStringFunc(cmd, func(m string) string { return m + " --topic hello-" + s.suffix })
	}
	cmd = groupFlag.ReplaceAllString(cmd, "$0-"+s.suffix)
	// A --topic given after ours wins (the flag package keeps the last), so orders.v1 stays.
	return rabbitList.ReplaceAllString(cmd, "$0 -p "+s.vhost)
}

// globalize puts the page's names back into output.
func (s *session) globalize(out string) string {
	if s.own != nil {
		return s.own.globalize(out)
	}
	out = strings.ReplaceAll(out, "vhost '"+s.vhost+"'", "vhost '/'")
	return strings.ReplaceAll(out, "-"+s.suffix, "")
}

// exec runs a command to its end and returns its output (stdout and stderr) and exit status.
func (s *session) exec(cmd string, timeout time.Duration) (string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-c", s.localize(cmd))
	c.Dir, c.Env = s.dir, s.env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	out, err := c.CombinedOutput()
	if ctx.Err() != nil {
		s.t.Errorf("%s: `%s` still ran after %s:\n%s", s.where(0), cmd, timeout, out)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return s.globalize(string(out)), exit.ExitCode()
	case err != nil:
		s.t.Fatalf("`%s`: %v", cmd, err)
	}
	return s.globalize(string(out)), 0
}

func (s *session) where(line int) string { return fmt.Sprintf("docs/learn/%s:%d", s.p.name, line) }

func (s *session) mustRun(it item, wantOK bool) {
	s.t.Helper()
	out, code := s.exec(it.cmd, 3*time.Minute)
	if (code == 0) != wantOK {
		s.t.Errorf("%s: `%s` exited with status %d:\n%s", s.where(it.line), it.oneLine(), code, out)
	}
}

// transcript runs a console command and compares its output with the page's; a command that
// changes nothing is repeated for a while, as a reader would, while the system catches up.
func (s *session) transcript(it item) {
	s.t.Helper()
	want := normalize(it.want, it.has("any-numbers"), it.has("any-order"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := s.exec(it.cmd, 3*time.Minute)
		got := strings.Split(out, "\n")
		if matches(want, normalize(got, it.has("any-numbers"), it.has("any-order"))) {
			return
		}
		if mutating.MatchString(it.cmd) || time.Now().After(deadline) {
			s.mismatch(it, got)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *session) mismatch(it item, got []string) {
	s.t.Helper()
	for len(got) > 0 && strings.TrimSpace(got[len(got)-1]) == "" {
		got = got[:len(got)-1]
	}
	s.t.Errorf("%s: `%s` printed\n%s\nwhere the page shows\n%s", s.where(it.line), it.oneLine(),
		indent(got), indent(it.want))
	if !slices.ContainsFunc(it.want, func(l string) bool { return strings.TrimSpace(l) == ellipsis }) {
		s.edits = append(s.edits, edit{it.wantFrom, it.wantTo, prefixed(it.indent, got)})
	}
}

func indent(lines []string) string { return "\t| " + strings.Join(lines, "\n\t| ") }

func prefixed(p string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if l != "" {
			l = p + l
		}
		out[i] = l
	}
	return out
}

func (s *session) applyEdits() {
	lines := s.p.lines
	for i := len(s.edits) - 1; i >= 0; i-- {
		e := s.edits[i]
		lines = slices.Concat(lines[:e.from], e.lines, lines[e.to:])
	}
	path := filepath.Join(root, "docs", "learn", s.p.name)
	require.NoError(s.t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644))
	s.t.Logf("rewrote %d transcript(s) of %s", len(s.edits), path)
}

// startTerminal starts a long-running command in its terminal, replacing what ran there, and
// waits until it is ready, or until its output is what the page shows.
func (s *session) startTerminal(it item) {
	s.t.Helper()
	label := it.terminal
	if label == "" {
		label = it.cmd
	}
	s.stopTerminal(label, syscall.SIGINT)
	p := stack.StartShell(s.t, "terminal "+label, s.dir, s.localize(it.cmd), s.env)
	s.terms[label] = p
	s.started = append(s.started, label)
	if len(it.want) > 0 {
		want := normalize(it.want, it.has("any-numbers"), it.has("any-order"))
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if matches(want, normalize(strings.Split(s.globalize(p.Output()), "\n"), it.has("any-numbers"), it.has("any-order"))) {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		s.mismatch(it, strings.Split(s.globalize(p.Output()), "\n"))
		return
	}
	ready := func() (bool, string) { return p.Running(), "" }
	switch {
	case adminAddr.MatchString(it.cmd):
		addr := adminAddr.FindStringSubmatch(it.cmd)[1]
		ready = func() (bool, string) { return answers200(addr, "/readyz") }
	case strings.Contains(it.cmd, "make run"):
		ready = func() (bool, string) {
			for _, port := range []string{"9101", "9102", "9103", "9104"} {
				if ok, out := answers200("127.0.0.1:"+port, "/readyz"); !ok {
					return false, port + ": " + out
				}
			}
			return true, ""
		}
	case strings.Contains(it.cmd, "examples/grpc/server"):
		ready = outputHas(p, "listening on")
	case strings.Contains(it.cmd, "examples/kafka/consumer"):
		ready = outputHas(p, "assigned partitions")
	case strings.Contains(it.cmd, "examples/rabbitmq/consumer"):
		ready = outputHas(p, "waiting for messages")
	}
	timeout := 90 * time.Second
	if strings.Contains(it.cmd, "make jaeger") {
		// The first `make jaeger` builds Jaeger: a large download, then minutes of compiling.
		ready, timeout = func() (bool, string) { return answers200("127.0.0.1:16686", "/api/v3/services") }, 30*time.Minute
	}
	what := fmt.Sprintf("%s: `%s` (terminal %s) is ready", s.where(it.line), it.oneLine(), label)
	s.eventually(what, timeout, func() (bool, string) {
		if !p.Running() {
			s.t.Fatalf("%s: `%s` (terminal %s) exited (its output is below)", s.where(it.line), it.oneLine(), label)
		}
		return ready()
	})
}

func outputHas(p *stack.Proc, substr string) func() (bool, string) {
	return func() (bool, string) { return strings.Contains(p.Output(), substr), "" }
}

func (s *session) stopTerminal(label string, sig syscall.Signal) {
	s.t.Helper()
	p := s.terms[label]
	if p == nil || !p.Running() {
		return
	}
	if sig == syscall.SIGKILL {
		p.Kill(s.t)
		return
	}
	p.Interrupt(s.t, 30*time.Second)
}

func (s *session) stopAll() {
	for i := len(s.started) - 1; i >= 0; i-- {
		s.stopTerminal(s.started[i], syscall.SIGINT)
	}
}

func (s *session) directive(it item) {
	s.t.Helper()
	verb, arg, _ := strings.Cut(it.directive, " ")
	switch verb {
	case "no", "brokers": // read before the page starts (TestCoursePages)
	case "stop", "kill", "start":
		label, ok := strings.CutPrefix(arg, "terminal ")
		require.True(s.t, ok, "%s: %q: say `%s terminal X`", s.where(it.line), it.directive, verb)
		switch verb {
		case "stop":
			s.stopTerminal(label, syscall.SIGINT)
		case "kill":
			s.stopTerminal(label, syscall.SIGKILL)
		case "start":
			cmd, ok := s.base[label]
			require.True(s.t, ok, "%s: the README starts no terminal %s", s.where(it.line), label)
			s.startTerminal(item{line: it.line, cmd: cmd, terminal: label})
		}
	case "run", "fails":
		code, comment := splitComment(arg)
		cmd := item{line: it.line, cmd: code}
		if m := terminalRe.FindStringSubmatch(comment); m != nil {
			cmd.terminal = m[1]
			s.startTerminal(cmd)
			return
		}
		s.mustRun(cmd, verb == "run")
	default:
		s.t.Fatalf("%s: unknown directive %q", s.where(it.line), it.directive)
	}
}

// deleteTopics deletes the Kafka topics of this run, with the course's own topics example.
func (s *session) deleteTopics() {
	topics := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "go", append([]string{"run", "./labs/examples/kafka/topics"}, args...)...)
		c.Dir, c.Env = s.dir, s.env
		out, err := c.CombinedOutput()
		if err != nil {
			s.t.Errorf("cleaning up: kafka topics %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, l := range strings.Split(topics(), "\n") {
		if name, _, _ := strings.Cut(l, " "); strings.HasSuffix(name, "-"+s.suffix) {
			topics("--topic", name, "--delete")
		}
	}
}
