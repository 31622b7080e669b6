package kafka

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config holds the connection and tuning settings shared by the producer, the consumer and the
// admin client. Services embed it in their own configuration; the env tags follow
// github.com/caarlos0/env so the variables below are read without further code.
type Config struct {
	// BootstrapServers is the comma-separated host:port list used to discover the cluster.
	BootstrapServers string `env:"KAFKA_BOOTSTRAP_SERVERS" envDefault:"127.0.0.1:9092"`
	// ClientID names this process in broker logs, quotas and metrics.
	ClientID string `env:"KAFKA_CLIENT_ID" envDefault:"backend-prep"`

	// RequestTimeout bounds a metadata, admin or offset request whose context carries no deadline.
	RequestTimeout time.Duration `env:"KAFKA_REQUEST_TIMEOUT" envDefault:"10s"`
	// DeliveryTimeout bounds how long the producer keeps retrying a message before it reports
	// the delivery as failed. Publish usually gives up earlier, at the caller's deadline.
	DeliveryTimeout time.Duration `env:"KAFKA_DELIVERY_TIMEOUT" envDefault:"30s"`
	// Linger lets the producer wait this long to batch messages; a few milliseconds buy much
	// better batching (and compression) for concurrent requests at a negligible latency cost.
	Linger time.Duration `env:"KAFKA_LINGER" envDefault:"5ms"`
	// Compression is the codec for produced batches: none, gzip, snappy, lz4 or zstd.
	Compression string `env:"KAFKA_COMPRESSION" envDefault:"lz4"`

	// SessionTimeout is how long the group coordinator waits for a silent consumer before it
	// reassigns its partitions: after a crash (kill -9, OOM kill, lost node) the partitions of
	// the dead member stay unconsumed that long, and a restarted member cannot join before it
	// expires. A consumer that stops cleanly leaves the group at once instead. The default is
	// the broker's minimum (group.min.session.timeout.ms, 6s by default; the maximum,
	// group.max.session.timeout.ms, is 30min): librdkafka heartbeats from a thread of its own,
	// so a busy handler or a garbage collection does not make it miss heartbeats.
	SessionTimeout time.Duration `env:"KAFKA_SESSION_TIMEOUT" envDefault:"6s"`
	// HeartbeatInterval is how often a consumer heartbeats; it also bounds how quickly a member
	// notices that the group is rebalancing. A third of SessionTimeout lets two heartbeats be
	// lost before the session expires.
	HeartbeatInterval time.Duration `env:"KAFKA_HEARTBEAT_INTERVAL" envDefault:"2s"`
	// GroupInstanceID, when set, makes the consumer a static group member (KIP-345): a member
	// that restarts with the same ID within SessionTimeout gets its partitions back without a
	// rebalance. The price: librdkafka does not send a LeaveGroup request when a static member
	// closes, so even a clean stop leaves its partitions unconsumed until SessionTimeout
	// expires, and two processes given the same ID fence each other. Every replica needs an ID
	// of its own that survives its restarts (a StatefulSet's pod name). Empty by default.
	GroupInstanceID string `env:"KAFKA_GROUP_INSTANCE_ID"`
	// MaxPollInterval is the longest a handler may take for one message before the consumer is
	// considered stuck and leaves the group.
	MaxPollInterval time.Duration `env:"KAFKA_MAX_POLL_INTERVAL" envDefault:"5m"`
	// CommitInterval is how often the consumer commits the offsets its handler accepted, and so
	// how fresh the committed offsets (and the lag derived from them) are.
	CommitInterval time.Duration `env:"KAFKA_COMMIT_INTERVAL" envDefault:"1s"`
	// MetadataRefreshInterval is how often clients refresh cluster metadata. A consumer notices
	// a subscribed topic created after it started only at the next refresh, so this is much
	// shorter than librdkafka's default of five minutes.
	MetadataRefreshInterval time.Duration `env:"KAFKA_METADATA_REFRESH_INTERVAL" envDefault:"10s"`
	// RetryBackoff is the pause before a message whose handler failed is delivered again. Only
	// that message's partition waits; the consumer goes on with the others meanwhile.
	RetryBackoff time.Duration `env:"KAFKA_RETRY_BACKOFF" envDefault:"1s"`

	// Debug enables librdkafka debug contexts (e.g. "broker,cgrp,topic"); empty disables them.
	Debug string `env:"KAFKA_DEBUG"`
}

// DefaultConfig returns the configuration that the env defaults above produce.
func DefaultConfig() Config {
	return Config{
		BootstrapServers:  "127.0.0.1:9092",
		ClientID:          "backend-prep",
		RequestTimeout:    10 * time.Second,
		DeliveryTimeout:   30 * time.Second,
		Linger:            5 * time.Millisecond,
		Compression:       "lz4",
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 2 * time.Second,
		MaxPollInterval:   5 * time.Minute,
		CommitInterval:    time.Second,
		RetryBackoff:      time.Second,

		MetadataRefreshInterval: 10 * time.Second,
	}
}

var compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Validate reports every invalid setting, naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	if c.BootstrapServers == "" {
		errs = append(errs, errors.New("KAFKA_BOOTSTRAP_SERVERS must not be empty"))
	}
	positive := []struct {
		name  string
		value time.Duration
	}{
		{"KAFKA_REQUEST_TIMEOUT", c.RequestTimeout},
		{"KAFKA_DELIVERY_TIMEOUT", c.DeliveryTimeout},
		{"KAFKA_SESSION_TIMEOUT", c.SessionTimeout},
		{"KAFKA_HEARTBEAT_INTERVAL", c.HeartbeatInterval},
		{"KAFKA_MAX_POLL_INTERVAL", c.MaxPollInterval},
		{"KAFKA_COMMIT_INTERVAL", c.CommitInterval},
		{"KAFKA_METADATA_REFRESH_INTERVAL", c.MetadataRefreshInterval},
		{"KAFKA_RETRY_BACKOFF", c.RetryBackoff},
	}
	for _, p := range positive {
		if p.value <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", p.name, p.value))
		}
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("KAFKA_LINGER must not be negative, got %s", c.Linger))
	}
	if c.HeartbeatInterval >= c.SessionTimeout && c.SessionTimeout > 0 {
		errs = append(errs, fmt.Errorf("KAFKA_HEARTBEAT_INTERVAL (%s) must be shorter than KAFKA_SESSION_TIMEOUT (%s)",
			c.HeartbeatInterval, c.SessionTimeout))
	}
	if !slices.Contains(compressions, c.Compression) {
		errs = append(errs, fmt.Errorf("KAFKA_COMPRESSION must be one of %v, got %q", compressions, c.Compression))
	}
	return errors.Join(errs...)
}
