package bench

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// BenchmarkSystem is `make bench`. It runs once (-benchtime 1x): each section loads the system
// for a bounded time and prints its table as soon as it is done; the goals come last.
//
//	go test -run '^$' -bench '^BenchmarkSystem$' -benchtime 1x -timeout 60m ./tests/bench -args [flags]
func BenchmarkSystem(b *testing.B) {
	cfg := parseSettings(b)
	began := time.Now()
	sys := startSystem(b, cfg)
	var rep report
	if cfg.sections["ceilings"] {
		rep.ceilings = runCeilings(b, cfg, sys)
	}
	if cfg.sections["fronts"] {
		rep.fronts = runFronts(b, cfg, sys)
	}
	if cfg.sections["consumers"] {
		rep.drains = runNotifierDrains(b, cfg, sys)
		rep.analytics = runAnalyticsDrain(b, sys)
	}
	if cfg.sections["rebuild"] {
		rep.rebuild = runRebuild(b, cfg, sys)
	}
	rep.printGoals(cfg)
	fmt.Printf("\nmake bench took %s on %d CPUs\n", time.Since(began).Round(time.Second), numCPU())
	for _, f := range rep.fronts {
		if f.clients == maxClients(cfg) {
			b.ReportMetric(f.perSecond(), metricName(f.front)+"_orders/s")
		}
	}
}

// system is one copy of the order system on the shared brokers, with names of its own, and
// the fronts the load is sent to: order-api and the programs it is compared with, all on the
// same validator, topic and exchange, so that an order costs the brokers and consumers the
// same whoever accepted it.
type system struct {
	stack       *stack.Stack // nil against the cluster
	cluster     bool
	apiAddr     string            // order-api's HTTP
	statsAddr   string            // analytics' HTTP
	grpcAddr    string            // the validator
	admin       map[string]string // each service's admin address (/metrics)
	kafka       string
	amqp        string
	topic       string
	exchange    string
	queue       string
	suffix      string
	brokers     []watched
	fronts      []*front
	binDir      string
	orderAPIEnv map[string]string
	drainQueues []string // the queues of the notifiers the consumers section starts
}

// front is a program that accepts POST /v1/orders.
type front struct {
	name string
	addr string
	proc *stack.Proc
}

func startSystem(b *testing.B, cfg settings) *system {
	b.Helper()
	if cfg.cluster {
		return clusterSystem(b)
	}
	sys := &system{
		kafka:  brokertest.KafkaBootstrap(b),
		amqp:   brokertest.RabbitMQURL(b),
		suffix: stack.UniqueSuffix(),
		binDir: b.TempDir(),
	}
	sys.brokers = brokerPIDs()
	sys.topic, sys.exchange, sys.queue = "bench.orders."+sys.suffix, "bench.orders."+sys.suffix, "bench.notifier."+sys.suffix
	s := stack.New(b, sys.kafka, sys.amqp, brokertest.PostgresURL(b))
	maps.Copy(s.Env["order-api"], map[string]string{"KAFKA_TOPIC": sys.topic, "RABBITMQ_EXCHANGE": sys.exchange})
	maps.Copy(s.Env["notifier"], map[string]string{
		"RABBITMQ_EXCHANGE": sys.exchange, "NOTIFIER_QUEUE": sys.queue,
		"NOTIFIER_JOURNAL_PATH": filepath.Join(b.TempDir(), "notifications.jsonl"),
	})
	maps.Copy(s.Env["analytics"], map[string]string{"KAFKA_TOPIC": sys.topic, "ANALYTICS_GROUP_ID": "bench.analytics." + sys.suffix})
	for _, env := range s.Env {
		env["LOG_FORMAT"] = "json" // as in the cluster
		env["LOG_LEVEL"] = cfg.logLevel
	}
	progress("building and starting validator, notifier, analytics and order-api")
	s.StartAll()
	sys.stack = s
	sys.apiAddr, sys.statsAddr, sys.grpcAddr, sys.admin = s.APIAddr, s.StatsAddr, s.GRPCAddr, s.Admin
	sys.orderAPIEnv = maps.Clone(s.Env["order-api"])
	b.Cleanup(func() { deleteBenchTopology(sys) })

	if !cfg.sections["fronts"] {
		return sys // the consumers' backlog goes through the stack's order-api
	}
	for _, v := range orderAPIVariants(cfg) {
		if v.env == nil {
			sys.fronts = append(sys.fronts, &front{name: "order-api", addr: s.APIAddr, proc: s.Procs["order-api"]})
			continue
		}
		sys.fronts = append(sys.fronts, sys.startOrderAPI(b, v.name, v.env))
	}
	// The yardsticks: the same I/O without the framework, and the tutorial's way.
	programs := []string{"reference"}
	if cfg.seed && len(cfg.linger)+len(cfg.channels)+len(cfg.logLevels)+len(cfg.gogc) == 0 {
		programs = append(programs, "seedstyle")
	}
	for _, p := range programs {
		sys.fronts = append([]*front{sys.startProgram(b, p)}, sys.fronts...)
	}
	return sys
}

type variant struct {
	name string
	env  map[string]string // nil: the stack's own order-api
}

// orderAPIVariants are the order-apis a run compares: the one of the stack, or one per value of
// -linger, -channels, -log-levels and -gogc.
func orderAPIVariants(cfg settings) []variant {
	var out []variant
	for _, d := range cfg.linger {
		out = append(out, variant{"order-api linger=" + d.String(), map[string]string{"KAFKA_LINGER": d.String()}})
	}
	for _, n := range cfg.channels {
		out = append(out, variant{"order-api channels=" + strconv.Itoa(n), map[string]string{"RABBITMQ_PUBLISHER_CHANNELS": strconv.Itoa(n)}})
	}
	for _, l := range cfg.logLevels {
		out = append(out, variant{"order-api log=" + l, map[string]string{"LOG_LEVEL": l}})
	}
	for _, n := range cfg.gogc {
		out = append(out, variant{"order-api GOGC=" + strconv.Itoa(n), map[string]string{"GOGC": strconv.Itoa(n)}})
	}
	if len(out) == 0 {
		out = append(out, variant{name: "order-api"})
	}
	return out
}

// startOrderAPI starts one more order-api on the system's validator, topic and exchange.
func (sys *system) startOrderAPI(b *testing.B, name string, extra map[string]string) *front {
	b.Helper()
	env := maps.Clone(sys.orderAPIEnv)
	env["HTTP_ADDR"], env["ADMIN_ADDR"] = stack.FreeAddr(b), stack.FreeAddr(b)
	maps.Copy(env, extra)
	progress("starting %s", name)
	p := stack.Start(b, "order-api", env)
	stack.WaitReady(b, p, env["ADMIN_ADDR"], 90*time.Second)
	return &front{name: name, addr: env["HTTP_ADDR"], proc: p}
}

// startProgram builds and starts one of the programs of labs/ that do order-api's job.
func (sys *system) startProgram(b *testing.B, name string) *front {
	b.Helper()
	path := filepath.Join(sys.binDir, name)
	progress("building labs/%s", name)
	if err := stack.Build(stack.RepoRoot(), path, "./labs/"+name); err != nil {
		b.Fatal(err)
	}
	addr := stack.FreeAddr(b)
	p := stack.StartProcess(b, name, path, nil, map[string]string{
		"HTTP_ADDR":               addr,
		"VALIDATOR_ADDR":          sys.grpcAddr,
		"KAFKA_BOOTSTRAP_SERVERS": sys.kafka,
		"KAFKA_TOPIC":             sys.topic,
		"RABBITMQ_URL":            sys.amqp,
		"RABBITMQ_EXCHANGE":       sys.exchange,
	})
	stack.WaitReady(b, p, addr, 60*time.Second)
	label := map[string]string{"reference": "reference", "seedstyle": "seed-style"}[name]
	return &front{name: label, addr: addr, proc: p}
}

// watch is what a load on f makes work: f itself, the validator, the consumers, the brokers and
// the load generator (this process). Against the cluster, the services are read from their
// /metrics and the brokers not at all.
func (sys *system) watch(f *front) []watched {
	if sys.cluster {
		return []watched{
			{name: "front", admin: sys.admin["order-api"]},
			{name: "validator", admin: sys.admin["validator"]},
			{name: "notifier", admin: sys.admin["notifier"]},
			{name: "analytics", admin: sys.admin["analytics"]},
			{name: "load", pid: os.Getpid()},
		}
	}
	ps := []watched{
		{name: "front", pid: f.proc.Pid()},
		{name: "validator", pid: sys.stack.Procs["validator"].Pid()},
		{name: "notifier", pid: sys.stack.Procs["notifier"].Pid()},
		{name: "analytics", pid: sys.stack.Procs["analytics"].Pid()},
		{name: "load", pid: os.Getpid()},
	}
	return append(ps, sys.brokers...)
}

// clusterSystem is the system of `make up`, reached through Tilt's port-forwards (the same local
// ports as make run's). The bench starts nothing there: it loads order-api as it runs.
func clusterSystem(b *testing.B) *system {
	b.Helper()
	amqpURL := os.Getenv("RABBITMQ_URL")
	if amqpURL == "" {
		b.Fatal("-target cluster needs RABBITMQ_URL, an administrator's URL through the port-forward " +
			"(the Tilt button bench-cluster reads it from the Secret rabbitmq-credentials)")
	}
	kafkaAddr := os.Getenv("KAFKA_BOOTSTRAP_SERVERS")
	if kafkaAddr == "" {
		kafkaAddr = "127.0.0.1:9092"
	}
	sys := &system{
		cluster: true, kafka: kafkaAddr, amqp: amqpURL, suffix: stack.UniqueSuffix(), binDir: b.TempDir(),
		apiAddr: *flagAPI, statsAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:50051",
		admin: map[string]string{
			"order-api": "127.0.0.1:9101", "validator": "127.0.0.1:9102",
			"notifier": "127.0.0.1:9103", "analytics": "127.0.0.1:9104",
		},
	}
	for name, addr := range sys.admin {
		if status, _, err := stack.Get(addr, "/readyz"); err != nil || status != http.StatusOK {
			b.Fatalf("%s does not answer on %s (its port-forward): %d %v; is `make up` running?", name, addr, status, err)
		}
	}
	sys.fronts = []*front{{name: "order-api", addr: sys.apiAddr}}
	if err := isOrderAPI(sys.apiAddr); err != nil {
		b.Fatalf("-api %s: %v", sys.apiAddr, err)
	}
	progress("against the cluster: order-api %s, validator %s, Kafka %s; every request passes kubectl port-forward "+
		"or the Gateway, which cost CPU of their own on this machine", sys.apiAddr, sys.grpcAddr, sys.kafka)
	return sys
}

// isOrderAPI tells whether addr is order-api, directly or through a Gateway or port-forward:
// its responses, problems included, name the pod in Served-By. A proxy's own answer (a Gateway's
// 404 for a route that is not attached, its 500 for a backend that does not resolve) does not.
func isOrderAPI(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/orders/none", http.NoBody)
	if err != nil {
		return err
	}
	res, err := stack.Client.Do(req)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.Header.Get("Served-By") == "" {
		return fmt.Errorf("answered %s without a Served-By header: not order-api (is the Gateway's route attached?)", res.Status)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func maxClients(cfg settings) int {
	return slices.Max(cfg.clients)
}

// brokerPID is the pid of a broker of make brokers, 0 when it is not watched.
func (sys *system) brokerPID(name string) int {
	for _, p := range sys.brokers {
		if p.name == name {
			return p.pid
		}
	}
	return 0
}

// deleteBenchTopology deletes what the run declared on the shared brokers: the notifiers'
// queues and exchanges, the system's exchange and topic. Best effort: a broker gone by now
// has nothing to keep.
func deleteBenchTopology(sys *system) {
	conn, err := amqp.DialConfig(sys.amqp, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err == nil {
		if ch, err := conn.Channel(); err == nil {
			queues := append([]string{sys.queue}, sys.drainQueues...)
			for _, q := range queues {
				for _, name := range []string{q, q + ".retry.5s", q + ".dlq"} {
					_, _ = ch.QueueDelete(name, false, false, false)
				}
				_ = ch.ExchangeDelete(q+".retry", false, false)
				_ = ch.ExchangeDelete(q+".dlx", false, false)
			}
			if !sys.cluster {
				_ = ch.ExchangeDelete(sys.exchange, false, false)
			}
			_ = ch.Close()
		}
		_ = conn.Close()
	}
	if !sys.cluster {
		sys.deleteTopics(sys.topic)
	}
}
