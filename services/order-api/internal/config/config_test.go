package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/kafka"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
)

// serviceVars are cleared before each case so that the machine's environment cannot leak in.
var serviceVars = []string{
	"HTTP_ADDR", "VALIDATOR_ADDR", "VALIDATOR_TIMEOUT", "PUBLISH_TIMEOUT", "RETRY_AFTER",
	"KAFKA_TOPIC", "KAFKA_TOPIC_PARTITIONS", "KAFKA_TOPIC_REPLICATION", "RABBITMQ_EXCHANGE",
	"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_REQUEST_TIMEOUT", "RABBITMQ_URL", "RABBITMQ_CONNECTION_NAME",
	"LOG_LEVEL", "LOG_FORMAT", "ADMIN_ADDR", "SHUTDOWN_TIMEOUT",
	"POSTGRES_URL", "POSTGRES_PASSWORD_FILE", "POSTGRES_TIMEOUT", "IDEMPOTENCY_KEY_RETENTION",
}

// postgresURL is a valid POSTGRES_URL other than the default.
const postgresURL = "postgres://order_api:secret@127.0.0.1:5432/orders?sslmode=disable"

// setEnv clears the service's variables, sets POSTGRES_URL and then vars.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, name := range serviceVars {
		t.Setenv(name, "")
	}
	t.Setenv("POSTGRES_URL", postgresURL)
	for name, value := range vars {
		t.Setenv(name, value)
	}
}

func TestLoadDefaults(t *testing.T) {
	setEnv(t, nil)
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	assert.Equal(t, ":8080", cfg.HTTPAddr)
	assert.Equal(t, "127.0.0.1:50051", cfg.ValidatorAddr)
	assert.Equal(t, 2*time.Second, cfg.ValidatorTimeout)
	assert.Equal(t, 5*time.Second, cfg.PublishTimeout)
	assert.Equal(t, time.Second, cfg.RetryAfter)
	assert.Equal(t, "orders.v1", cfg.KafkaTopic)
	assert.Equal(t, 3, cfg.KafkaTopicPartitions)
	assert.Equal(t, 1, cfg.KafkaTopicReplication)
	assert.Equal(t, "orders", cfg.RabbitMQExchange)
	assert.Equal(t, kafka.DefaultConfig(), cfg.Kafka, "the Kafka client settings are read too")
	assert.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", cfg.RabbitMQ.URL, "the RabbitMQ client settings are read too")
	assert.Equal(t, config.ServiceName, config.RabbitMQ(cfg).ConnectionName, "the connection is named after the service")
	assert.Equal(t, cfg.HTTPAddr, config.HTTPServer(cfg).Addr)

	store := config.Idempotency(cfg)
	assert.Equal(t, postgresURL, store.URL)
	assert.Empty(t, store.PasswordFile)
	assert.Equal(t, 2*time.Second, store.QueryTimeout)
	assert.Equal(t, 24*time.Hour, store.Retention)
	assert.Equal(t, 30*time.Second, store.Lease, "no request outlives the HTTP write timeout")
}

func TestPostgresURLDefaultsToMakeBrokers(t *testing.T) {
	for _, name := range serviceVars {
		t.Setenv(name, "")
	}
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	assert.Equal(t, "postgres://backend_prep:backend_prep@127.0.0.1:5432/backend_prep?sslmode=disable", cfg.PostgresURL,
		"the database scripts/brokers starts (its env command prints the same URL)")
}

func TestLoadReadsNestedBrokerVariables(t *testing.T) {
	setEnv(t, map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS":  "kafka-0:9092,kafka-1:9092",
		"RABBITMQ_URL":             "amqp://app:secret@rabbitmq:5672/shop",
		"RABBITMQ_CONNECTION_NAME": "order-api-7f9c",
	})
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	assert.Equal(t, "kafka-0:9092,kafka-1:9092", config.Kafka(cfg).BootstrapServers)
	assert.Equal(t, "amqp://app:secret@rabbitmq:5672/shop", config.RabbitMQ(cfg).URL)
	assert.Equal(t, "order-api-7f9c", config.RabbitMQ(cfg).ConnectionName)
}

func TestLoadRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"HTTP address without port", map[string]string{"HTTP_ADDR": "localhost"}, "HTTP_ADDR"},
		{"validator address without port", map[string]string{"VALIDATOR_ADDR": "validator"}, "VALIDATOR_ADDR"},
		{"validator timeout not a duration", map[string]string{"VALIDATOR_TIMEOUT": "soon"}, "VALIDATOR_TIMEOUT"},
		{"validator timeout zero", map[string]string{"VALIDATOR_TIMEOUT": "0s"}, "VALIDATOR_TIMEOUT"},
		{"publish timeout negative", map[string]string{"PUBLISH_TIMEOUT": "-1s"}, "PUBLISH_TIMEOUT"},
		{"timeouts outlast the HTTP write timeout", map[string]string{"VALIDATOR_TIMEOUT": "10s", "PUBLISH_TIMEOUT": "20s"}, "PUBLISH_TIMEOUT"},
		{"retry-after below a second", map[string]string{"RETRY_AFTER": "500ms"}, "RETRY_AFTER"},
		{"retry-after not whole seconds", map[string]string{"RETRY_AFTER": "1500ms"}, "RETRY_AFTER"},
		{"blank topic", map[string]string{"KAFKA_TOPIC": " "}, "KAFKA_TOPIC"},
		{"topic with a slash", map[string]string{"KAFKA_TOPIC": "orders/v1"}, "KAFKA_TOPIC"},
		{"blank exchange", map[string]string{"RABBITMQ_EXCHANGE": "  "}, "RABBITMQ_EXCHANGE"},
		{"no partitions", map[string]string{"KAFKA_TOPIC_PARTITIONS": "0"}, "KAFKA_TOPIC_PARTITIONS"},
		{"partitions not a number", map[string]string{"KAFKA_TOPIC_PARTITIONS": "three"}, "KAFKA_TOPIC_PARTITIONS"},
		{"no replicas", map[string]string{"KAFKA_TOPIC_REPLICATION": "0"}, "KAFKA_TOPIC_REPLICATION"},
		{"bad Kafka setting", map[string]string{"KAFKA_REQUEST_TIMEOUT": "0s"}, "KAFKA_REQUEST_TIMEOUT"},
		{"bad RabbitMQ URL", map[string]string{"RABBITMQ_URL": "http://rabbitmq"}, "RABBITMQ_URL"},
		{"PostgreSQL URL not a URL", map[string]string{"POSTGRES_URL": "postgres://a:b@host:notaport/db"}, "POSTGRES_URL"},
		{"PostgreSQL timeout zero", map[string]string{"POSTGRES_TIMEOUT": "0s"}, "POSTGRES_TIMEOUT"},
		{"store timeouts outlast the HTTP write timeout", map[string]string{"POSTGRES_TIMEOUT": "12s"}, "POSTGRES_TIMEOUT"},
		{"no retention", map[string]string{"IDEMPOTENCY_KEY_RETENTION": "0s"}, "IDEMPOTENCY_KEY_RETENTION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := platformconfig.Load[config.Config]()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantVar)
			assert.NotContains(t, err.Error(), "\n", "one problem per line would split the start-up message")
		})
	}
}
