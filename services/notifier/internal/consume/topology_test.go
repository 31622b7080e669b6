package consume_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
)

// With a user of its own, which may bind to the exchange but not declare it (as the notifier's
// user in the cluster and under make brokers), the notifier binds to the exchange that exists,
// and says what is missing when it does not.
func TestDeclareTopologyWithAUserThatMayNotDeclareTheExchange(t *testing.T) {
	adminURL := brokertest.RabbitMQURL(t)
	if os.Getenv("RABBITMQ_URL") == "" || os.Getenv("RABBITMQCTL") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs RABBITMQ_URL and RABBITMQCTL: CI exports `scripts/brokers env`")
		}
		t.Skip("creates a user with rabbitmqctl: needs make brokers and eval \"$(scripts/brokers env)\" (make test does)")
	}
	settings := consume.Settings{
		Exchange:    brokertest.UniqueName(t, "orders"),
		RoutingKey:  ordersv1.RoutingKey,
		Queue:       brokertest.UniqueName(t, "notifier"),
		RetryDelay:  testDelay,
		MaxAttempts: 3,
	}
	// The notifier's permissions (scripts/brokers.d/rabbitmq/permissions), for these names.
	own, source := "^"+regexp.QuoteMeta(settings.Queue), regexp.QuoteMeta(settings.Exchange)
	user := "notifier-test-" + randomHex(t)
	password := randomHex(t)
	ctl(t, "add_user", user, password)
	t.Cleanup(func() { ctl(t, "delete_user", user) })
	ctl(t, "set_permissions", "-p", "/", user, own, own, "^("+source+"$|"+strings.TrimPrefix(own, "^")+")")
	u, err := url.Parse(adminURL)
	require.NoError(t, err)
	u.User = url.UserPassword(user, password)
	log := zaptest.NewLogger(t)
	admin, restricted := startConnection(t, adminURL), startConnection(t, u.String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	err = consume.DeclareTopology(ctx, restricted, settings, log)
	require.Error(t, err, "the exchange does not exist yet")
	assert.Contains(t, err.Error(), "must exist before the notifier binds to it")

	require.NoError(t, admin.Declare(ctx, settings.SourceTopology()), "as the platform declares it")
	require.NoError(t, consume.DeclareTopology(ctx, restricted, settings, log))
	t.Cleanup(func() { deleteTopology(t, admin, settings) })
	require.NoError(t, restricted.Ready(ctx), "a refused declaration leaves the connection up")
	// The binding works: a message published to the exchange reaches the work queue.
	pub := rabbitmq.NewPublisher(admin, log)
	defer func() { assert.NoError(t, pub.Close(ctx)) }()
	require.NoError(t, pub.Publish(ctx, settings.Exchange, settings.RoutingKey, eventMessage(t, orderPlaced("o-bound"))))
}

func startConnection(t *testing.T, u string) *rabbitmq.Connection {
	t.Helper()
	conn, err := rabbitmq.NewConnection(rabbitmq.Config{
		URL: u, ConnectionName: "notifier-test", DialTimeout: 5 * time.Second, Heartbeat: 5 * time.Second,
		OperationTimeout: 5 * time.Second, ReconnectMin: 50 * time.Millisecond, ReconnectMax: time.Second,
		PublishTimeout: 5 * time.Second, PublisherChannels: 2, Prefetch: 8,
	}, zaptest.NewLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, conn.Close(ctx))
	})
	return conn
}

// ctl runs the rabbitmqctl of `scripts/brokers env` (RABBITMQCTL).
func ctl(t *testing.T, args ...string) {
	t.Helper()
	cmd := strings.Fields(os.Getenv("RABBITMQCTL"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmd[0], append(cmd[1:], args...)...).CombinedOutput()
	require.NoError(t, err, "rabbitmqctl %s: %s", args[0], out)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// NOTIFIER_QUEUE_TYPE=classic declares classic queues, without the arguments only quorum queues
// take, and a real broker accepts them: the comparison `make bench -queue` draws is runnable.
func TestClassicTopologyDeclaresOnARealBroker(t *testing.T) {
	settings := consume.Settings{
		Exchange:    brokertest.UniqueName(t, "orders"),
		RoutingKey:  ordersv1.RoutingKey,
		Queue:       brokertest.UniqueName(t, "notifier"),
		RetryDelay:  testDelay,
		MaxAttempts: 3,
		QueueType:   rabbitmq.QueueClassic,
	}
	require.NoError(t, settings.Validate())
	for _, q := range settings.Topology().Queues {
		assert.Equal(t, rabbitmq.QueueClassic, q.Type, q.Name)
		assert.NotContains(t, q.Args, "x-delivery-limit", q.Name)
		assert.NotContains(t, q.Args, "x-dead-letter-strategy", q.Name)
	}
	admin := startConnection(t, brokertest.RabbitMQURL(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, consume.DeclareTopology(ctx, admin, settings, zaptest.NewLogger(t)))
	t.Cleanup(func() { deleteTopology(t, admin, settings) })
	// The broker holds a classic queue now: declaring it as a quorum queue is refused.
	asQuorum := rabbitmq.Topology{Queues: []rabbitmq.Queue{{Name: settings.Queue, Type: rabbitmq.QueueQuorum, Durable: true}}}
	var amqpErr *amqp.Error
	err := admin.Declare(ctx, asQuorum)
	require.ErrorAs(t, err, &amqpErr, "the queue exists with another type")
	assert.Equal(t, amqp.PreconditionFailed, amqpErr.Code)

	settings.QueueType = "stream"
	require.ErrorContains(t, settings.Validate(), "quorum or classic")
}
