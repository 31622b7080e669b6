// Package config is the notifier's configuration: the platform's shared settings, the RabbitMQ
// client settings and its own, read once from the environment at start-up.
package config

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/fx"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// Bounds of the notifier's own variables.
const (
	// MaxRetryDelay bounds NOTIFIER_RETRY_DELAY: a message waiting longer is better parked in
	// the dead-letter queue for a person to look at.
	MaxRetryDelay = time.Hour
	// MaxAttempts bounds NOTIFIER_MAX_ATTEMPTS.
	MaxAttempts = 100
	// MaxRecentLimit bounds NOTIFIER_RECENT_LIMIT (a few hundred bytes each).
	MaxRecentLimit = 10_000_000
)

// Config is the notifier's configuration.
type Config struct {
	config.Base
	rabbitmq.Config

	// RetryDelay is how long a failed message waits before its next attempt.
	RetryDelay time.Duration `env:"NOTIFIER_RETRY_DELAY" envDefault:"5s"`
	// MaxAttempts bounds the attempts per message, the first included; after the last failure
	// the message goes to the dead-letter queue.
	MaxAttempts int `env:"NOTIFIER_MAX_ATTEMPTS" envDefault:"5"`
	// RecentLimit is how many sent notifications are remembered, for deduplication and for
	// GET /v1/notifications/{order_id}.
	RecentLimit int `env:"NOTIFIER_RECENT_LIMIT" envDefault:"10000"`
	// FailureRate is the probability, from 0 to 1, that sending a notification fails
	// transiently; above 0 it shows retries and the dead-letter queue at work.
	FailureRate float64 `env:"NOTIFIER_FAILURE_RATE" envDefault:"0"`
	// JournalPath is a file where sent notifications are also written, so that a restarted
	// notifier still recognises the orders it notified before; its directory must exist and be
	// writable. Empty keeps them in memory only: a restart forgets them. `make run` sets it under
	// the brokers' state directory, the cluster on a volume (services/notifier/README.md).
	JournalPath string `env:"NOTIFIER_JOURNAL_PATH"`

	// Exchange is where order-api publishes OrderPlaced; Queue is the notifier's work queue (its
	// retry and dead-letter queues are named after it). Overridable so that several copies of the
	// system can share one broker, as the end-to-end test does.
	Exchange string `env:"RABBITMQ_EXCHANGE" envDefault:"orders"`
	Queue    string `env:"NOTIFIER_QUEUE" envDefault:"notifier.order-placed"`
	// QueueType is the type of those queues: quorum, or classic to measure what quorum costs
	// (`make bench BENCH_ARGS='-queue quorum,classic'`). A queue's type cannot change once it is
	// declared: a new type needs a new NOTIFIER_QUEUE, or the old queue deleted.
	QueueType string `env:"NOTIFIER_QUEUE_TYPE" envDefault:"quorum"`
}

// Module provides the parts of Config that the notifier's packages take.
var Module = fx.Module("config",
	fx.Provide(Config.RabbitMQ, Config.Consume, Config.Notify),
)

// Validate checks what the env tags cannot; every error names its variable.
func (c Config) Validate() error {
	var errs []error
	if c.RetryDelay < time.Millisecond || c.RetryDelay > MaxRetryDelay || c.RetryDelay%time.Millisecond != 0 {
		errs = append(errs, varError("NOTIFIER_RETRY_DELAY", "%s is not a whole number of milliseconds in [1ms, %s]", c.RetryDelay, MaxRetryDelay))
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > MaxAttempts {
		errs = append(errs, varError("NOTIFIER_MAX_ATTEMPTS", "%d is outside [1, %d]", c.MaxAttempts, MaxAttempts))
	}
	if c.RecentLimit < 1 || c.RecentLimit > MaxRecentLimit {
		errs = append(errs, varError("NOTIFIER_RECENT_LIMIT", "%d is outside [1, %d]", c.RecentLimit, MaxRecentLimit))
	}
	if math.IsNaN(c.FailureRate) || c.FailureRate < 0 || c.FailureRate > 1 {
		errs = append(errs, varError("NOTIFIER_FAILURE_RATE", "%v is outside [0, 1]", c.FailureRate))
	}
	// rabbitmq.Config's own errors already name their variables (RABBITMQ_*).
	if c.Exchange == "" {
		errs = append(errs, varError("RABBITMQ_EXCHANGE", "must not be empty"))
	}
	if c.Queue == "" {
		errs = append(errs, varError("NOTIFIER_QUEUE", "must not be empty"))
	}
	if c.QueueType != string(rabbitmq.QueueQuorum) && c.QueueType != string(rabbitmq.QueueClassic) {
		errs = append(errs, varError("NOTIFIER_QUEUE_TYPE", "%q is neither quorum nor classic", c.QueueType))
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func varError(name, format string, args ...any) error {
	return &config.VarError{Var: name, Err: fmt.Errorf(format, args...)}
}

// RabbitMQ is the configuration of the broker connection, named after the service unless
// RABBITMQ_CONNECTION_NAME says otherwise.
func (c Config) RabbitMQ() rabbitmq.Config {
	rc := c.Config
	if rc.ConnectionName == "" {
		rc.ConnectionName = "notifier"
	}
	return rc
}

// Consume is where OrderPlaced events come from and how failures are retried.
func (c Config) Consume() consume.Settings {
	return consume.Settings{
		Exchange:    c.Exchange,
		RoutingKey:  ordersv1.RoutingKey,
		Queue:       c.Queue,
		RetryDelay:  c.RetryDelay,
		MaxAttempts: c.MaxAttempts,
		QueueType:   rabbitmq.QueueType(c.QueueType),
	}
}

// Notify is what the notifier needs to send and remember notifications.
func (c Config) Notify() notify.Settings {
	return notify.Settings{RecentLimit: c.RecentLimit, FailureRate: c.FailureRate, JournalPath: c.JournalPath}
}
