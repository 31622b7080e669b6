package consume

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// Settings say what to consume.
type Settings struct {
	// GroupID is the consumer group (ANALYTICS_GROUP_ID).
	GroupID string
	// Topic is the topic of OrderPlaced events (KAFKA_TOPIC).
	Topic string
	// LagRefreshInterval is how often the lag gauge is refreshed (LAG_REFRESH_INTERVAL).
	LagRefreshInterval time.Duration
	// TopicPartitions and TopicReplication declare Topic when it does not exist yet
	// (KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION); 0 leaves it undeclared.
	TopicPartitions, TopicReplication int
}

// NewConsumer returns the group member that feeds s.Topic to h; it joins the group on Start.
func NewConsumer(cfg kafka.Config, s Settings, h *Handler, log *zap.Logger) (*kafka.Consumer, error) {
	return kafka.NewConsumer(cfg, kafka.ConsumerOptions{
		GroupID:    s.GroupID,
		Topics:     []string{s.Topic},
		Handler:    h.Handle,
		OnAssigned: h.Assigned,
		OnRevoked:  h.Revoked,
		OnLost:     h.Lost,
	}, log)
}

// Module consumes the orders topic into the graph's *stats.Stats. It needs a kafka.Config and
// Settings, and contributes the readiness checks "kafka" (the consumer runs and a broker
// answers) and "stats" (the replica is in its group and no owned partition is being rebuilt).
var Module = fx.Module("consume",
	fx.Provide(
		NewMetrics,
		func(s *stats.Stats, m *Metrics, log *zap.Logger) *Handler { return NewHandler(s, m, log, time.Now) },
		provideConsumer,
		provideLagMonitor,
		fx.Private,
	),
	fx.Provide(
		admin.AsCheck(func(c *kafka.Consumer) admin.Check { return admin.Check{Name: "kafka", Check: c.Ready} }),
		admin.AsCheck(func(h *Handler) admin.Check { return admin.Check{Name: "stats", Check: h.Ready} }),
	),
	fx.Invoke(func(*LagMonitor) {}),
)

// provideConsumer joins the group on start and leaves it on stop, marking the stats stopping
// first. A consumer that fails on its
// own (a fatal client error) shuts the service down with exit status 1, so that it is restarted
// instead of serving stats that no longer move.
func provideConsumer(lc fx.Lifecycle, sd fx.Shutdowner, cfg kafka.Config, s Settings, h *Handler, st *stats.Stats, log *zap.Logger) (*kafka.Consumer, error) {
	c, err := NewConsumer(cfg, s, h, log)
	if err != nil {
		return nil, err
	}
	var stopping atomic.Bool
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			// Without its topic the group assigns nothing, and the replica would wait, not
			// ready, for whoever creates it: declared here as order-api declares it.
			if err := ensureTopic(ctx, cfg, s); err != nil {
				return err
			}
			if err := c.Start(ctx); err != nil {
				return err
			}
			// Ends when the consumer does, which Stop guarantees.
			go func() {
				<-c.Done()
				if err := c.Err(); err != nil && !stopping.Load() {
					log.Error("kafka consumer failed; shutting down", zap.Error(err))
					_ = sd.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			stopping.Store(true)
			// Not ready from here on: the partitions given back while leaving the group would
			// otherwise leave a 200 with fewer orders, and finally none.
			st.Stop()
			return c.Stop(ctx)
		},
	})
	return c, nil
}

// ensureTopic creates s.Topic unless it exists, with an admin client of its own closed at once.
func ensureTopic(ctx context.Context, cfg kafka.Config, s Settings) error {
	if s.TopicPartitions == 0 {
		return nil
	}
	admin, err := kafka.NewAdmin(cfg)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	spec := kafka.TopicSpec{Name: s.Topic, Partitions: s.TopicPartitions, ReplicationFactor: s.TopicReplication}
	if err := admin.EnsureTopic(ctx, spec); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	return nil
}

// provideLagMonitor starts the monitor after the consumer and so stops it before.
func provideLagMonitor(lc fx.Lifecycle, c *kafka.Consumer, h *Handler, m *Metrics, s Settings, log *zap.Logger) *LagMonitor {
	lm := NewLagMonitor(c.Lag, h, m, s.LagRefreshInterval, log)
	lc.Append(fx.StartStopHook(lm.Start, lm.Stop))
	return lm
}
