// Package config is order-api's configuration: the platform's shared settings, the Kafka and
// RabbitMQ client settings, the PostgreSQL store of Idempotency-Keys, and order-api's own, read
// once from the environment at start-up.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
)

// ServiceName names order-api to the brokers (the AMQP connection name) when the environment
// does not.
const ServiceName = "order-api"

// Config is order-api's configuration.
type Config struct {
	config.Base

	// Kafka holds the KAFKA_* client settings (bootstrap servers, timeouts, compression, …).
	Kafka kafka.Config
	// RabbitMQ holds the RABBITMQ_* client settings (URL, timeouts, publisher pool, …).
	RabbitMQ rabbitmq.Config

	// HTTPAddr is where POST /v1/orders is served.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`

	// ValidatorAddr is the validator's gRPC address, host:port.
	ValidatorAddr string `env:"VALIDATOR_ADDR" envDefault:"127.0.0.1:50051"`
	// ValidatorTimeout is the deadline of one ValidateOrder call; past it the order is answered
	// with 503.
	ValidatorTimeout time.Duration `env:"VALIDATOR_TIMEOUT" envDefault:"2s"`

	// PublishTimeout is the one deadline shared by the Kafka and the RabbitMQ publish of an
	// order; an order not confirmed by both within it is answered with 503.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"5s"`
	// RetryAfter is what the Retry-After header of a 503 asks clients to wait (whole seconds).
	RetryAfter time.Duration `env:"RETRY_AFTER" envDefault:"1s"`

	// KafkaTopic is the topic OrderPlaced events are published to; order-api declares it.
	KafkaTopic string `env:"KAFKA_TOPIC" envDefault:"orders.v1"`
	// KafkaTopicPartitions is the partition count the topic is declared with. An existing topic
	// with another count stops start-up: changing it would move order_ids to other partitions.
	KafkaTopicPartitions int `env:"KAFKA_TOPIC_PARTITIONS" envDefault:"3"`
	// KafkaTopicReplication is the replication factor the topic is created with.
	KafkaTopicReplication int `env:"KAFKA_TOPIC_REPLICATION" envDefault:"1"`

	// RabbitMQExchange is the topic exchange OrderPlaced events are published to; order-api
	// declares it (durable).
	RabbitMQExchange string `env:"RABBITMQ_EXCHANGE" envDefault:"orders"`

	// PostgresURL is the libpq URL of the PostgreSQL database holding the Idempotency-Keys,
	// postgres://user:password@host:port/database?sslmode=…. Like the brokers' addresses it
	// defaults to the database `make brokers` runs (whose password is a fixed development one,
	// as RabbitMQ's guest is); order-api does not start without it, since without the store it
	// could not keep the Idempotency-Key contract.
	PostgresURL string `env:"POSTGRES_URL" envDefault:"postgres://backend_prep:backend_prep@127.0.0.1:5432/backend_prep?sslmode=disable"`
	// PostgresPasswordFile, when set, is a file holding the password (a mounted Secret); it
	// replaces any password in PostgresURL.
	PostgresPasswordFile string `env:"POSTGRES_PASSWORD_FILE"`
	// PostgresTimeout bounds every query; a store that does not answer within it fails the
	// order with 503.
	PostgresTimeout time.Duration `env:"POSTGRES_TIMEOUT" envDefault:"2s"`
	// IdempotencyKeyRetention is how long a key stays bound to its first request.
	IdempotencyKeyRetention time.Duration `env:"IDEMPOTENCY_KEY_RETENTION" envDefault:"24h"`
}

// validTopic is what Kafka accepts as a topic name.
var validTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks what the env tags cannot; every error names its variable.
func (c Config) Validate() error {
	var errs []error
	add := func(variable string, format string, args ...any) {
		errs = append(errs, &config.VarError{Var: variable, Err: fmt.Errorf(format, args...)})
	}
	for _, a := range []struct{ name, value string }{
		{"HTTP_ADDR", c.HTTPAddr},
		{"VALIDATOR_ADDR", c.ValidatorAddr},
	} {
		if err := config.CheckAddr(a.name, a.value); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"VALIDATOR_TIMEOUT", c.ValidatorTimeout},
		{"PUBLISH_TIMEOUT", c.PublishTimeout},
		{"POSTGRES_TIMEOUT", c.PostgresTimeout},
		{"IDEMPOTENCY_KEY_RETENTION", c.IdempotencyKeyRetention},
	} {
		if d.value <= 0 {
			add(d.name, "must be positive, got %s", d.value)
		}
	}
	// Every step runs inside one request, which the HTTP server cuts off at its write timeout:
	// claiming the key, validating, publishing, recording the outcome.
	if budget := c.requestBudget(); budget >= httpserver.WriteTimeout {
		add("PUBLISH_TIMEOUT", "VALIDATOR_TIMEOUT + PUBLISH_TIMEOUT + 2 × POSTGRES_TIMEOUT (%s) must stay below the HTTP write timeout (%s)",
			budget, httpserver.WriteTimeout)
	}
	if _, err := pgxpool.ParseConfig(c.PostgresURL); err != nil {
		add("POSTGRES_URL", "is not a libpq connection URL: %v", err)
	}
	if c.RetryAfter < time.Second || c.RetryAfter%time.Second != 0 {
		add("RETRY_AFTER", "must be a whole number of seconds, at least 1s, got %s", c.RetryAfter)
	}
	if !validTopic.MatchString(c.KafkaTopic) {
		add("KAFKA_TOPIC", "%q is not a Kafka topic name (1 to 249 characters of a-z, A-Z, 0-9, '.', '_', '-')", c.KafkaTopic)
	}
	if c.KafkaTopicPartitions < 1 {
		add("KAFKA_TOPIC_PARTITIONS", "must be at least 1, got %d", c.KafkaTopicPartitions)
	}
	if c.KafkaTopicReplication < 1 {
		add("KAFKA_TOPIC_REPLICATION", "must be at least 1, got %d", c.KafkaTopicReplication)
	}
	if n := len(strings.TrimSpace(c.RabbitMQExchange)); n == 0 || len(c.RabbitMQExchange) > 255 {
		add("RABBITMQ_EXCHANGE", "must be 1 to 255 characters, not only spaces, got %q", c.RabbitMQExchange)
	}
	errs = append(errs, flatten(c.Kafka.Validate())...)
	errs = append(errs, flatten(c.RabbitMQ.Validate())...)
	return errors.Join(errs...)
}

// requestBudget is the longest one order can take: the store is asked twice (claim and outcome).
func (c Config) requestBudget() time.Duration {
	return c.ValidatorTimeout + c.PublishTimeout + 2*c.PostgresTimeout
}

// flatten unpacks a joined error, so that the platform reports each problem on the same line.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}

// Module hands the parts of Config to the modules that take their own configuration types.
var Module = fx.Module("config",
	fx.Provide(
		HTTPServer,
		Kafka,
		RabbitMQ,
		Idempotency,
	),
)

// HTTPServer is the configuration of the platform's HTTP server.
func HTTPServer(c Config) httpserver.Config { return httpserver.Config{Addr: c.HTTPAddr} }

// Kafka is the configuration of the Kafka producer.
func Kafka(c Config) kafka.Config { return c.Kafka }

// RabbitMQ is the configuration of the RabbitMQ connection; it names the connection after the
// service unless RABBITMQ_CONNECTION_NAME does.
func RabbitMQ(c Config) rabbitmq.Config {
	r := c.RabbitMQ
	if r.ConnectionName == "" {
		r.ConnectionName = ServiceName
	}
	return r
}

// Idempotency is the configuration of the Idempotency-Key store. A claim is considered
// abandoned once no request could still be running: after the HTTP write timeout, which every
// request's budget stays below.
func Idempotency(c Config) idempotency.Config {
	return idempotency.Config{
		URL:          c.PostgresURL,
		PasswordFile: c.PostgresPasswordFile,
		Options: idempotency.Options{
			Retention:    c.IdempotencyKeyRetention,
			Lease:        httpserver.WriteTimeout,
			QueryTimeout: c.PostgresTimeout,
		},
	}
}
