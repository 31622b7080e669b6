package chaos_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// haPorts are the replicated brokers' settings: scripts/brokers' ha profile, node 1's ports (node
// N adds N-1 to RabbitMQ's, 2(N-1) to Kafka's), away from every other suite's brokers.
var haPorts = map[string]string{
	"BROKERS_PROFILE":       "ha",
	"RABBITMQ_PORT":         "5742",
	"RABBITMQ_EPMD_PORT":    "4439",
	"RABBITMQ_NODENAME":     "failover@localhost",
	"KAFKA_PORT":            "9692",
	"KAFKA_CONTROLLER_PORT": "9693",
	"POSTGRES_PORT":         "5482",
}

// orderBudget is the longest order-api may take to answer an order with its default timeouts:
// VALIDATOR_TIMEOUT + PUBLISH_TIMEOUT + 2 × POSTGRES_TIMEOUT (services/order-api's config),
// and a second for a box busy with three brokers restarting.
const orderBudget = 2*time.Second + 5*time.Second + 2*2*time.Second + time.Second

// TestFailover runs the system on replicated brokers (`make brokers PROFILE=ha`: three Kafka
// brokers, a three-node RabbitMQ cluster) under a bounded load, and proves what replication
// promises:
//
//   - losing one Kafka broker (the leader of a partition of orders.v1, killed with SIGKILL) and
//     one RabbitMQ node (the leader of the notifier's quorum queue) at once loses nothing:
//     every order answered 202 is counted once by analytics and notified once, clients see 202
//     or 503 only, within order-api's deadline, and the time without any 202 is measured;
//   - with two Kafka brokers down, min.insync.replicas=2 refuses every order (503) rather than
//     accepting one that a single copy holds;
//   - after each fault, once the nodes are back, every partition and every quorum queue has all
//     three replicas in sync again.
//
// The services run unchanged: only their configuration names several nodes.
func TestFailover(t *testing.T) {
	requireFullRun(t, "the failover test")
	suiteStart := time.Now()
	b := startBrokers(t, "backend-prep-failover-", haPorts)
	require.Equal(t, "3", b.vars["KAFKA_TOPIC_REPLICATION"], "scripts/brokers env of the ha profile")
	for _, v := range []string{"KAFKA_BOOTSTRAP_SERVERS", "ORDER_API_RABBITMQ_URL", "NOTIFIER_RABBITMQ_URL"} {
		require.Len(t, strings.Split(b.vars[v], ","), 3, "%s names every node", v)
	}
	f := newFixture(t, b)
	took := f.requireReplicated(t, time.Minute)
	t.Logf("replicated brokers and services up in %s; fully replicated %s later",
		time.Since(suiteStart).Round(100*time.Millisecond), took.Round(100*time.Millisecond))

	rows := []string{fmt.Sprintf("%-34s %6s %5s %9s %12s %14s",
		"fault", "orders", "503s", "slowest", "without 202", "replicated in")}
	ok := t.Run("one_Kafka_broker_and_one_RabbitMQ_node_lost", func(t *testing.T) {
		rows = append(rows, f.loseOneOfEach(t))
	})
	if ok {
		t.Run("two_Kafka_brokers_lost_refuse_every_order", func(t *testing.T) {
			rows = append(rows, f.loseTwoKafkaBrokers(t))
		})
	}
	t.Logf("failover, %d clients, %d orders accepted in all, %s:\n%s",
		clients, f.l.accepted(), time.Since(suiteStart).Round(time.Second), strings.Join(rows, "\n"))
}

// loseOneOfEach kills the leader of orders.v1's partition 0 and stops the leader of the
// notifier's queue, under load, then brings both back.
func (f *fixture) loseOneOfEach(t *testing.T) string {
	before := f.l.accepted()
	ld := startLoad(f.s.APIAddr, f.l, f.run)
	time.Sleep(2 * time.Second)
	kafkaNode := f.partitions(t, "orders.v1")[0].Leader
	rabbitNode := f.rabbitNode(t, f.quorumQueue(t, "notifier.order-placed").Leader)
	t.Logf("killing kafka-%d (leader of orders.v1/0), stopping rabbitmq-%d (leader of notifier.order-placed)", kafkaNode, rabbitNode)

	began := time.Now()
	f.b.killKafka(t, fmt.Sprintf("kafka-%d", kafkaNode))
	f.b.run(t, time.Minute, "down", fmt.Sprintf("rabbitmq-%d", rabbitNode))
	time.Sleep(5 * time.Second)
	healed := time.Now()
	f.b.run(t, 3*time.Minute, "up", fmt.Sprintf("kafka-%d", kafkaNode), fmt.Sprintf("rabbitmq-%d", rabbitNode))
	f.waitAccepted(t, healed, time.Minute)
	time.Sleep(2 * time.Second)
	ld.stop()

	during := f.l.answeredSince(began)
	f.requireHonestAnswers(t, during)
	gap := longestWithoutAccepted(began, during)
	f.waitForStats(t, healed, 2*time.Minute)
	f.requireNotifiedOnce(t, time.Minute)
	replicated := f.requireReplicated(t, 2*time.Minute)
	sum := summarize(during)
	return fmt.Sprintf("%-34s %6d %5d %9s %12s %14s", fmt.Sprintf("kafka-%d killed, rabbitmq-%d stopped", kafkaNode, rabbitNode),
		f.l.accepted()-before, sum.unavailable, slowest(during).Round(time.Millisecond),
		gap.Round(10*time.Millisecond), replicated.Round(100*time.Millisecond))
}

// loseTwoKafkaBrokers kills two of the three Kafka brokers under load: with one copy left and
// min.insync.replicas=2, no order may be accepted until one of them is back.
func (f *fixture) loseTwoKafkaBrokers(t *testing.T) string {
	before := f.l.accepted()
	ld := startLoad(f.s.APIAddr, f.l, f.run)
	time.Sleep(2 * time.Second)
	survivor := f.partitions(t, "orders.v1")[0].Leader
	var lost []int
	for _, n := range []int{1, 2, 3} {
		if n != survivor {
			lost = append(lost, n)
		}
	}
	t.Logf("killing kafka-%d and kafka-%d; kafka-%d (leader of orders.v1/0) is left alone", lost[0], lost[1], survivor)

	for _, n := range lost {
		f.b.killKafka(t, fmt.Sprintf("kafka-%d", n))
	}
	down := time.Now()
	time.Sleep(2 * orderBudget) // long enough for every request sent meanwhile to be answered
	healed := time.Now()
	f.b.run(t, 3*time.Minute, "up", fmt.Sprintf("kafka-%d", lost[0]), fmt.Sprintf("kafka-%d", lost[1]))
	f.waitAccepted(t, healed, time.Minute)
	time.Sleep(2 * time.Second)
	ld.stop()

	all := f.l.answeredSince(down)
	f.requireHonestAnswers(t, all)
	// Sent once both were gone, before either was started again: a request in flight when the
	// second one died may have been acknowledged by then.
	var outage []answer
	for _, a := range f.l.since(down) {
		if a.at.Before(healed) {
			outage = append(outage, a)
		}
	}
	refused := summarize(outage)
	require.Zero(t, refused.accepted, "orders accepted with two of three Kafka brokers down")
	require.NotZero(t, refused.unavailable, "no order was even tried while two brokers were down")
	f.waitForStats(t, healed, 2*time.Minute)
	f.requireNotifiedOnce(t, time.Minute)
	replicated := f.requireReplicated(t, 2*time.Minute)
	return fmt.Sprintf("%-34s %6d %5d %9s %12s %14s", fmt.Sprintf("kafka-%d, kafka-%d killed", lost[0], lost[1]),
		f.l.accepted()-before, summarize(all).unavailable, slowest(all).Round(time.Millisecond),
		longestWithoutAccepted(down, all).Round(10*time.Millisecond), replicated.Round(100*time.Millisecond))
}

// requireHonestAnswers: while nodes come and go, order-api answers every order, with a 202 or
// a 503, within its deadline; it never fails one with a 500 or leaves it hanging.
func (f *fixture) requireHonestAnswers(t *testing.T, answers []answer) {
	t.Helper()
	f.l.mu.Lock()
	problems := slices.Clone(f.l.problems)
	f.l.mu.Unlock()
	require.Empty(t, problems, "what clients saw that they never should")
	for _, a := range answers {
		require.Contains(t, []int{http.StatusAccepted, http.StatusServiceUnavailable}, a.status,
			"an order sent at %s was answered %d after %s (0: no answer)", a.at.Format(time.StampMilli), a.status, a.took)
		require.LessOrEqual(t, a.took, orderBudget, "an order sent at %s was answered after %s", a.at.Format(time.StampMilli), a.took)
	}
}

// longestWithoutAccepted is the longest time from since, or from one accepted order's answer,
// to the next accepted order's answer: how long clients got no 202 at all.
func longestWithoutAccepted(since time.Time, answers []answer) time.Duration {
	var done []time.Time
	for _, a := range answers {
		if a.status == http.StatusAccepted {
			done = append(done, a.at.Add(a.took))
		}
	}
	slices.SortFunc(done, time.Time.Compare)
	var longest time.Duration
	last := since
	for _, d := range done {
		longest = max(longest, d.Sub(last))
		last = d
	}
	return longest
}

func slowest(answers []answer) time.Duration {
	var s time.Duration
	for _, a := range answers {
		s = max(s, a.took)
	}
	return s
}

// requireReplicated waits until every partition of every topic has all three replicas in sync
// and every quorum queue has three members, all online, and returns how long that took.
func (f *fixture) requireReplicated(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		last = f.notReplicated(t)
		if last == "" {
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("not fully replicated again within %s: %s", timeout, last)
	return 0
}

// notReplicated describes what is not fully replicated, or returns "".
func (f *fixture) notReplicated(t *testing.T) string {
	t.Helper()
	for _, topic := range []string{"orders.v1", "__consumer_offsets"} {
		for _, p := range f.partitions(t, topic) {
			if len(p.Replicas) != 3 || len(p.ISR) != 3 {
				return fmt.Sprintf("%s/%d: replicas %v, in sync %v", topic, p.ID, p.Replicas, p.ISR)
			}
		}
	}
	queues := f.quorumQueues(t)
	require.NotEmpty(t, queues, "the notifier declares quorum queues")
	for _, q := range queues {
		if len(q.Members) != 3 || len(q.Online) != 3 {
			return fmt.Sprintf("quorum queue %s: members %v, online %v", q.Name, q.Members, q.Online)
		}
	}
	return ""
}

// partition is one line of `kafka-topics --describe`.
type partition struct {
	ID, Leader    int
	Replicas, ISR []int
}

// partitions describes topic with Kafka's own kafka-topics tool, run by scripts/brokers.
func (f *fixture) partitions(t *testing.T, topic string) []partition {
	t.Helper()
	out := f.b.run(t, time.Minute, "kafka-topics", "--describe", "--topic", topic)
	var ps []partition
	for line := range strings.Lines(out) {
		fields := map[string]string{}
		for field := range strings.SplitSeq(strings.TrimSpace(line), "\t") {
			k, v, _ := strings.Cut(field, ":")
			fields[k] = strings.TrimSpace(v)
		}
		if _, ok := fields["Partition"]; !ok {
			continue
		}
		p := partition{Replicas: ints(fields["Replicas"]), ISR: ints(fields["Isr"])}
		var err error
		p.ID, err = strconv.Atoi(fields["Partition"])
		require.NoError(t, err, line)
		p.Leader, err = strconv.Atoi(fields["Leader"]) // -1 while no replica leads it
		require.NoError(t, err, line)
		ps = append(ps, p)
	}
	require.NotEmpty(t, ps, "kafka-topics --describe --topic %s:\n%s", topic, out)
	return ps
}

// ints reads Kafka's comma-separated broker ids.
func ints(list string) []int {
	var ids []int
	for s := range strings.SplitSeq(list, ",") {
		if id, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// quorumQueue is one quorum queue as `rabbitmqctl list_queues` shows it.
type quorumQueue struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
}

func (f *fixture) quorumQueues(t *testing.T) []quorumQueue {
	t.Helper()
	out := f.b.run(t, time.Minute, "rabbitmqctl", "--quiet", "list_queues", "--formatter", "json", "name", "type", "leader", "members", "online")
	var all, qs []quorumQueue
	require.NoError(t, json.Unmarshal([]byte(out), &all), out)
	for _, q := range all {
		if q.Type == "quorum" {
			qs = append(qs, q)
		}
	}
	return qs
}

func (f *fixture) quorumQueue(t *testing.T, name string) quorumQueue {
	t.Helper()
	for _, q := range f.quorumQueues(t) {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("no quorum queue %s", name)
	return quorumQueue{}
}

// rabbitNode returns N of a node named failover-N@localhost.
func (f *fixture) rabbitNode(t *testing.T, node string) int {
	t.Helper()
	name, _, _ := strings.Cut(node, "@")
	n, err := strconv.Atoi(strings.TrimPrefix(name, "failover-"))
	require.NoError(t, err, "node %q", node)
	return n
}
