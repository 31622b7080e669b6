package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/services/notifier/internal/config"
)

func TestDefaults(t *testing.T) {
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	assert.Equal(t, 5*time.Second, cfg.RetryDelay)
	assert.Equal(t, 5, cfg.MaxAttempts)
	assert.Equal(t, 10000, cfg.RecentLimit)
	assert.Zero(t, cfg.FailureRate)

	assert.Equal(t, "notifier", cfg.RabbitMQ().ConnectionName)
	s := cfg.Consume()
	assert.Equal(t, "orders", s.Exchange)
	assert.Equal(t, "order.placed", s.RoutingKey)
	assert.Equal(t, "notifier.order-placed", s.Queue)
	assert.Equal(t, "notifier.order-placed.retry.5s", s.RetryQueue())
	assert.Equal(t, "notifier.order-placed.dlq", s.DeadLetterQueue())
	assert.Equal(t, 5, s.MaxAttempts)
	assert.Equal(t, 10000, cfg.Notify().RecentLimit)
	assert.Empty(t, cfg.Notify().JournalPath, "memory only")
}

func TestVariablesAreRead(t *testing.T) {
	t.Setenv("NOTIFIER_RETRY_DELAY", "200ms")
	t.Setenv("NOTIFIER_MAX_ATTEMPTS", "3")
	t.Setenv("NOTIFIER_RECENT_LIMIT", "50")
	t.Setenv("NOTIFIER_FAILURE_RATE", "0.25")
	t.Setenv("RABBITMQ_CONNECTION_NAME", "notifier-2")
	t.Setenv("NOTIFIER_JOURNAL_PATH", "/var/lib/notifier/notifications.jsonl")

	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	assert.Equal(t, 200*time.Millisecond, cfg.Consume().RetryDelay)
	assert.Equal(t, 3, cfg.Consume().MaxAttempts)
	assert.Equal(t, 50, cfg.Notify().RecentLimit)
	assert.Equal(t, 0.25, cfg.Notify().FailureRate)
	assert.Equal(t, "notifier-2", cfg.RabbitMQ().ConnectionName)
	assert.Equal(t, "/var/lib/notifier/notifications.jsonl", cfg.Notify().JournalPath)
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	tests := []struct {
		variable string
		value    string
	}{
		{"NOTIFIER_RETRY_DELAY", "0s"},
		{"NOTIFIER_RETRY_DELAY", "1500us"},
		{"NOTIFIER_RETRY_DELAY", "2h"},
		{"NOTIFIER_RETRY_DELAY", "soon"},
		{"NOTIFIER_MAX_ATTEMPTS", "0"},
		{"NOTIFIER_MAX_ATTEMPTS", "101"},
		{"NOTIFIER_MAX_ATTEMPTS", "five"},
		{"NOTIFIER_RECENT_LIMIT", "0"},
		{"NOTIFIER_RECENT_LIMIT", "-1"},
		{"NOTIFIER_FAILURE_RATE", "-0.1"},
		{"NOTIFIER_FAILURE_RATE", "1.5"},
		{"NOTIFIER_FAILURE_RATE", "NaN"},
		{"RABBITMQ_URL", "http://example.com"},
		{"RABBITMQ_PREFETCH", "0"},
		{"NOTIFIER_QUEUE_TYPE", "stream"},
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
