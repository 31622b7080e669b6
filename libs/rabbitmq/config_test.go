package rabbitmq_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

func TestConfigIsParsedFromTheEnvironment(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want rabbitmq.Config
	}{
		{
			name: "defaults point at a local broker",
			env:  map[string]string{},
			want: rabbitmq.Config{
				URL:               "amqp://guest:guest@127.0.0.1:5672/",
				DialTimeout:       5 * time.Second,
				Heartbeat:         10 * time.Second,
				OperationTimeout:  5 * time.Second,
				ReconnectMin:      200 * time.Millisecond,
				ReconnectMax:      5 * time.Second,
				PublishTimeout:    5 * time.Second,
				PublisherChannels: 32,
				Prefetch:          16,
			},
		},
		{
			name: "every variable overrides its field",
			env: map[string]string{
				"RABBITMQ_URL":                "amqp://app:secret@rabbitmq:5672/orders",
				"RABBITMQ_CONNECTION_NAME":    "notifier",
				"RABBITMQ_DIAL_TIMEOUT":       "2s",
				"RABBITMQ_HEARTBEAT":          "30s",
				"RABBITMQ_OPERATION_TIMEOUT":  "3s",
				"RABBITMQ_RECONNECT_MIN":      "1s",
				"RABBITMQ_RECONNECT_MAX":      "1m",
				"RABBITMQ_PUBLISH_TIMEOUT":    "750ms",
				"RABBITMQ_PUBLISHER_CHANNELS": "4",
				"RABBITMQ_PREFETCH":           "4",
			},
			want: rabbitmq.Config{
				URL:               "amqp://app:secret@rabbitmq:5672/orders",
				ConnectionName:    "notifier",
				DialTimeout:       2 * time.Second,
				Heartbeat:         30 * time.Second,
				OperationTimeout:  3 * time.Second,
				ReconnectMin:      time.Second,
				ReconnectMax:      time.Minute,
				PublishTimeout:    750 * time.Millisecond,
				PublisherChannels: 4,
				Prefetch:          4,
			},
		},
	}
	require.Equal(t, rabbitmq.DefaultURL, tests[0].want.URL, "the envDefault tag repeats DefaultURL")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := env.ParseAsWithOptions[rabbitmq.Config](env.Options{Environment: tt.env})
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.NoError(t, got.Validate())
		})
	}
}

func TestConfigValidateNamesTheBadVariable(t *testing.T) {
	valid := func() rabbitmq.Config {
		cfg, err := env.ParseAsWithOptions[rabbitmq.Config](env.Options{Environment: map[string]string{}})
		require.NoError(t, err)
		return cfg
	}
	tests := []struct {
		name   string
		change func(*rabbitmq.Config)
		want   string
	}{
		{"empty URL", func(c *rabbitmq.Config) { c.URL = "" }, "RABBITMQ_URL"},
		{"not an AMQP scheme", func(c *rabbitmq.Config) { c.URL = "http://127.0.0.1:5672/" }, "RABBITMQ_URL"},
		{"a bad node in a list", func(c *rabbitmq.Config) {
			c.URL = "amqp://127.0.0.1:5672/,http://127.0.0.1:5673/"
		}, "RABBITMQ_URL: invalid AMQP URI (URI 2 of 2)"},
		{"an empty node in a list", func(c *rabbitmq.Config) { c.URL = "amqp://127.0.0.1:5672/,," }, "RABBITMQ_URL: empty AMQP URI (URI 2 of 3)"},
		{"zero dial timeout", func(c *rabbitmq.Config) { c.DialTimeout = 0 }, "RABBITMQ_DIAL_TIMEOUT"},
		{"sub-second heartbeat", func(c *rabbitmq.Config) { c.Heartbeat = 500 * time.Millisecond }, "RABBITMQ_HEARTBEAT"},
		{"negative operation timeout", func(c *rabbitmq.Config) { c.OperationTimeout = -time.Second }, "RABBITMQ_OPERATION_TIMEOUT"},
		{"reconnect cap below its start", func(c *rabbitmq.Config) { c.ReconnectMax = c.ReconnectMin / 2 }, "RABBITMQ_RECONNECT_MAX"},
		{"zero publish timeout", func(c *rabbitmq.Config) { c.PublishTimeout = 0 }, "RABBITMQ_PUBLISH_TIMEOUT"},
		{"no publisher channel", func(c *rabbitmq.Config) { c.PublisherChannels = 0 }, "RABBITMQ_PUBLISHER_CHANNELS"},
		{"no prefetch", func(c *rabbitmq.Config) { c.Prefetch = 0 }, "RABBITMQ_PREFETCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestConfigValidateDoesNotLeakThePassword(t *testing.T) {
	cfg := rabbitmq.Config{URL: "amqp://app:s3cr3t@rabbit mq:5672/%zz"}
	err := cfg.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")

	cfg.URL = "amqp://app:s3cr3t@127.0.0.1:5672/%zz"
	err = cfg.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
}

func TestConfigReadsTheURLFromAFile(t *testing.T) {
	write := func(t *testing.T, content string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "url")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	parse := func(t *testing.T, environ map[string]string) rabbitmq.Config {
		t.Helper()
		cfg, err := env.ParseAsWithOptions[rabbitmq.Config](env.Options{Environment: environ})
		require.NoError(t, err)
		return cfg
	}
	// A connection that never starts: NewConnection is where the file is read.
	connect := func(cfg rabbitmq.Config) error {
		_, err := rabbitmq.NewConnection(cfg, zap.NewNop())
		return err
	}

	t.Run("the file's URI, white space trimmed, is what the connection uses", func(t *testing.T) {
		cfg := parse(t, map[string]string{"RABBITMQ_URL_FILE": write(t, "  amqp://notifier:s3cr3t@rabbitmq:5672/\n")})
		require.NoError(t, cfg.Validate())
		require.NoError(t, connect(cfg))
	})
	tests := []struct {
		name    string
		environ func(t *testing.T) map[string]string
		want    string
	}{
		{"both set", func(t *testing.T) map[string]string {
			return map[string]string{"RABBITMQ_URL": "amqp://a:b@rabbitmq:5672/", "RABBITMQ_URL_FILE": write(t, "amqp://notifier:s3cr3t@rabbitmq:5672/")}
		}, "RABBITMQ_URL, RABBITMQ_URL_FILE: set one of them, not both"},
		{"missing file", func(t *testing.T) map[string]string {
			return map[string]string{"RABBITMQ_URL_FILE": filepath.Join(t.TempDir(), "absent")}
		}, "RABBITMQ_URL_FILE: open "},
		{"empty file", func(t *testing.T) map[string]string {
			return map[string]string{"RABBITMQ_URL_FILE": write(t, "\n")}
		}, "RABBITMQ_URL_FILE: "},
		{"not an AMQP URI", func(t *testing.T) map[string]string {
			return map[string]string{"RABBITMQ_URL_FILE": write(t, "http://notifier:s3cr3t@rabbitmq:5672/")}
		}, "RABBITMQ_URL_FILE: invalid AMQP URI"},
		{"a URI that does not parse", func(t *testing.T) map[string]string {
			return map[string]string{"RABBITMQ_URL_FILE": write(t, "amqp://notifier:s3cr3t@rabbit mq:5672/%zz")}
		}, "RABBITMQ_URL_FILE: invalid AMQP URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, tt.environ(t))
			for _, err := range []error{cfg.Validate(), connect(cfg)} {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.NotContains(t, err.Error(), "s3cr3t", "the password never appears in an error")
			}
		})
	}
}
