package kafka_test

import (
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/caarlos0/env/v11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfig_EnvDefaultsMatchDefaultConfig(t *testing.T) {
	var cfg kafka.Config
	require.NoError(t, env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}))
	assert.Equal(t, kafka.DefaultConfig(), cfg)
	require.NoError(t, cfg.Validate())
}

func TestConfig_ReadsItsVariables(t *testing.T) {
	var cfg kafka.Config
	require.NoError(t, env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
		"KAFKA_DELIVERY_TIMEOUT":  "5s",
		"KAFKA_COMPRESSION":       "zstd",
		"KAFKA_GROUP_INSTANCE_ID": "analytics-0",
		"KAFKA_SESSION_TIMEOUT":   "45s",
	}}))
	assert.Equal(t, "analytics-0", cfg.GroupInstanceID)
	assert.Equal(t, 45*time.Second, cfg.SessionTimeout)
	assert.Equal(t, "kafka-0:9092,kafka-1:9092", cfg.BootstrapServers)
	assert.Equal(t, 5*time.Second, cfg.DeliveryTimeout)
	assert.Equal(t, "zstd", cfg.Compression)
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*kafka.Config)
		wantVar string
	}{
		{"defaults are valid", func(*kafka.Config) {}, ""},
		{"empty bootstrap servers", func(c *kafka.Config) { c.BootstrapServers = "" }, "KAFKA_BOOTSTRAP_SERVERS"},
		{"zero request timeout", func(c *kafka.Config) { c.RequestTimeout = 0 }, "KAFKA_REQUEST_TIMEOUT"},
		{"negative delivery timeout", func(c *kafka.Config) { c.DeliveryTimeout = -time.Second }, "KAFKA_DELIVERY_TIMEOUT"},
		{"negative linger", func(c *kafka.Config) { c.Linger = -time.Millisecond }, "KAFKA_LINGER"},
		{"unknown compression", func(c *kafka.Config) { c.Compression = "brotli" }, "KAFKA_COMPRESSION"},
		{"heartbeat not shorter than session", func(c *kafka.Config) { c.HeartbeatInterval = c.SessionTimeout }, "KAFKA_HEARTBEAT_INTERVAL"},
		{"zero commit interval", func(c *kafka.Config) { c.CommitInterval = 0 }, "KAFKA_COMMIT_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafka.DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.wantVar == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantVar)
		})
	}
}

func TestNewClients_RejectInvalidConfig(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.BootstrapServers = ""

	_, err := kafka.NewProducer(cfg, nil)
	assert.ErrorContains(t, err, "KAFKA_BOOTSTRAP_SERVERS")
	_, err = kafka.NewAdmin(cfg)
	assert.ErrorContains(t, err, "KAFKA_BOOTSTRAP_SERVERS")
	_, err = kafka.NewConsumer(cfg, kafka.ConsumerOptions{}, nil)
	assert.ErrorContains(t, err, "KAFKA_BOOTSTRAP_SERVERS")
}
