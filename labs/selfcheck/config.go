package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config is where the running system is, from flags with environment fallbacks. The defaults
// are the local ports of `make run`, which the cluster's port-forwards (Tilt) reproduce.
type config struct {
	orderAPI    string // base URL of order-api
	stats       string // base URL of analytics' HTTP API
	validator   string // host:port of the validator's gRPC server
	notifier    string // base URL of the notifier's admin port
	apiAdmin    string // base URL of order-api's admin port
	statsAdmin  string // base URL of analytics' admin port
	jaeger      string // base URL of Jaeger's query API; empty: traces are not checked
	rabbitmq    string // AMQP URL, credentials included
	kafka       string // Kafka bootstrap servers
	rabbitmqctl string // the rabbitmqctl command, split on spaces (step 8)
	namespace   string // Kubernetes namespace of the system
	timeout     time.Duration
}

// step is one step of the learning path and the checks that say it is done.
type step struct {
	number int
	name   string
	// checks returns the step's checks, and a function that releases what they opened
	// (connections shared by several checks), to call once they ran.
	checks func(cfg config) (checks []check, release func())
}

// steps are the learning path's steps, in order (docs/learn/0N-<name>.md).
var steps = []step{
	{1, "docker", dockerChecks},
	{2, "kubernetes", kubernetesChecks},
	{3, "rabbitmq", rabbitmqChecks},
	{4, "kafka", kafkaChecks},
	{5, "grpc", grpcChecks},
	{6, "system", systemChecks},
	{7, "observe", observeChecks},
	{8, "replicate", replicateChecks},
}

// findStep accepts a step by number ("3") or by name ("rabbitmq").
func findStep(arg string) (step, error) {
	n, numErr := strconv.Atoi(arg)
	for _, s := range steps {
		if (numErr == nil && s.number == n) || strings.EqualFold(s.name, arg) {
			return s, nil
		}
	}
	return step{}, fmt.Errorf("unknown step %q: want 1-%d or one of %s", arg, len(steps), stepNames())
}

func stepNames() string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// parseArgs reads the step and the flags, which may come before or after the step:
// `selfcheck 3 --timeout 60s` and `selfcheck --timeout 60s 3` are the same.
func parseArgs(args []string, getenv func(string) string, usage io.Writer) (step, config, error) {
	var cfg config
	fs := flag.NewFlagSet("selfcheck", flag.ContinueOnError)
	fs.SetOutput(usage)
	if err := bindFlags(fs, &cfg, getenv); err != nil {
		return step{}, cfg, err
	}
	fs.Usage = func() { printUsage(fs) }

	if err := fs.Parse(args); err != nil {
		return step{}, cfg, err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return step{}, cfg, fmt.Errorf("which step? want 1-%d or one of %s", len(steps), stepNames())
	}
	s, err := findStep(fs.Arg(0))
	if err != nil {
		return step{}, cfg, err
	}
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return step{}, cfg, err
	}
	if fs.NArg() > 0 {
		return step{}, cfg, fmt.Errorf("unexpected arguments after the step: %q", fs.Args())
	}
	return s, cfg, cfg.normalise()
}

// bindFlags defines on fs the flags that say where the system is, with their environment
// fallbacks; the lab command shares them.
func bindFlags(fs *flag.FlagSet, cfg *config, getenv func(string) string) error {
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&cfg.orderAPI, "order-api", envOr("ORDER_API_URL", "http://127.0.0.1:8080"),
		"order-api's base URL (env ORDER_API_URL)")
	fs.StringVar(&cfg.stats, "stats", envOr("STATS_URL", "http://127.0.0.1:8081"),
		"analytics' base URL, which serves /v1/stats (env STATS_URL)")
	fs.StringVar(&cfg.validator, "validator", envOr("VALIDATOR_ADDR", "127.0.0.1:50051"),
		"the validator's gRPC address, host:port (env VALIDATOR_ADDR)")
	fs.StringVar(&cfg.notifier, "notifier-admin", envOr("NOTIFIER_ADMIN_URL", "http://127.0.0.1:9103"),
		"the notifier's admin base URL, which serves /v1/notifications (env NOTIFIER_ADMIN_URL)")
	fs.StringVar(&cfg.apiAdmin, "order-api-admin", envOr("ORDER_API_ADMIN_URL", "http://127.0.0.1:9101"),
		"order-api's admin base URL, which serves /metrics and /debug/pprof/ (env ORDER_API_ADMIN_URL)")
	fs.StringVar(&cfg.statsAdmin, "analytics-admin", envOr("ANALYTICS_ADMIN_URL", "http://127.0.0.1:9104"),
		"analytics' admin base URL, which serves /metrics (env ANALYTICS_ADMIN_URL)")
	fs.StringVar(&cfg.jaeger, "jaeger", envOr("JAEGER_URL", ""),
		"Jaeger's query base URL, e.g. http://127.0.0.1:16686: step 7 then also checks the order's trace (env JAEGER_URL)")
	fs.StringVar(&cfg.rabbitmq, "rabbitmq", envOr("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		"RabbitMQ's AMQP URL, credentials included (env RABBITMQ_URL)")
	fs.StringVar(&cfg.kafka, "kafka", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
		"Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	fs.StringVar(&cfg.rabbitmqctl, "rabbitmqctl", envOr("RABBITMQCTL", defaultRabbitMQCtl),
		"the rabbitmqctl command step 8 reads a quorum queue's members with, split on spaces (env RABBITMQCTL, which `scripts/brokers env` exports)")
	fs.StringVar(&cfg.namespace, "namespace", envOr("KUBE_NAMESPACE", "backend-prep"),
		"Kubernetes namespace of the system, for step 2 (env KUBE_NAMESPACE)")
	timeout, err := time.ParseDuration(envOr("SELFCHECK_TIMEOUT", "30s"))
	if err != nil {
		return fmt.Errorf("SELFCHECK_TIMEOUT: %w", err)
	}
	fs.DurationVar(&cfg.timeout, "timeout", timeout, "bound on the whole run (env SELFCHECK_TIMEOUT)")
	return nil
}

// normalise checks the parsed flags and completes the base URLs.
func (cfg *config) normalise() error {
	if cfg.timeout <= 0 {
		return fmt.Errorf("--timeout: want a positive duration such as 30s, got %s", cfg.timeout)
	}
	cfg.orderAPI = baseURL(cfg.orderAPI)
	cfg.stats = baseURL(cfg.stats)
	cfg.notifier = baseURL(cfg.notifier)
	cfg.apiAdmin = baseURL(cfg.apiAdmin)
	cfg.statsAdmin = baseURL(cfg.statsAdmin)
	if cfg.jaeger != "" {
		cfg.jaeger = baseURL(cfg.jaeger)
	}
	return nil
}

// baseURL accepts "127.0.0.1:8080" for "http://127.0.0.1:8080" and drops a trailing slash.
func baseURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return strings.TrimRight(s, "/")
}

func printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, `Usage: go run ./labs/selfcheck <step> [flags]

Checks that a step of the learning path (docs/learn) works against the running system,
and prints PASS or FAIL for each check, with a hint for every failure.

Steps:
  1, docker       Docker answers, the Dockerfile has its targets, the service images exist
  2, kubernetes   the cluster runs every workload, ready, with its Services and ConfigMaps
  3, rabbitmq     the orders exchange and the notifier's queue, an order notified
  4, kafka        the orders.v1 topic, the analytics group and its offsets, an order counted
  5, grpc         the validator: health, catalog stream, rejection details, prices
  6, system       an order end to end: 202, idempotent replay, 422, analytics, notifier
  7, observe      RED metrics, trace context on Kafka, consumer lag, a CPU profile; with
                  --jaeger, the order's trace in Jaeger
  8, replicate    the replicated brokers (make brokers PROFILE=ha): orders.v1 on 3 brokers, all
                  in sync, min.insync.replicas=2; the notifier's quorum queue on 3 nodes; an
                  order end to end

Flags (the defaults are the local ports of `+"`make run`"+` and of Tilt's port-forwards):
`)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
Exit status: 0 when every check passed, 1 when one failed, 2 for a usage error.

A step that passes counts in your progress; go run ./labs/selfcheck lab lists the incidents to
repair, and shows the progress.
`)
}
