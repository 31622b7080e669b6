package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// drainResult is one notifier draining the backlog of its queue.
type drainResult struct {
	name     string
	messages int
	ready    time.Duration // from the process's start to its /readyz answering 200
	drained  time.Duration // from the process's start to the last message handled
	rss      int
}

// perSecond counts from the process's start: the notifier consumes while it is still starting
// (its readiness waits for more than its consumer), so the time to ready is part of the drain.
func (d drainResult) perSecond() float64 {
	if d.drained <= 0 {
		return 0
	}
	return float64(d.messages) / d.drained.Seconds()
}

type notifierVariant struct {
	name string
	env  map[string]string
}

// notifierVariants are the notifiers a run compares: one per -prefetch and -queue value, or the
// notifier as configured.
func notifierVariants(cfg settings) []notifierVariant {
	var out []notifierVariant
	for _, q := range cfg.queues {
		out = append(out, notifierVariant{"queue=" + q, map[string]string{"NOTIFIER_QUEUE_TYPE": q}})
	}
	for _, n := range cfg.prefetch {
		out = append(out, notifierVariant{"prefetch=" + strconv.Itoa(n), map[string]string{"RABBITMQ_PREFETCH": strconv.Itoa(n)}})
	}
	if len(out) == 0 {
		out = append(out, notifierVariant{name: "notifier", env: map[string]string{}})
	}
	return out
}

// runNotifierDrains measures how fast the notifier empties a queue that holds -backlog orders.
// Each variant gets a queue of its own on the system's exchange: started once to declare and
// bind it, then stopped. order-api places the backlog, which lands in every variant's queue;
// then each variant starts in turn and is timed until it has handled every message.
func runNotifierDrains(b *testing.B, cfg settings, sys *system) []drainResult {
	b.Helper()
	variants := notifierVariants(cfg)
	envs := make([]map[string]string, len(variants))
	for i, v := range variants {
		env := maps.Clone(sys.stack.Env["notifier"])
		env["ADMIN_ADDR"] = stack.FreeAddr(b)
		env["NOTIFIER_QUEUE"] = fmt.Sprintf("%s.drain%d", sys.queue, i)
		sys.drainQueues = append(sys.drainQueues, env["NOTIFIER_QUEUE"])
		env["NOTIFIER_JOURNAL_PATH"] = filepath.Join(b.TempDir(), "notifications.jsonl")
		maps.Copy(env, v.env)
		envs[i] = env
		p := stack.Start(b, "notifier", env)
		stack.WaitReady(b, p, env["ADMIN_ADDR"], 60*time.Second)
		p.Terminate(b, 30*time.Second)
	}

	progress("placing a backlog of %d orders through order-api (64 clients)", cfg.backlog)
	a := attack(sys.apiAddr, 64, 0, cfg.backlog)
	if a.accepted == 0 {
		b.Fatalf("order-api accepted none of the backlog: %v", a.failed)
	}
	queued := a.accepted

	var out []drainResult
	for i, v := range variants {
		env := envs[i]
		waitQueued(b, sys.amqp, env["NOTIFIER_QUEUE"], queued)
		progress("%s: draining %d orders", v.name, queued)
		start := time.Now()
		p := stack.Start(b, "notifier", env)
		stack.WaitReady(b, p, env["ADMIN_ADDR"], 60*time.Second)
		ready := time.Since(start)
		deadline := start.Add(10 * time.Minute)
		for {
			n, err := handledByNotifier(env["ADMIN_ADDR"])
			if err == nil && n >= float64(queued) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s handled %.0f of %d messages in 10 minutes (last error: %v)", v.name, n, queued, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := drainResult{name: v.name, messages: queued, ready: ready, drained: time.Since(start)}
		r.rss, _ = rss(p.Pid())
		p.Terminate(b, 30*time.Second)
		out = append(out, r)
	}
	printDrains(out)
	return out
}

// waitQueued waits until queue holds at least n ready messages: the confirms order-api waited
// for mean routed and stored, but a quorum queue counts them a moment later.
func waitQueued(b *testing.B, url, queue string, n int) {
	b.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			b.Fatalf("queue %s: %v", queue, err)
		}
		if q.Messages >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("queue %s holds %d messages, want %d", queue, q.Messages, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// handledByNotifier is how many messages the notifier has finished: sent, or skipped as a
// duplicate, from its /metrics.
func handledByNotifier(admin string) (float64, error) {
	fams, err := metrics(admin)
	if err != nil {
		return 0, err
	}
	return counter(fams, "notifier_notifications_sent_total") + counter(fams, "notifier_notifications_duplicate_total"), nil
}

func metrics(admin string) (map[string]*dto.MetricFamily, error) {
	status, body, err := stack.Get(admin, "/metrics")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}

// counter sums the counter's series.
func counter(fams map[string]*dto.MetricFamily, name string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

func printDrains(rs []drainResult) {
	fmt.Printf("\n== The notifier draining a queue that holds the backlog (timed from its start)\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "notifier\tmessages\tready after\tdrained after\tmessages/s\tRSS after\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.0f\t%s\t\n", r.name, r.messages, r.ready.Round(time.Millisecond),
			r.drained.Round(time.Millisecond), r.perSecond(), mib(r.rss))
	}
	_ = w.Flush()
}

// statsAnswer is analytics' GET /v1/stats, the part the bench reads.
type statsAnswer struct {
	Orders int `json:"orders"`
}

// rebuildResult is one analytics reading a topic from the beginning until its stats answer.
type rebuildResult struct {
	name     string
	orders   int
	events   float64 // events read (processed + duplicate + malformed), from its /metrics
	ready    time.Duration
	answered time.Duration // from its start to /v1/stats answering 200 with every order
	rss      int
}

func (r rebuildResult) perSecond() float64 {
	if r.answered <= 0 {
		return 0
	}
	return r.events / r.answered.Seconds()
}

// runAnalyticsDrain starts a second analytics, in a consumer group of its own, on the system's
// topic: it reads everything this run placed from the beginning, as after a restart.
func runAnalyticsDrain(b *testing.B, sys *system) rebuildResult {
	b.Helper()
	sys.waitConsumersIdle() // the stack's analytics has counted every order of the run
	want := ordersInStats(b, sys.statsAddr)
	r := timeAnalytics(b, sys, "analytics, this run's topic", sys.topic, want)
	printRebuilds([]rebuildResult{r})
	return r
}

// ordersInStats waits for an analytics to answer and returns its order count.
func ordersInStats(b *testing.B, addr string) int {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, body, err := stack.Get(addr, "/v1/stats")
		if err == nil && status == http.StatusOK {
			var s statsAnswer
			if err := json.Unmarshal(body, &s); err != nil {
				b.Fatalf("GET /v1/stats: %v: %s", err, body)
			}
			return s.Orders
		}
		if time.Now().After(deadline) {
			b.Fatalf("analytics at %s does not answer its stats: %d %s %v", addr, status, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timeAnalytics starts an analytics on topic in a new group and times it until its stats count
// want orders.
func timeAnalytics(b *testing.B, sys *system, name, topic string, want int) rebuildResult {
	b.Helper()
	env := maps.Clone(sys.stack.Env["analytics"])
	env["KAFKA_TOPIC"] = topic
	env["ANALYTICS_GROUP_ID"] = "bench.rebuild." + stack.UniqueSuffix()
	env["HTTP_ADDR"], env["ADMIN_ADDR"] = stack.FreeAddr(b), stack.FreeAddr(b)
	progress("%s: rebuilding %d orders from the log", name, want)
	start := time.Now()
	p := stack.Start(b, "analytics", env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := rebuildResult{name: name}
	for ctx.Err() == nil {
		if r.ready == 0 {
			if status, _, err := stack.Get(env["ADMIN_ADDR"], "/readyz"); err == nil && status == http.StatusOK {
				r.ready = time.Since(start)
			}
		}
		status, body, err := stack.Get(env["HTTP_ADDR"], "/v1/stats")
		if err == nil && status == http.StatusOK {
			var s statsAnswer
			if err := json.Unmarshal(body, &s); err != nil {
				b.Fatalf("GET /v1/stats: %v: %s", err, body)
			}
			if s.Orders >= want {
				r.answered, r.orders = time.Since(start), s.Orders
				break
			}
		}
		if !p.Running() {
			b.Fatalf("analytics exited while rebuilding:\n%s", p.Tail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.answered == 0 {
		b.Fatalf("%s: the stats did not count %d orders within 10 minutes", name, want)
	}
	if fams, err := metrics(env["ADMIN_ADDR"]); err == nil {
		r.events = counter(fams, "analytics_events_processed_total") + counter(fams, "analytics_events_duplicate_total") +
			counter(fams, "analytics_events_malformed_total")
	}
	r.rss, _ = rss(p.Pid())
	p.Terminate(b, 30*time.Second)
	return r
}

func printRebuilds(rs []rebuildResult) {
	fmt.Printf("\n== analytics rebuilding its stats from the beginning of the log (timed from its start)\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "log\torders\tevents\tready after\tstats after\tevents/s\tRSS after\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%.0f\t%s\t\n", r.name, r.orders, r.events, orDash(r.ready),
			r.answered.Round(time.Millisecond), r.perSecond(), mib(r.rss))
	}
	_ = w.Flush()
}

// orDash formats a duration that may not have been observed.
func orDash(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return d.Round(time.Millisecond).String()
}
