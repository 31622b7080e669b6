// Package chaos_test is the fault suite: the four services run as processes against real
// RabbitMQ and Kafka brokers of the suite's own, under a bounded load of orders, while brokers
// and services are stopped, killed and restarted one fault at a time. After each fault it
// asserts, and prints, that nothing accepted was lost or doubled and that nothing lied while it
// recovered:
//
//   - every order answered 202 is counted exactly once by analytics and notified exactly once;
//   - clients see 202 or 503 only, and every 503 is a problem with Retry-After;
//   - while a broker is down, order-api's /readyz is false and its 503s come fast;
//   - analytics never answers 200 with stats that lost what it had already counted;
//   - the time from the fault's end to the first 202 and to correct stats.
//
// Run it alone with `make chaos`; `make test` runs it too.
package chaos_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stack.RemoveBinaries()
	os.Exit(code)
}

// fixture is the system under test and what the suite knows about it.
type fixture struct {
	b       *brokers
	s       *stack.Stack
	l       *ledger
	journal string
	run     string
}

// fault is one scenario: inject starts it, hold is how long it lasts, heal ends it and returns
// once what was stopped runs again.
type fault struct {
	name         string
	inject, heal func(t *testing.T, f *fixture)
	hold         time.Duration
	// brokerDown: order-api cannot place orders while the fault lasts (a broker, or the
	// database of its Idempotency-Keys, is down), so its /readyz must turn false and its 503s
	// must come fast once it has.
	brokerDown bool
	// analytics: analytics itself restarts; it must not answer 200 with lost stats, and be
	// right again within analyticsRecovery.
	analytics bool
}

// analyticsRecovery bounds the time from a restarted analytics to correct stats.
const analyticsRecovery = 15 * time.Second

// failFast bounds the median 503 once order-api knows a broker is down.
const failFast = 100 * time.Millisecond

func restart(name string) func(*testing.T, *fixture) {
	return func(_ *testing.T, f *fixture) { f.s.Start(name) }
}

func kill(name string) func(*testing.T, *fixture) {
	return func(t *testing.T, f *fixture) { f.s.Procs[name].Kill(t) }
}

func terminate(name string) func(*testing.T, *fixture) {
	return func(t *testing.T, f *fixture) {
		code := f.s.Procs[name].Terminate(t, 30*time.Second)
		require.Equal(t, 0, code, "%s exit code after SIGTERM", name)
	}
}

var faults = []fault{
	{name: "notifier SIGKILL", inject: kill("notifier"), hold: 2 * time.Second, heal: restart("notifier")},
	{name: "analytics SIGKILL", inject: kill("analytics"), heal: restart("analytics"), analytics: true},
	{name: "analytics SIGTERM", inject: terminate("analytics"), heal: restart("analytics"), analytics: true},
	{name: "validator SIGKILL", inject: kill("validator"), hold: 3 * time.Second, heal: restart("validator")},
	{name: "order-api SIGTERM", inject: terminate("order-api"), hold: time.Second, heal: restart("order-api")},
	{
		name:       "rabbitmq stop_app",
		inject:     func(t *testing.T, f *fixture) { f.b.run(t, time.Minute, "rabbitmqctl", "stop_app") },
		hold:       6 * time.Second,
		heal:       func(t *testing.T, f *fixture) { f.b.run(t, time.Minute, "rabbitmqctl", "start_app") },
		brokerDown: true,
	},
	{
		name:       "postgres stop",
		inject:     func(t *testing.T, f *fixture) { f.b.run(t, time.Minute, "down", "postgres") },
		hold:       4 * time.Second,
		heal:       func(t *testing.T, f *fixture) { f.b.run(t, time.Minute, "up", "postgres") },
		brokerDown: true,
	},
	{
		name:       "kafka kill -9",
		inject:     func(t *testing.T, f *fixture) { f.b.killKafka(t, "kafka") },
		hold:       3 * time.Second,
		heal:       func(t *testing.T, f *fixture) { f.b.run(t, 3*time.Minute, "up", "kafka") },
		brokerDown: true,
	},
}

// TestFaults runs every fault in turn on one system, under load, and prints a table of what
// each one cost.
func TestFaults(t *testing.T) {
	requireFullRun(t, "the fault suite")
	suiteStart := time.Now()
	f := newFixture(t, startBrokers(t, "backend-prep-chaos-", brokerPorts))

	rows := []string{fmt.Sprintf("%-20s %6s %5s %9s %9s %10s %10s %10s %12s",
		"fault", "orders", "503s", "503 p50", "503 max", "not ready", "then p50", "first 202", "stats right")}
	for _, ft := range faults {
		ok := t.Run(strings.ReplaceAll(ft.name, " ", "_"), func(t *testing.T) {
			rows = append(rows, f.inflict(t, ft))
		})
		if !ok {
			break // the system may be left broken: later faults would only repeat the failure
		}
	}
	t.Logf("fault suite, %d clients, %d orders accepted in all, %s:\n%s",
		clients, f.l.accepted(), time.Since(suiteStart).Round(time.Second), strings.Join(rows, "\n"))
}

// requireFullRun skips a test of the suite under -short, except in CI, where it must run.
func requireFullRun(t *testing.T, what string) {
	t.Helper()
	if !testing.Short() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s was run with -short in CI: CI runs `make test`, which runs it", what)
	}
	t.Skipf("%s starts brokers of its own: not run by -short (make test-unit); make test and make chaos run it", what)
}

// newFixture starts the four services on b, configured with what `scripts/brokers env` exports
// for them as `make run` does, and waits until analytics owns its partitions.
func newFixture(t *testing.T, b *brokers) *fixture {
	t.Helper()
	f := &fixture{b: b, l: newLedger(), run: stack.UniqueSuffix()}
	f.s = stack.New(t, b.vars["KAFKA_BOOTSTRAP_SERVERS"], b.vars["RABBITMQ_URL"], b.vars["POSTGRES_URL"])
	// Each service connects as its own RabbitMQ user, with only the rights it needs, as under
	// `make run` and in the cluster.
	for service, v := range map[string]string{"order-api": "ORDER_API_RABBITMQ_URL", "notifier": "NOTIFIER_RABBITMQ_URL"} {
		require.NotEmpty(t, b.vars[v], "scripts/brokers env exports no %s", v)
		f.s.Env[service]["RABBITMQ_URL"] = b.vars[v]
	}
	// Replicated brokers: the topics the services create get as many replicas.
	if r := b.vars["KAFKA_TOPIC_REPLICATION"]; r != "" {
		for _, service := range []string{"order-api", "analytics"} {
			f.s.Env[service]["KAFKA_TOPIC_REPLICATION"] = r
		}
	}
	f.journal = filepath.Join(t.TempDir(), "notifications.jsonl")
	f.s.Env["notifier"]["NOTIFIER_JOURNAL_PATH"] = f.journal
	// The journal keeps the last NOTIFIER_RECENT_LIMIT notifications (10,000 by default) and
	// drops older ones when it compacts; the suite places some 20,000 orders and checks each.
	f.s.Env["notifier"]["NOTIFIER_RECENT_LIMIT"] = "1000000"
	f.s.StartAll()
	f.waitForStats(t, time.Now(), time.Minute)
	return f
}

// inflict runs one fault under load, checks what the clients and the consumers saw, and
// returns its row of the report.
func (f *fixture) inflict(t *testing.T, ft fault) string {
	ready := watch(f.s.Admin["order-api"], "/readyz", 50*time.Millisecond)
	defer ready.stop()
	statsW := watch(f.s.StatsAddr, "/v1/stats", 100*time.Millisecond)
	defer statsW.stop()
	before := f.l.accepted() // analytics counted all of them: the previous fault ended so

	ld := startLoad(f.s.APIAddr, f.l, f.run)
	time.Sleep(2 * time.Second)
	began := time.Now()
	ft.inject(t, f)
	time.Sleep(ft.hold)
	healed := time.Now() // the fault ends: the broker or the service is being started again
	ft.heal(t, f)
	back := time.Now()
	firstOK := f.waitAccepted(t, healed, time.Minute)
	time.Sleep(2 * time.Second)
	ld.stop()
	// order-api was ready before the fault, and is again once it is over.
	for _, p := range ready.between(began.Add(-2*time.Second), began) {
		if p.done.Before(began) { // a probe still waiting when the fault began may see it
			require.Equal(t, http.StatusOK, p.status, "order-api not ready %s before the fault: %s", began.Sub(p.at).Round(time.Millisecond), p.body)
		}
	}
	stack.WaitReady(t, f.s.Procs["order-api"], f.s.Admin["order-api"], 30*time.Second)

	f.l.mu.Lock()
	problems := slices.Clone(f.l.problems)
	f.l.mu.Unlock()
	require.Empty(t, problems, "what clients saw that they never should")

	all := summarize(f.l.since(began))
	notReady, knownP50 := "-", "-"
	if ft.brokerDown {
		down, seen := ready.firstNotOK(began, back)
		require.True(t, seen, "order-api's /readyz stayed 200 while the broker was down")
		notReady = down.Sub(began).Round(10 * time.Millisecond).String()
		// Once order-api knows, the 503s come at once rather than after the publish timeout.
		var known []answer
		for _, a := range f.l.since(down) {
			if a.at.Before(back) && a.status == http.StatusServiceUnavailable {
				known = append(known, a)
			}
		}
		fast := summarize(known)
		knownP50 = fast.p50.Round(time.Millisecond).String()
		require.NotZero(t, fast.unavailable, "no 503 while the broker was known to be down")
		require.Less(t, fast.p50, failFast, "the median 503 once order-api knew the broker was down")
	}

	statsRight := f.waitForStats(t, healed, 2*time.Minute)
	for _, p := range statsW.between(began, time.Now()) {
		if p.status != http.StatusOK {
			continue
		}
		st, err := decodeStats(p.body)
		require.NoError(t, err, "%s", p.body)
		require.GreaterOrEqual(t, st.Orders, int64(before),
			"analytics answered 200 at %s with %d orders, fewer than the %d it had counted before the fault",
			p.at.Sub(began).Round(time.Millisecond), st.Orders, before)
	}
	if ft.analytics {
		require.LessOrEqual(t, statsRight, analyticsRecovery, "a restarted analytics is right again within %s", analyticsRecovery)
	}
	f.requireNotifiedOnce(t, time.Minute)

	return fmt.Sprintf("%-20s %6d %5d %9s %9s %10s %10s %10s %12s", ft.name, f.l.accepted()-before, all.unavailable,
		all.p50.Round(time.Millisecond), all.max.Round(time.Millisecond), notReady, knownP50,
		firstOK.Round(10*time.Millisecond), statsRight.Round(10*time.Millisecond))
}

// waitAccepted returns how long after since the first order sent after it was accepted.
func (f *fixture) waitAccepted(t *testing.T, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, a := range f.l.since(since) {
			if a.status == http.StatusAccepted {
				return a.at.Add(a.took).Sub(since)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no order accepted within %s of the fault's end", timeout)
	return 0
}

// expected is what analytics must answer: the sum of every accepted order.
func (f *fixture) expected() stats {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	var want stats
	want.BySKU = map[string]struct {
		Quantity     int64 `json:"quantity"`
		RevenueCents int64 `json:"revenue_cents"`
	}{}
	for _, o := range f.l.orders {
		want.Orders++
		want.RevenueCents += o.TotalCents
		for _, it := range o.Items {
			s := want.BySKU[it.SKU]
			s.Quantity += it.Quantity
			s.RevenueCents += it.LineTotalCents
			want.BySKU[it.SKU] = s
		}
	}
	return want
}

// waitForStats waits until analytics answers exactly the accepted orders, and returns how long
// after since that was.
func (f *fixture) waitForStats(t *testing.T, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	want := f.expected()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		status, body, err := stack.Get(f.s.StatsAddr, "/v1/stats")
		switch {
		case err != nil:
			last = err.Error()
		case status != http.StatusOK:
			last = fmt.Sprintf("%d %s", status, body)
		default:
			got, err := decodeStats(body)
			require.NoError(t, err, "%s", body)
			if got.Orders == want.Orders && got.RevenueCents == want.RevenueCents && fmt.Sprint(got.BySKU) == fmt.Sprint(want.BySKU) {
				require.Equal(t, []int{0, 1, 2}, got.Partitions, "the one analytics replica owns every partition")
				return time.Since(since)
			}
			require.LessOrEqual(t, got.Orders, want.Orders, "analytics counts more orders than were accepted: %s", body)
			last = string(body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("analytics never answered the accepted orders (%d, %d cents) within %s; last: %s",
		want.Orders, want.RevenueCents, timeout, last)
	return 0
}

// requireNotifiedOnce waits until the notifier's journal holds every accepted order once, and
// nothing else.
func (f *fixture) requireNotifiedOnce(t *testing.T, timeout time.Duration) {
	t.Helper()
	f.l.mu.Lock()
	want := len(f.l.orders)
	f.l.mu.Unlock()
	deadline := time.Now().Add(timeout)
	var counts map[string]int
	for time.Now().Before(deadline) {
		counts = f.journalCounts(t)
		if len(counts) >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	for id := range f.l.orders {
		require.Equal(t, 1, counts[id], "order %s was answered 202: it must be notified exactly once", id)
	}
	for id, n := range counts {
		_, ok := f.l.orders[id]
		require.True(t, ok, "order %s was notified (%d times) but never answered 202", id, n)
	}
}

// journalCounts counts the notifications of each order in the notifier's journal.
func (f *fixture) journalCounts(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	file, err := os.Open(f.journal)
	if os.IsNotExist(err) {
		return counts
	}
	require.NoError(t, err)
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var n struct {
			OrderID string `json:"order_id"`
		}
		if json.Unmarshal(sc.Bytes(), &n) == nil && n.OrderID != "" {
			counts[n.OrderID]++
		}
	}
	require.NoError(t, sc.Err())
	return counts
}
