package kafka

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
)

// ErrClosed is returned by calls made after Close (or Stop) began.
var ErrClosed = errors.New("kafka: client closed")

// commonConfig returns the librdkafka settings every client type shares.
func commonConfig(cfg Config) ckafka.ConfigMap {
	m := ckafka.ConfigMap{
		"bootstrap.servers":                  cfg.BootstrapServers,
		"client.id":                          cfg.ClientID,
		"topic.metadata.refresh.interval.ms": int(cfg.MetadataRefreshInterval.Milliseconds()),
	}
	if cfg.Debug != "" {
		m["debug"] = cfg.Debug
	}
	return m
}

// timeoutMillis turns the time left until ctx's deadline into the millisecond timeout that
// librdkafka's blocking calls take, so that they return by the caller's deadline. Without a
// deadline the fallback applies: every network call stays bounded.
func timeoutMillis(ctx context.Context, fallback time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d := fallback
	if deadline, ok := ctx.Deadline(); ok {
		d = time.Until(deadline)
	}
	ms := int(d.Milliseconds())
	if ms < 1 {
		return 0, context.DeadlineExceeded
	}
	return ms, nil
}

// ping asks the cluster for its broker list, which needs a working connection to one broker.
func ping(ctx context.Context, cfg Config, getMetadata func(*string, bool, int) (*ckafka.Metadata, error)) error {
	ms, err := timeoutMillis(ctx, cfg.RequestTimeout)
	if err != nil {
		return fmt.Errorf("kafka: ping %s: %w", cfg.BootstrapServers, err)
	}
	md, err := getMetadata(nil, false, ms)
	if err != nil {
		return fmt.Errorf("kafka: ping %s: %w", cfg.BootstrapServers, err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("kafka: ping %s: cluster reported no brokers", cfg.BootstrapServers)
	}
	return nil
}

// newLogChannel is the channel librdkafka's log lines reach Go through ("go.logs.channel").
// Without one the Go client makes its own of 10,000 entries, about 1 MB of heap for each client:
// a fifth of order-api's live heap, for a few lines a minute. When the channel is full the
// client's log poller waits, and the lines wait in librdkafka's own queue: none is lost. The
// client does not close a channel it was given: its owner closes it once the client's Close
// returned, since Close waits for the poller.
func newLogChannel() chan ckafka.LogEvent {
	return make(chan ckafka.LogEvent, 256)
}

// logLibrdkafka forwards one librdkafka log line, mapping its syslog level onto zap's.
func logLibrdkafka(log *zap.Logger, ev ckafka.LogEvent) {
	fields := []zap.Field{zap.String("client", ev.Name), zap.String("tag", ev.Tag)}
	switch {
	case ev.Level <= 3:
		log.Error(ev.Message, fields...)
	case ev.Level == 4:
		log.Warn(ev.Message, fields...)
	case ev.Level <= 6:
		log.Info(ev.Message, fields...)
	default:
		log.Debug(ev.Message, fields...)
	}
}

// logVersion records which client and librdkafka build the binary carries: with a cgo client
// that is the first thing to know when a broker behaves unexpectedly.
func logVersion(log *zap.Logger) {
	_, librdkafka := ckafka.LibraryVersion()
	client := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == clientModule {
				client = dep.Version
			}
		}
	}
	log.Info("kafka client loaded",
		zap.String("confluent_kafka_go", client),
		zap.String("librdkafka", librdkafka),
		zap.String("librdkafka_link", ckafka.LibrdkafkaLinkInfo))
}

const clientModule = "github.com/confluentinc/confluent-kafka-go/v2"

func millis(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
