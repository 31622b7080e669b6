package brokertest_test

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
)

func TestMain(m *testing.M) { brokertest.Main(m) }

func TestKafkaBootstrapAcceptsConnections(t *testing.T) {
	servers := brokertest.KafkaBootstrap(t)

	for _, server := range strings.Split(servers, ",") {
		conn, err := net.DialTimeout("tcp", server, 5*time.Second)
		require.NoError(t, err, "bootstrap server %s", server)
		require.NoError(t, conn.Close())
	}
}

func dialRabbitMQ(t *testing.T) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(brokertest.RabbitMQURL(t), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestRestartRabbitMQDropsConnectionsAndComesBack(t *testing.T) {
	conn := dialRabbitMQ(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	brokertest.RestartRabbitMQ(t)

	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the connection survived the restart")
	}
	again := dialRabbitMQ(t)
	ch, err := again.Channel()
	require.NoError(t, err, "the broker serves again once RestartRabbitMQ returns")
	require.NoError(t, ch.Close())
}

func TestUniqueName(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
	}{
		{"short prefix", "orders"},
		{"dotted prefix", "orders.v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second := brokertest.UniqueName(t, tt.prefix), brokertest.UniqueName(t, tt.prefix)

			assert.NotEqual(t, first, second)
			for _, name := range []string{first, second} {
				assert.True(t, strings.HasPrefix(name, tt.prefix+"."), name)
				// Legal for Kafka topics and groups and for RabbitMQ queues and exchanges alike.
				assert.Regexp(t, regexp.MustCompile(`^[a-z0-9.-]+$`), name)
				assert.LessOrEqual(t, len(name), len(tt.prefix)+1+40+1+8)
			}
		})
	}
}

func TestUniqueNameShortensLongTestNames(t *testing.T) {
	t.Run(strings.Repeat("long-", 20), func(t *testing.T) {
		name := brokertest.UniqueName(t, "q")

		assert.LessOrEqual(t, len(name), len("q.")+40+len(".")+8)
	})
}
