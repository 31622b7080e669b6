package labs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// TestSelfChecks: against the four services on real brokers, the self-checks of steps 3 to 7
// pass; with the service a step is about stopped, that step fails and says where to look.
//
// The self-checks look at the names the system uses by default (exchange orders, queue
// notifier.order-placed, topic orders.v1, group analytics), so the services run with them too:
// on brokers shared with earlier runs, which the checks must be — and are — robust to.
func TestSelfChecks(t *testing.T) {
	kafka, amqpURL := brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t)
	requireNoOtherNotifier(t, amqpURL)
	s := stack.New(t, kafka, amqpURL, brokertest.PostgresURL(t))
	s.StartAll()
	requireAllPartitions(t, s)

	flags := func(timeout string) []string {
		return []string{
			"--order-api", s.APIAddr,
			"--stats", "http://" + s.StatsAddr,
			"--validator", s.GRPCAddr,
			"--notifier-admin", "http://" + s.Admin["notifier"],
			"--order-api-admin", "http://" + s.Admin["order-api"],
			"--analytics-admin", "http://" + s.Admin["analytics"],
			"--rabbitmq", amqpURL,
			"--kafka", kafka,
			"--timeout", timeout,
		}
	}

	t.Run("every step passes against the running system", func(t *testing.T) {
		for _, step := range []string{"3", "kafka", "5", "system", "observe"} { // by number or by name
			t.Run(step, func(t *testing.T) {
				r := run(t, 90*time.Second, "selfcheck", append([]string{step}, flags("60s")...)...)
				require.Equal(t, 0, r.code, r.output)
				passed, failed := checkLines(r.output)
				assert.GreaterOrEqual(t, len(passed), 4, r.output)
				assert.Empty(t, failed, r.output)
				assert.Regexp(t, `\): all \d+ checks passed\n$`, r.output)
			})
		}
	})

	t.Run("step 3 names wrong RabbitMQ credentials", func(t *testing.T) {
		u, err := url.Parse(amqpURL)
		require.NoError(t, err)
		u.User = url.UserPassword(u.User.Username(), "not-the-password")
		wrong := append([]string{"rabbitmq"}, flags("30s")...)
		wrong = append(wrong, "--rabbitmq", u.String()) // the last --rabbitmq wins
		r := run(t, 60*time.Second, "selfcheck", wrong...)
		require.Equal(t, 1, r.code, r.output)
		assert.Contains(t, r.output, "FAIL  AMQP connects to ")
		assert.Contains(t, r.output, "hint: RabbitMQ answers but refuses these credentials")
		assert.NotContains(t, r.output, "not-the-password", "passwords are not printed")
	})

	t.Run("lab scenarios", func(t *testing.T) { testLabScenarios(t, s, kafka, flags) })

	cases := []struct {
		step    string
		stopped string
		failing string // in the FAIL line
		hint    string // in the hint under it
	}{
		{"3", "notifier", "has a consumer", "is the notifier running?"},
		{"4", "analytics", "counted by analytics", "is analytics running?"},
		{"5", "validator", "reports SERVING", "is the validator running?"},
		{"6", "order-api", "POST /v1/orders answers 202", "is order-api running?"},
		{"7", "analytics", "consumer lag", "is analytics running?"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("step %s fails while the %s is stopped", tc.step, tc.stopped), func(t *testing.T) {
			require.Equal(t, 0, s.Procs[tc.stopped].Terminate(t, 20*time.Second))
			queued := func() int {
				q, err := amqpChannel(t, amqpURL).QueueDeclarePassive("notifier.order-placed", true, false, false, false, nil)
				require.NoError(t, err)
				return q.Messages
			}
			before := queued()
			r := run(t, 60*time.Second, "selfcheck", append([]string{tc.step}, flags("30s")...)...)
			require.Equal(t, 1, r.code, r.output)
			lines := strings.Split(r.output, "\n")
			i := slices.IndexFunc(lines, func(l string) bool {
				return strings.HasPrefix(l, "FAIL  ") && strings.Contains(l, tc.failing)
			})
			require.GreaterOrEqual(t, i, 0, "no FAIL line about %q:\n%s", tc.failing, r.output)
			require.Less(t, i+1, len(lines))
			assert.Contains(t, lines[i+1], "      hint: "+tc.hint, r.output)
			assert.Regexp(t, `\): \d+ of \d+ checks failed\n$`, r.output)
			if tc.step == "3" { // it leaves no order waiting for the next exercise
				assert.Contains(t, r.output, "FAIL  an order posted to order-api gets its notification: not checked: it needs a consumer of the queue (no order was placed")
				assert.Equal(t, before, queued(), "messages waiting in notifier.order-placed after the check")
			}
		})
		s.Start(tc.stopped) // the next case needs it
	}
}

// checkLines splits a self-check's output into its PASS and FAIL lines.
func checkLines(output string) (passed, failed []string) {
	for _, l := range strings.Split(output, "\n") {
		switch {
		case strings.HasPrefix(l, "PASS  "):
			passed = append(passed, l)
		case strings.HasPrefix(l, "FAIL  "):
			failed = append(failed, l)
		}
	}
	return passed, failed
}

// requireNoOtherNotifier fails fast when a notifier outside this test consumes the default
// queue (`make run` on the same brokers): it would take some of this test's orders.
func requireNoOtherNotifier(t *testing.T, amqpURL string) {
	t.Helper()
	q, err := amqpChannel(t, amqpURL).QueueDeclarePassive("notifier.order-placed", true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return // no notifier ever ran on these brokers
	}
	require.NoError(t, err)
	require.Zero(t, q.Consumers, "another notifier consumes notifier.order-placed on these brokers (is `make run` "+
		"running?): this test runs the system with its default names and needs them to itself")
}

// requireAllPartitions waits until the test's analytics owns every partition of orders.v1:
// on fresh brokers the topic appears only when order-api declares it, and analytics notices it
// at its next metadata refresh. Another member of the group (`make run`) would keep some.
func requireAllPartitions(t *testing.T, s *stack.Stack) {
	t.Helper()
	var partitions []int
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		status, body, err := stack.Get(s.StatsAddr, "/v1/stats")
		if err == nil && status == http.StatusOK {
			var st struct {
				Partitions []int `json:"partitions"`
			}
			require.NoError(t, json.Unmarshal(body, &st))
			if partitions = st.Partitions; len(partitions) == 3 {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("analytics owns partitions %v of orders.v1, not all 3: is another member of group analytics "+
		"running on these brokers (`make run`)?", partitions)
}
