package labs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// testLabScenarios proves every incident of `selfcheck lab` both ways against the running
// system: started, its check fails with the scenario's own message; repaired the way its
// solution page says, the check passes and the progress counts it; reset, the step's
// self-check passes again. flags point the commands at the stack s.
func testLabScenarios(t *testing.T, s *stack.Stack, kafka string, flags func(timeout string) []string) {
	lab := func(t *testing.T, args ...string) result {
		t.Helper()
		// ack-early's check builds the learner's program: the go command needs its environment.
		return runWith(t, 4*time.Minute, goEnv(), "selfcheck", append(append([]string{"lab"}, args...), flags("3m")...)...)
	}
	t.Cleanup(func() { lab(t, "reset", "--all") }) // whatever failed, the brokers are restored

	r := lab(t, "reset", "--all")
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "progress cleared: steps 0/8 · scenarios 0/12")

	t.Run("a scenario must be started before it is checked", func(t *testing.T) {
		r := lab(t, "check", "rabbitmq-unbound")
		assert.Equal(t, 2, r.code, r.output)
		assert.Contains(t, r.output, "rabbitmq-unbound is not started")
		r = lab(t, "start", "no-such-incident")
		assert.Equal(t, 2, r.code, r.output)
		assert.Contains(t, r.output, `unknown scenario "no-such-incident": want one of published-port, stop-signal, oom-limit, runs-as-root, rabbitmq-unbound, ack-early, kafka-retention, commit-early, no-deadline, retry-storm, retry-duplicates, poison-message`)
	})

	// The incidents of step 2 patch the cluster of make up, which this machine cannot run:
	// tests/platform checks their patches on the rendered manifests. Here, without a cluster,
	// start fails, says what it needs, and starts nothing.
	t.Run("a cluster incident without a cluster", func(t *testing.T) {
		for _, name := range []string{"oom-limit", "runs-as-root"} {
			r := lab(t, "start", name, "--timeout", "20s")
			assert.Equal(t, 2, r.code, r.output)
			assert.Contains(t, r.output, "lab: start "+name+": ")
			assert.Contains(t, r.output, "is the cluster of make up running")
		}
		r := lab(t, "list")
		assert.Regexp(t, `(?m)^oom-limit +2 +make up \(the cluster\) +- `, r.output)
	})

	cases := []struct {
		name     string
		step     string
		symptom  string // in lab start's output
		failing  string // the scenario's own FAIL line while the fault is in place
		repair   func(t *testing.T)
		repaired string // in the PASS line of that check once repaired
	}{
		{
			name:    "published-port",
			step:    "1",
			symptom: "every curl gets `Connection reset by peer`",
			failing: "FAIL  a request through the published port reaches the service: the container runs and publishes its port 8080 on 127.0.0.1:",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "published-port", []edit{{`flag.String("addr", "localhost:8080",`, `flag.String("addr", ":8080",`}})
			},
			repaired: "PASS  a request through the published port reaches the service (GET http://127.0.0.1:",
		},
		{
			name:    "stop-signal",
			step:    "1",
			symptom: "`docker stop` ends it at once",
			failing: "FAIL  docker stop lets the checkout in flight finish: docker stop ended the container in ",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "stop-signal", []edit{
					{"\t\"os/signal\"\n", "\t\"os/signal\"\n\t\"syscall\"\n"},
					{"signal.NotifyContext(context.Background(), os.Interrupt)", "signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)"},
				})
			},
			repaired: "PASS  docker stop lets the checkout in flight finish (the checkout in flight answered 200, and the container exited 0, ",
		},
		{
			name:    "rabbitmq-unbound",
			step:    "3",
			symptom: "POST /v1/orders answers 503 for every order",
			failing: "FAIL  an order posted to order-api is accepted (202): POST /v1/orders answered 503, want 202",
			repair: func(t *testing.T) { // the solution: restart the notifier, which declares its binding
				require.Equal(t, 0, s.Procs["notifier"].Terminate(t, 20*time.Second))
				s.Start("notifier")
			},
			repaired: "PASS  an order posted to order-api is accepted (202) (order ",
		},
		{
			name:    "ack-early",
			step:    "3",
			symptom: "customers of most of the orders queued at the time never got their email",
			failing: "FAIL  no message is lost when the worker crashes: after one crash, ",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "ack-early", []edit{
					{`	deliveries, err := ch.Consume(queue, "ack-early", true, false, false, false, nil)`,
						`	if err := ch.Qos(10, 0, false); err != nil {
		return fmt.Errorf("set the prefetch: %w", err)
	}
	deliveries, err := ch.Consume(queue, "ack-early", false, false, false, false, nil)`},
					{`			fmt.Printf("processed %s\n", d.Body)`,
						`			fmt.Printf("processed %s\n", d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("ack: %w", err)
			}`},
				})
			},
			repaired: "PASS  no message is lost when the worker crashes (all 200 processed across a crash; ",
		},
		{
			name:    "kafka-retention",
			step:    "4",
			symptom: "counts only the orders of the last minute or two",
			failing: "FAIL  topic orders.v1 keeps its records for at least 7 days: retention.ms is 60000",
			repair: func(t *testing.T) { // the solution's command
				r := run(t, 30*time.Second, "kafka-topics", "--bootstrap", kafka, "--topic", "orders.v1",
					"--unset", "retention.ms", "--unset", "segment.ms")
				require.Equal(t, 0, r.code, r.output)
				require.Contains(t, r.output, "configs: the broker's defaults")
			},
			repaired: "PASS  topic orders.v1 keeps its records for at least 7 days (retention.ms ",
		},
		{
			name:    "commit-early",
			step:    "4",
			symptom: "its totals were short of many orders",
			failing: "FAIL  no order is lost when the updater crashes: after one crash, ",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "commit-early", []edit{
					{`		"auto.commit.interval.ms": 1000,`, `		"auto.commit.interval.ms": 1000,
		"enable.auto.offset.store": false,`},
					{`			fmt.Printf("processed %s\n", m.Value)`, `			fmt.Printf("processed %s\n", m.Value)
			if _, err := c.StoreMessage(m); err != nil {
				fmt.Fprintln(os.Stderr, "commit-early: store offset:", err)
			}`},
				})
			},
			repaired: "PASS  no order is lost when the updater crashes (all 200 processed across a crash; ",
		},
		{
			name:    "no-deadline",
			step:    "5",
			symptom: "every checkout hung for that minute",
			failing: "FAIL  the tool gives up on a validator that never answers, within 5s: still waiting for an answer after 5s",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "no-deadline", []edit{
					{"\t\"os\"\n", "\t\"os\"\n\t\"time\"\n"},
					{`	res, err := ordersv1.NewOrderValidationClient(conn).ValidateOrder(context.Background(), &ordersv1.ValidateOrderRequest{`,
						`	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := ordersv1.NewOrderValidationClient(conn).ValidateOrder(ctx, &ordersv1.ValidateOrderRequest{`},
				})
			},
			repaired: "PASS  the tool gives up on a validator that never answers, within 5s (gave up after 2.",
		},
		{
			name:    "retry-storm",
			step:    "5",
			symptom: "bursts of InvalidArgument, five at a time",
			failing: "FAIL  an invalid basket costs the validator one call: one invalid basket cost the validator 5 calls",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "retry-storm", []edit{
					{"\t\"google.golang.org/grpc/credentials/insecure\"\n", "\t\"google.golang.org/grpc/codes\"\n\t\"google.golang.org/grpc/credentials/insecure\"\n\t\"google.golang.org/grpc/status\"\n"},
					{"\t\tlastErr = err\n", "\t\tif status.Code(err) != codes.Unavailable {\n\t\t\treturn fmt.Errorf(\"validate the basket: %w\", err)\n\t\t}\n\t\tlastErr = err\n"},
				})
			},
			repaired: "PASS  an invalid basket costs the validator one call (1 call: ",
		},
		{
			name:    "retry-duplicates",
			step:    "6",
			symptom: "two orders for one checkout",
			failing: "FAIL  one checkout places one order when an answer is lost: one checkout placed 2 orders (",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "retry-duplicates", []edit{
					{"\t\"time\"\n)", "\t\"time\"\n\n\t\"github.com/google/uuid\"\n)"},
					{"\tvar lastErr error\n", "\tkey := uuid.NewString() // one per checkout: every attempt is the same order\n\tvar lastErr error\n"},
					{"\t\treq.Header.Set(\"Content-Type\", \"application/json\")\n", "\t\treq.Header.Set(\"Content-Type\", \"application/json\")\n\t\treq.Header.Set(\"Idempotency-Key\", key)\n"},
				})
			},
			repaired: "PASS  one checkout places one order when an answer is lost (2 attempts, one order ",
		},
		{
			name:    "poison-message",
			step:    "6",
			symptom: "logging the same line again and again",
			failing: "FAIL  the orders behind an unreadable message ship, and it is dead-lettered: in 10 s, 0 of 50 orders shipped",
			repair: func(t *testing.T) { // the write-up's fix, in the learner's copy
				editWorkspace(t, "poison-message", []edit{
					{"; trying again\\n", "; dead-lettering it\\n"},
					{"d.Nack(false, true)", "d.Nack(false, false)"},
				})
			},
			repaired: "PASS  the orders behind an unreadable message ship, and it is dead-lettered (all 50 orders shipped; the unreadable message is in lab.poison-message.dlq (x-death reason rejected))",
		},
	}
	fixed := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.step == "1" {
				requireDocker(t)
			}
			r := lab(t, "start", tc.name)
			require.Equal(t, 0, r.code, r.output)
			assert.Contains(t, r.output, tc.symptom)

			r = lab(t, "check", tc.name)
			require.Equal(t, 1, r.code, r.output)
			assert.Contains(t, r.output, tc.failing)
			assert.Contains(t, r.output, tc.name+": not fixed yet")

			// Hints come one at a time, and stop at the last, which names the write-up.
			first := lab(t, "hint", tc.name)
			require.Equal(t, 0, first.code, first.output)
			assert.Contains(t, first.output, "hint 1/4: ")
			assert.NotContains(t, first.output, "hint 2/4: ")
			var last result
			for range 4 {
				last = lab(t, "hint", tc.name)
			}
			assert.Contains(t, last.output, "hint 4/4: ")
			assert.NotContains(t, last.output, "hint 5/")
			assert.Contains(t, last.output, "docs/learn/solutions/"+tc.name+".md")

			tc.repair(t)
			r = lab(t, "check", tc.name)
			require.Equal(t, 0, r.code, r.output)
			assert.Contains(t, r.output, tc.repaired)
			assert.Contains(t, r.output, tc.name+": fixed, all ")
			fixed++
			assert.Regexp(t, fmt.Sprintf(`progress: steps \d/8 · scenarios %d/12\n`, fixed), r.output)

			r = lab(t, "list")
			require.Equal(t, 0, r.code, r.output)
			assert.Regexp(t, regexp.MustCompile(`(?m)^`+tc.name+` +`+tc.step+` +(Docker \(no image is pulled\)|make run or make up|the brokers \(make brokers, make run or make up\)|nothing: the check runs validators of its own|make run or make up \(order-api\)) +fixed \d{4}-\d\d-\d\d `), r.output)

			// reset restores the system whatever was done, and the step's self-check passes.
			r = lab(t, "reset", tc.name)
			require.Equal(t, 0, r.code, r.output)
			assert.NoDirExists(t, filepath.Join(stack.RepoRoot(), "labs", "_workspace", tc.name))
			r = run(t, 90*time.Second, "selfcheck", append([]string{tc.step}, flags("60s")...)...)
			if tc.step == "1" {
				stepOneHealthy(t, r, tc.name)
				return
			}
			require.Equal(t, 0, r.code, r.output)
		})
	}

	// A scenario fixed once stays fixed after its reset, until reset --all clears the progress.
	r = lab(t, "list")
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, fmt.Sprintf("scenarios %d/12", fixed))
	r = lab(t, "reset", "--all")
	require.Equal(t, 0, r.code, r.output)
	assert.Contains(t, r.output, "progress cleared: steps 0/8 · scenarios 0/12")
}

// requireDocker skips a test that needs a Docker daemon where there is none, except in CI,
// which starts one (.ci/run): there a missing daemon fails the test.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Docker daemon (%v: %s): .ci/run starts one for the incidents of step 1", err, out)
	}
	t.Skipf("no Docker daemon here (%v): the incidents of step 1 build and run containers", err)
}

// stepOneHealthy is what a reset of a step-1 incident must leave: no container or image of the
// lab's, and step 1's self-check passing except for the images of the services, which only
// make images or make up build (their base images come from Docker Hub, which CI cannot reach).
func stepOneHealthy(t *testing.T, r result, name string) {
	t.Helper()
	for _, line := range []string{
		"PASS  the docker CLI is installed (",
		"PASS  the Docker daemon answers (server ",
		"PASS  the Dockerfile has the targets dev and prod (",
	} {
		assert.Contains(t, r.output, line)
	}
	assert.Regexp(t, `(PASS  an image of every service exists locally|FAIL  an image of every service exists locally: no image of )`, r.output)
	for _, args := range [][]string{
		{"ps", "--all", "--quiet", "--filter", "name=backend-prep-lab-" + name},
		{"image", "ls", "--quiet", "backend-prep-lab/" + name},
	} {
		out, err := exec.Command("docker", args...).Output()
		require.NoError(t, err, "docker %v", args)
		assert.Empty(t, strings.TrimSpace(string(out)), "docker %v after the reset", args)
	}
}

// edit replaces old, which must occur once, with new.
type edit struct{ old, new string }

// editWorkspace repairs the learner's copy of a code incident the way its write-up says.
func editWorkspace(t *testing.T, name string, edits []edit) {
	t.Helper()
	path := filepath.Join(stack.RepoRoot(), "labs", "_workspace", name, "main.go")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	src := string(b)
	for _, e := range edits {
		require.Equal(t, 1, strings.Count(src, e.old), "the program copied by lab start has %q once", e.old)
		src = strings.Replace(src, e.old, e.new, 1)
	}
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
}
