// Package bench is `make bench`: the whole system measured on one box, in one run, against its
// own ceilings. BenchmarkSystem prints tables; it asserts nothing about speed (a slow run is a
// figure, not a failure) but fails when a measurement could not be made honestly: a process
// that would not start, a load that got no answer, a drain that never finished.
//
//	make bench                                   everything, about 5 minutes on 2 cores
//	make bench BENCH_ARGS=-quick                 every section, small and short (what CI runs)
//	make bench BENCH_ARGS='-linger 0s,5ms,20ms'  order-api with each Kafka linger, side by side
//	make bench BENCH_ARGS='-channels 1,8,32'     order-api with each number of confirm channels
//	make bench BENCH_ARGS='-log-levels info,warn' order-api with and without its access log
//	make bench BENCH_ARGS='-gogc 50,100,200'     order-api with each GOGC: memory against CPU
//	make bench BENCH_ARGS='-prefetch 1,16,64'    the notifier draining with each prefetch
//	make bench BENCH_ARGS='-queue quorum,classic' the notifier's queue of each type, and its ceiling
//
// docs/performance.md explains each table and keeps the figures of a reference machine.
package bench

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// settings are the flags of one run (go test ... -args FLAGS; make bench BENCH_ARGS=FLAGS).
type settings struct {
	quick    bool
	round    time.Duration
	rounds   int
	warmUp   time.Duration
	clients  []int
	backlog  int
	rebuild  int
	sections map[string]bool
	seed     bool
	cluster  bool
	logLevel string

	linger    []time.Duration
	channels  []int
	logLevels []string
	gogc      []int
	prefetch  []int
	queues    []string
}

var (
	flagQuick    = flag.Bool("quick", false, "every section, small and short: 2s rounds, a backlog of 1,000, a rebuild of 20,000, unless those flags are given too (CI)")
	flagRound    = flag.Duration("round", 10*time.Second, "how long one configuration is loaded per round")
	flagRounds   = flag.Int("rounds", 2, "rounds per configuration; configurations alternate within a round (A B A B)")
	flagWarmUp   = flag.Duration("warmup", 2*time.Second, "load before the first measured round of each configuration, not counted")
	flagClients  = flag.String("clients", "1,64", "concurrent HTTP clients, each sending its next order when the last was answered")
	flagBacklog  = flag.Int("backlog", 10000, "orders queued for the consumers to drain")
	flagRebuild  = flag.Int("rebuild", 1000000, "orders in the log analytics rebuilds its stats from")
	flagSections = flag.String("sections", "ceilings,fronts,consumers,rebuild", "which sections to run")
	flagSeed     = flag.Bool("seed", true, "include the seed-style baseline (a new broker connection per order, no confirm)")
	flagLogLevel = flag.String("log-level", "info", "LOG_LEVEL of the services the bench starts: info (as shipped, an access log line per request) or warn, to see what the access log costs")
	flagTarget   = flag.String("target", "local", "local: a system of the bench's own on this machine; cluster: the system of make up, through its port-forwards (ceilings and fronts only)")
	flagAPI      = flag.String("api", "127.0.0.1:8080", "with -target cluster: order-api's address; the default, Tilt's port-forward, reaches one pod, the Gateway's host port (127.0.0.1:8000) every replica")
	flagLevels   = flag.String("log-levels", "", "compare order-api with each LOG_LEVEL, e.g. info,warn (warn: no access log line per request)")
	flagLinger   = flag.String("linger", "", "compare order-api with each Kafka linger (KAFKA_LINGER), e.g. 0s,5ms,20ms")
	flagChannels = flag.String("channels", "", "compare order-api with each number of RabbitMQ confirm channels (RABBITMQ_PUBLISHER_CHANNELS), e.g. 1,8,32")
	flagGOGC     = flag.String("gogc", "", "compare order-api with each GOGC (the Go heap may grow to 1+GOGC/100 times what is live before a collection), e.g. 50,100,200")
	flagPrefetch = flag.String("prefetch", "", "compare the notifier's drain with each prefetch (RABBITMQ_PREFETCH), e.g. 1,16,64")
	flagQueues   = flag.String("queue", "", "compare the notifier's queue types (NOTIFIER_QUEUE_TYPE), e.g. quorum,classic")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The services log a line per order: keep only the tail that failure reports print, so
	// that the load generator does not hold every line of the run.
	stack.KeepLines(2000)
	code := m.Run()
	stack.RemoveBinaries()
	os.Exit(code)
}

// parseSettings reads the flags; a bad value ends the run before anything starts.
func parseSettings(tb testing.TB) settings {
	tb.Helper()
	s := settings{
		quick: *flagQuick, round: *flagRound, rounds: *flagRounds, warmUp: *flagWarmUp,
		backlog: *flagBacklog, rebuild: *flagRebuild, seed: *flagSeed, sections: map[string]bool{}, logLevel: *flagLogLevel,
	}
	var err error
	fail := func(name string, err error) {
		tb.Fatalf("bench: -%s: %v", name, err)
	}
	if s.clients, err = ints(*flagClients); err != nil || len(s.clients) == 0 {
		fail("clients", fmt.Errorf("want a list like 1,64, got %q", *flagClients))
	}
	if s.channels, err = ints(*flagChannels); err != nil {
		fail("channels", err)
	}
	if s.gogc, err = ints(*flagGOGC); err != nil {
		fail("gogc", err)
	}
	if s.prefetch, err = ints(*flagPrefetch); err != nil {
		fail("prefetch", err)
	}
	if s.linger, err = durations(*flagLinger); err != nil {
		fail("linger", err)
	}
	for _, l := range list(*flagLevels) {
		if l != "debug" && l != "info" && l != "warn" && l != "error" {
			fail("log-levels", fmt.Errorf("%q is not debug, info, warn or error", l))
		}
		s.logLevels = append(s.logLevels, l)
	}
	for _, q := range list(*flagQueues) {
		if q != "quorum" && q != "classic" {
			fail("queue", fmt.Errorf("%q is neither quorum nor classic", q))
		}
		s.queues = append(s.queues, q)
	}
	known := map[string]bool{"ceilings": true, "fronts": true, "consumers": true, "rebuild": true}
	for _, name := range list(*flagSections) {
		if !known[name] {
			fail("sections", fmt.Errorf("unknown section %q (ceilings, fronts, consumers, rebuild)", name))
		}
		s.sections[name] = true
	}
	switch s.logLevel {
	case "debug", "info", "warn", "error":
	default:
		fail("log-level", fmt.Errorf("%q is not debug, info, warn or error", s.logLevel))
	}
	switch *flagTarget {
	case "local":
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "api" {
				tb.Fatalf("bench: -api names the cluster's order-api: -target cluster only")
			}
		})
	case "cluster":
		// The consumers and the rebuild stop and start services; the cluster's are Tilt's.
		s.cluster, s.seed = true, false
		delete(s.sections, "consumers")
		delete(s.sections, "rebuild")
		if len(s.linger)+len(s.channels)+len(s.logLevels)+len(s.gogc)+len(s.prefetch)+len(s.queues) > 0 {
			tb.Fatalf("bench: -linger, -channels, -log-levels, -gogc, -prefetch and -queue start services of their own: -target local only")
		}
	default:
		fail("target", fmt.Errorf("%q is neither local nor cluster", *flagTarget))
	}
	if s.rounds < 1 || s.round <= 0 || s.backlog < 1 || s.rebuild < 1 {
		tb.Fatalf("bench: -rounds, -round, -backlog and -rebuild must be positive")
	}
	if s.quick { // what -quick sets, unless the flag was given too
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, apply := range map[string]func(){
			"round":   func() { s.round = 2 * time.Second },
			"warmup":  func() { s.warmUp = time.Second },
			"backlog": func() { s.backlog = 1000 },
			"rebuild": func() { s.rebuild = 20000 },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	return s
}

func list(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(v string) ([]int, error) {
	var out []int
	for _, f := range list(v) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func durations(v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range list(v) {
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%q is not a duration like 5ms", f)
		}
		out = append(out, d)
	}
	return out, nil
}
