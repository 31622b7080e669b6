package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Step 8, replication: the brokers of `make brokers PROFILE=ha` (or `make up PROFILE=ha`) keep
// every partition of orders.v1 on three Kafka brokers, all in sync, and refuse a write that
// fewer than two of them hold (min.insync.replicas=2); the notifier's quorum queue has three
// members, all online; and an order still goes through the whole system.

// replicas is how many copies the replicated profile keeps: of each partition, of each quorum queue.
const replicas = 3

// minInsync is the min.insync.replicas the replicated profile gives orders.v1.
const minInsync = 2

const hintReplicated = "are the replicated brokers running? `make brokers PROFILE=ha` (after `make brokers-stop`: " +
	"both profiles use the same ports), then `eval \"$(BROKERS_PROFILE=ha scripts/brokers env)\"` in this terminal"

// replicateRun is what the checks of step 8 share: one admin client.
type replicateRun struct {
	cfg   config
	admin *kafka.AdminClient // nil until a broker answered
}

func replicateChecks(cfg config) ([]check, func()) {
	r := &replicateRun{cfg: cfg}
	return []check{
		{
			name: fmt.Sprintf("Kafka at %s is a cluster of at least %d brokers", cfg.kafka, replicas),
			run:  r.brokers,
			hint: hintReplicated,
		},
		{
			name: fmt.Sprintf("every partition of %s has %d replicas, all in sync", ordersTopic, replicas),
			run:  r.partitionsInSync,
			hint: "a broker is down or still catching up: `scripts/brokers status` shows which; `scripts/brokers up kafka-N` starts it again, " +
				"and its replicas rejoin the ISR once they have caught up. A topic created by a single broker keeps 1 replica: " +
				"start order-api with KAFKA_TOPIC_REPLICATION=3 on fresh brokers (`make brokers-reset PROFILE=ha`)",
		},
		{
			name: fmt.Sprintf("%s takes a write only when %d replicas have it (min.insync.replicas)", ordersTopic, minInsync),
			run:  r.minInsync,
			hint: "min.insync.replicas comes from the brokers (scripts/brokers sets 2 for the ha profile) unless the topic overrides it: " +
				"`scripts/brokers kafka-topics --describe --topic " + ordersTopic + "` lists the topic's configs",
		},
		{
			name: fmt.Sprintf("quorum queue %s has %d members, all online", notifierQueue, replicas),
			run:  r.quorumMembers,
			hint: "a RabbitMQ node is down (`scripts/brokers up rabbitmq-N` starts it), or the queue was declared before the cluster " +
				"had three nodes: delete it (`scripts/brokers rabbitmqctl delete_queue " + notifierQueue + "`) and restart the notifier, which declares it again",
		},
		{
			name: "an order goes through: accepted, counted by analytics, notified",
			run:  r.orderThrough,
			hint: hintOrderAPI + "; " + hintAnalytics + "; " + hintNotifier,
		},
	}, r.close
}

// brokers creates the admin client the Kafka checks share and counts the brokers the cluster
// describes: the bootstrap address is only the door, the metadata names them all.
func (r *replicateRun) brokers(ctx context.Context) (string, error) {
	admin, cluster, err := describeCluster(ctx, r.cfg.kafka)
	if err != nil {
		return "", err
	}
	r.admin = admin
	ids := make([]int, len(cluster.Nodes))
	for i, n := range cluster.Nodes {
		ids[i] = n.ID
	}
	slices.Sort(ids)
	if len(ids) < replicas {
		return "", withHint(fmt.Errorf("%d broker(s) answer (ids %v): a partition cannot have %d replicas on different brokers", len(ids), ids, replicas),
			"a broker is stopped: `scripts/brokers status` shows which, `scripts/brokers up kafka-N` starts it again; "+
				"with a single broker, "+hintReplicated)
	}
	return fmt.Sprintf("brokers %v", ids), nil
}

// partitionsInSync describes the topic: each partition's replicas, and which of them are in sync.
func (r *replicateRun) partitionsInSync(ctx context.Context) (string, error) {
	if r.admin == nil {
		return "", blocked("a Kafka cluster that answers")
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := r.admin.DescribeTopics(cctx, kafka.NewTopicCollectionOfTopicNames([]string{ordersTopic}),
		kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return "", fmt.Errorf("describe topic %s: %w", ordersTopic, err)
	}
	topic := res.TopicDescriptions[0]
	if topic.Error.Code() != kafka.ErrNoError {
		return "", withHint(fmt.Errorf("describe topic %s: %w", ordersTopic, topic.Error),
			"order-api creates it when it starts: "+hintOrderAPI)
	}
	var parts []string
	var problems []string
	for _, p := range topic.Partitions {
		isr := nodeIDs(p.Isr)
		parts = append(parts, fmt.Sprintf("p%d isr %s", p.Partition, joinInts(isr)))
		switch {
		case len(p.Replicas) < replicas:
			problems = append(problems, fmt.Sprintf("partition %d has %d replica(s) %s", p.Partition, len(p.Replicas), joinInts(nodeIDs(p.Replicas))))
		case p.Leader == nil:
			problems = append(problems, fmt.Sprintf("partition %d has no leader", p.Partition))
		case len(isr) < len(p.Replicas):
			problems = append(problems, fmt.Sprintf("partition %d: replicas %s, in sync only %s",
				p.Partition, joinInts(nodeIDs(p.Replicas)), joinInts(isr)))
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return strings.Join(parts, ", "), nil
}

// minInsync reads the topic's effective min.insync.replicas, whether the topic or the brokers set it.
func (r *replicateRun) minInsync(ctx context.Context) (string, error) {
	if r.admin == nil {
		return "", blocked("a Kafka cluster that answers")
	}
	v, err := topicConfig(ctx, r.admin, "min.insync.replicas")
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return "", fmt.Errorf("min.insync.replicas is %q, not a number", v)
	}
	switch {
	case n < minInsync:
		return "", fmt.Errorf("min.insync.replicas is %d: with acks=all, a write that %d broker(s) alone hold is confirmed, "+
			"and lost if they are", n, n)
	case n >= replicas:
		return "", fmt.Errorf("min.insync.replicas is %d of %d replicas: one broker down stops every write", n, replicas)
	}
	return "min.insync.replicas=" + v, nil
}

// queueMembers is one queue of `rabbitmqctl list_queues name leader members online --formatter json`.
type queueMembers struct {
	Name    string   `json:"name"`
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
}

// quorumMembers asks rabbitmqctl for the queue's Raft members: AMQP does not tell them.
func (r *replicateRun) quorumMembers(ctx context.Context) (string, error) {
	ctl, env, err := rabbitmqctlCommand(r.cfg.rabbitmqctl)
	if err != nil {
		return "", err
	}
	args := append(ctl[1:], "list_queues", "name", "leader", "members", "online", "--formatter", "json")
	out, err := commandEnv(ctx, env, ctl[0], args...)
	if err != nil {
		return "", withHint(err, "rabbitmqctl cannot reach the cluster: "+hintReplicated)
	}
	var queues []queueMembers
	if err := json.Unmarshal(out, &queues); err != nil {
		return "", fmt.Errorf("rabbitmqctl list_queues: %w: %s", err, short(out))
	}
	i := slices.IndexFunc(queues, func(q queueMembers) bool { return q.Name == notifierQueue })
	if i < 0 {
		return "", withHint(fmt.Errorf("no queue %s", notifierQueue), hintNotifier)
	}
	q := queues[i]
	slices.Sort(q.Members)
	slices.Sort(q.Online)
	switch {
	case len(q.Members) < replicas:
		return "", fmt.Errorf("%d member(s) %v: it is not replicated on %d nodes", len(q.Members), q.Members, replicas)
	case len(q.Online) < len(q.Members):
		return "", fmt.Errorf("members %v, online only %v", q.Members, q.Online)
	}
	return fmt.Sprintf("leader %s, members %s", q.Leader, strings.Join(q.Members, " ")), nil
}

// orderThrough places an order and waits until analytics counts it and the notifier notifies
// its customer: replication is worth nothing if the system does not work on it.
func (r *replicateRun) orderThrough(ctx context.Context) (string, error) {
	before, err := getStats(ctx, r.cfg.stats)
	if err != nil {
		return "", withHint(fmt.Errorf("read the stats before placing an order: %w", err), hintAnalytics)
	}
	began := time.Now()
	o, err := placeOrder(ctx, r.cfg.orderAPI, newIdempotencyKey())
	if err != nil {
		return "", withHint(fmt.Errorf("place an order: %w", err), hintOrderAPI+
			"; a 503 means a broker did not confirm the order: are two Kafka brokers in sync, and is a majority of RabbitMQ up?")
	}
	after, err := waitForCount(ctx, r.cfg.stats, before.Orders)
	if err != nil {
		return "", withHint(fmt.Errorf("order %s was not counted: %w", o.OrderID, err),
			hintAnalytics+"; with several analytics replicas, scale analytics to 1 for this check")
	}
	if _, err := waitForNotification(ctx, r.cfg.notifier, o.OrderID); err != nil {
		return "", withHint(err, hintNotifier)
	}
	return fmt.Sprintf("order %s: orders %d -> %d, notified %s after it was posted",
		o.OrderID, before.Orders, after.Orders, time.Since(began).Round(time.Millisecond)), nil
}

func (r *replicateRun) close() {
	if r.admin != nil {
		r.admin.Close()
	}
}

// defaultRabbitMQCtl is the command step 8 reads the queue's members with when RABBITMQCTL is
// not set: scripts/brokers' rabbitmqctl, for the replicated profile.
const defaultRabbitMQCtl = "scripts/brokers rabbitmqctl"

// rabbitmqctlCommand splits the rabbitmqctl command (RABBITMQCTL, as `scripts/brokers env`
// exports it) into its words, and returns the environment to run it with. A relative
// scripts/brokers is found from the repository's root; run without BROKERS_PROFILE, it is
// asked about the replicated brokers, which is what `make brokers PROFILE=ha` started.
func rabbitmqctlCommand(ctl string) ([]string, []string, error) {
	words := strings.Fields(ctl)
	if len(words) == 0 {
		return nil, nil, errors.New("no rabbitmqctl command: set --rabbitmqctl or RABBITMQCTL")
	}
	env := os.Environ()
	if strings.HasPrefix(words[0], "scripts/") {
		root, err := repoRoot()
		if err != nil {
			return nil, nil, err
		}
		words[0] = filepath.Join(root, words[0])
	}
	if filepath.Base(words[0]) == "brokers" && os.Getenv("BROKERS_PROFILE") == "" {
		env = append(env, "BROKERS_PROFILE=ha")
	}
	return words, env, nil
}

// commandEnv is command with an environment of the caller's.
func commandEnv(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	return commandWithinEnv(ctx, commandTimeout, env, name, args...)
}

func nodeIDs(nodes []kafka.Node) []int {
	ids := make([]int, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	slices.Sort(ids)
	return ids
}

func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}
