package config_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/kafka"
	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/config"
	"github.com/backend-prep/backend-prep/services/analytics/internal/consume"
)

func TestLoad_Defaults(t *testing.T) {
	// make brokers and CI export the broker's address; the defaults are what applies without it.
	unsetenv(t, "KAFKA_BOOTSTRAP_SERVERS")

	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	assert.Equal(t, httpserver.Config{Addr: ":8081"}, cfg.HTTPServer())
	assert.Equal(t, consume.Settings{
		GroupID: "analytics", Topic: ordersv1.Topic, LagRefreshInterval: 5 * time.Second,
		TopicPartitions: 3, TopicReplication: 1, // order-api's defaults: both declare the topic
	}, cfg.Consume())
	assert.Equal(t, kafka.DefaultConfig(), cfg.Kafka())
	assert.Equal(t, ":9090", cfg.AdminAddr)
}

// unsetenv removes a variable for the rest of the test and restores it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	require.NoError(t, os.Unsetenv(name))
}

func TestLoad_FromTheEnvironment(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:18081")
	t.Setenv("ANALYTICS_GROUP_ID", "analytics-canary")
	t.Setenv("KAFKA_TOPIC", "orders.v1.replay")
	t.Setenv("LAG_REFRESH_INTERVAL", "750ms")
	t.Setenv("KAFKA_TOPIC_PARTITIONS", "6")
	t.Setenv("KAFKA_TOPIC_REPLICATION", "3")
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")

	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:18081", cfg.HTTPServer().Addr)
	assert.Equal(t, consume.Settings{
		GroupID: "analytics-canary", Topic: "orders.v1.replay", LagRefreshInterval: 750 * time.Millisecond,
		TopicPartitions: 6, TopicReplication: 3,
	}, cfg.Consume())
	assert.Equal(t, "kafka-0:9092,kafka-1:9092", cfg.Kafka().BootstrapServers)
}

func TestLoad_BadValuesNameTheirVariable(t *testing.T) {
	tests := []struct {
		variable, value string
	}{
		{"HTTP_ADDR", "8081"},
		{"HTTP_ADDR", ":http"},
		{"LAG_REFRESH_INTERVAL", "soon"},
		{"LAG_REFRESH_INTERVAL", "10ms"},
		{"KAFKA_TOPIC_PARTITIONS", "0"},
		{"KAFKA_TOPIC_REPLICATION", "0"},
		{"LAG_REFRESH_INTERVAL", "2m"},
		{"KAFKA_SESSION_TIMEOUT", "0s"},
		{"ADMIN_ADDR", "nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.variable, tt.value)
			_, err := platformconfig.Load[config.Config]()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.variable)
		})
	}
}

func TestValidate_NamesTheVariable(t *testing.T) {
	// Set but empty variables take their defaults, so these values only come from code.
	tests := []struct {
		variable string
		change   func(*config.Config)
	}{
		{"ANALYTICS_GROUP_ID", func(c *config.Config) { c.GroupID = "" }},
		{"KAFKA_TOPIC", func(c *config.Config) { c.Topic = "" }},
		{"KAFKA_BOOTSTRAP_SERVERS", func(c *config.Config) { c.BootstrapServers = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			cfg, err := platformconfig.Load[config.Config]()
			require.NoError(t, err)
			tt.change(&cfg)
			err = cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.variable)
		})
	}
}
