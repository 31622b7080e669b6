package docs_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// A page whose exercises stop and start brokers says so with `<!-- doc-test: brokers ha -->`:
// TestCoursePages then gives it brokers of its own — the replicated profile of `make brokers
// PROFILE=ha` (scripts/brokers, BROKERS_PROFILE=ha): three Kafka nodes and a three-node RabbitMQ
// cluster, and PostgreSQL — on ports of their own and in a state directory of their own, stopped
// when the page is done. The shared brokers and the other tests on them are not touched; the
// page's schema for order-api stays on the shared PostgreSQL, as every page's does. The page's commands run in a shell whose
// environment is what `eval "$(BROKERS_PROFILE=ha scripts/brokers env)"` gives a reader, with
// these ports, so `scripts/brokers kafka-topics …` and `scripts/brokers down kafka-2` act on the
// page's brokers; what they print is read with the default ports put back.

// ownPorts are node 1's ports of the page's brokers, and the default each stands for; node N
// listens on RabbitMQ's + N-1 and on Kafka's + 2(N-1) (scripts/brokers).
var ownPorts = []struct {
	name       string
	port, dflt int
}{
	{"RABBITMQ_PORT", 5772, 5672},
	{"RABBITMQ_EPMD_PORT", 4377, 4369},
	{"KAFKA_PORT", 9592, 9092},
	{"KAFKA_CONTROLLER_PORT", 9593, 9093},
	{"POSTGRES_PORT", 5472, 5432},
}

// ownBrokers are the brokers of one page.
type ownBrokers struct {
	env   []string       // for the page's shell: the brokers' settings and addresses
	ports map[int]int    // a port of theirs → the default port the page shows
	addr  *regexp.Regexp // a local address in output
}

// startOwnBrokers starts the replicated brokers for a page and stops them when it ends.
func startOwnBrokers(t *testing.T, rootDir string) *ownBrokers {
	t.Helper()
	state := stack.BrokersStateDir(t, "backend-prep-docs-ha-")
	settings := map[string]string{"BROKERS_PROFILE": "ha"}
	b := &ownBrokers{ports: map[int]int{}, addr: regexp.MustCompile(`\b(127\.0\.0\.1|localhost):(\d+)\b`)}
	for _, p := range ownPorts {
		settings[p.name] = strconv.Itoa(p.port)
		nodes := 3
		step := 1
		switch {
		case strings.HasPrefix(p.name, "KAFKA_"):
			step = 2
		case p.name == "RABBITMQ_EPMD_PORT", p.name == "POSTGRES_PORT":
			nodes = 1
		}
		for n := range nodes {
			b.ports[p.port+step*n] = p.dflt + step*n
			if p.name == "RABBITMQ_PORT" { // the Erlang distribution ports: AMQP + 20000
				b.ports[p.port+20000+n] = p.dflt + 20000 + n
			}
		}
	}
	for port := range b.ports {
		require.False(t, listening(t, strconv.Itoa(port)), "127.0.0.1:%d is in use: the page's own brokers listen there", port)
	}
	env := stack.PrivateBrokersEnv(state, settings)
	brokers := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(rootDir, "scripts", "brokers"), args...)
		cmd.Dir, cmd.Env = rootDir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "scripts/brokers %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	began := time.Now()
	t.Cleanup(func() { brokers("down") })
	brokers("up")
	t.Logf("the page's own brokers (BROKERS_PROFILE=ha: three Kafka and three RabbitMQ nodes, PostgreSQL) started in %s", time.Since(began).Round(time.Second))

	var bootstrap, amqp []string
	for n := range 3 {
		bootstrap = append(bootstrap, fmt.Sprintf("127.0.0.1:%d", 9592+2*n))
		amqp = append(amqp, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", 5772+n))
	}
	b.env = []string{
		"BROKERS_STATE_DIR=" + state,
		"RABBITMQCTL=" + filepath.Join(rootDir, "scripts", "brokers") + " rabbitmqctl",
		"KAFKA_BOOTSTRAP_SERVERS=" + strings.Join(bootstrap, ","),
		// Every node, as `make run PROFILE=ha` gives order-api and the notifier (their own
		// users there; the administrator here, which every test of the page may use).
		"RABBITMQ_URL=" + strings.Join(amqp, ","),
		"KAFKA_TOPIC_REPLICATION=3",
	}
	for k, v := range settings {
		b.env = append(b.env, k+"="+v)
	}
	return b
}

// globalize puts the default ports back into output.
func (b *ownBrokers) globalize(out string) string {
	return b.addr.ReplaceAllStringFunc(out, func(m string) string {
		sub := b.addr.FindStringSubmatch(m)
		port, _ := strconv.Atoi(sub[2])
		if dflt, ok := b.ports[port]; ok {
			return sub[1] + ":" + strconv.Itoa(dflt)
		}
		return m
	})
}
