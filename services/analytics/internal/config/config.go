// Package config is the analytics service's configuration: the platform's shared settings, the
// Kafka client settings and its own, read once from the environment at start-up.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/consume"
)

// Bounds of LAG_REFRESH_INTERVAL. Each refresh asks the group coordinator and the partition
// leaders for offsets, so more often than every 100ms only loads the broker; less often than a
// minute makes the lag gauge useless for watching a rebalance.
const (
	MinLagRefreshInterval = 100 * time.Millisecond
	MaxLagRefreshInterval = time.Minute
)

// Config is the analytics service's configuration.
type Config struct {
	config.Base
	kafka.Config

	// HTTPAddr is where GET /v1/stats is served.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8081"`
	// GroupID is the Kafka consumer group; replicas in the same group share the partitions.
	GroupID string `env:"ANALYTICS_GROUP_ID" envDefault:"analytics"`
	// Topic is the topic of OrderPlaced events (ordersv1.Topic).
	Topic string `env:"KAFKA_TOPIC" envDefault:"orders.v1"`
	// TopicPartitions and TopicReplication declare the topic when it does not exist yet, with
	// the same variables and defaults as order-api, which declares it too: whichever starts
	// first creates it, and an existing topic with another partition count stops start-up.
	TopicPartitions  int `env:"KAFKA_TOPIC_PARTITIONS" envDefault:"3"`
	TopicReplication int `env:"KAFKA_TOPIC_REPLICATION" envDefault:"1"`
	// LagRefreshInterval is how often the consumer-lag gauge is refreshed from the broker.
	LagRefreshInterval time.Duration `env:"LAG_REFRESH_INTERVAL" envDefault:"5s"`
}

// Validate checks what the env tags cannot; every error names its variable.
func (c Config) Validate() error {
	var errs []error
	if err := config.CheckAddr("HTTP_ADDR", c.HTTPAddr); err != nil {
		errs = append(errs, err)
	}
	if c.GroupID == "" {
		errs = append(errs, &config.VarError{Var: "ANALYTICS_GROUP_ID", Err: errors.New("must not be empty")})
	}
	if c.Topic == "" {
		errs = append(errs, &config.VarError{Var: "KAFKA_TOPIC", Err: errors.New("must not be empty")})
	}
	if c.TopicPartitions < 1 {
		errs = append(errs, &config.VarError{Var: "KAFKA_TOPIC_PARTITIONS", Err: fmt.Errorf("must be at least 1, got %d", c.TopicPartitions)})
	}
	if c.TopicReplication < 1 {
		errs = append(errs, &config.VarError{Var: "KAFKA_TOPIC_REPLICATION", Err: fmt.Errorf("must be at least 1, got %d", c.TopicReplication)})
	}
	if c.LagRefreshInterval < MinLagRefreshInterval || c.LagRefreshInterval > MaxLagRefreshInterval {
		errs = append(errs, &config.VarError{Var: "LAG_REFRESH_INTERVAL", Err: fmt.Errorf("%s is outside [%s, %s]",
			c.LagRefreshInterval, MinLagRefreshInterval, MaxLagRefreshInterval)})
	}
	// kafka.Config's own errors already name their variables (KAFKA_*).
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// HTTPServer is the configuration of the stats API server.
func (c Config) HTTPServer() httpserver.Config { return httpserver.Config{Addr: c.HTTPAddr} }

// Kafka is the configuration of the Kafka client.
func (c Config) Kafka() kafka.Config { return c.Config }

// Consume is what the consumer of OrderPlaced events needs to know.
func (c Config) Consume() consume.Settings {
	return consume.Settings{
		GroupID: c.GroupID, Topic: c.Topic, LagRefreshInterval: c.LagRefreshInterval,
		TopicPartitions: c.TopicPartitions, TopicReplication: c.TopicReplication,
	}
}
