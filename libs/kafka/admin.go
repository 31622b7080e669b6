package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrTopicMismatch is returned by EnsureTopic when the topic exists with another partition count.
// Kafka cannot shrink a topic, and growing it would move keys to other partitions, so the
// difference is reported instead of repaired.
var ErrTopicMismatch = errors.New("kafka: existing topic differs from its declaration")

// TopicSpec declares a topic.
type TopicSpec struct {
	Name string
	// Partitions is the partition count; 0 leaves it to the broker's num.partitions.
	Partitions int
	// ReplicationFactor is the number of replicas; 0 leaves it to the broker's default.
	ReplicationFactor int
	// Config holds topic-level settings such as "retention.ms" or "min.insync.replicas".
	Config map[string]string
}

// Admin declares and deletes topics. It is safe for concurrent use.
type Admin struct {
	cfg Config

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
	client *ckafka.AdminClient
}

// NewAdmin connects an admin client of its own. Services that already hold a Producer should use
// Producer.Admin, which shares the producer's connections.
func NewAdmin(cfg Config) (*Admin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: admin config: %w", err)
	}
	conf := commonConfig(cfg)
	client, err := ckafka.NewAdminClient(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka: create admin client: %w", err)
	}
	return &Admin{cfg: cfg, client: client}, nil
}

// EnsureTopic creates the topic unless it exists. An existing topic is accepted when its
// partition count matches the spec; otherwise the error wraps ErrTopicMismatch. The call returns
// by ctx's deadline (or Config.RequestTimeout when ctx has none).
func (a *Admin) EnsureTopic(ctx context.Context, spec TopicSpec) error {
	if spec.Name == "" {
		return errors.New("kafka: ensure topic: empty name")
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return fmt.Errorf("kafka: ensure topic %s: %w", spec.Name, ErrClosed)
	}

	ms, err := timeoutMillis(ctx, a.cfg.RequestTimeout)
	if err != nil {
		return fmt.Errorf("kafka: ensure topic %s: %w", spec.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, millis(ms))
	defer cancel()

	partitions := spec.Partitions
	if partitions == 0 {
		partitions = -1
	}
	// The operation timeout makes the controller answer only once the topic exists, so a
	// producer started right after EnsureTopic finds it.
	results, err := a.client.CreateTopics(ctx, []ckafka.TopicSpecification{{
		Topic:             spec.Name,
		NumPartitions:     partitions,
		ReplicationFactor: spec.ReplicationFactor,
		Config:            spec.Config,
	}}, ckafka.SetAdminOperationTimeout(millis(ms)), ckafka.SetAdminRequestTimeout(millis(ms)))
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", spec.Name, err)
	}
	if len(results) != 1 {
		return fmt.Errorf("kafka: create topic %s: got %d results", spec.Name, len(results))
	}
	switch code := results[0].Error.Code(); code {
	case ckafka.ErrNoError:
		return nil
	case ckafka.ErrTopicAlreadyExists:
		return a.checkPartitions(ctx, spec)
	default:
		return fmt.Errorf("kafka: create topic %s: %w", spec.Name, results[0].Error)
	}
}

// checkPartitions compares an existing topic with spec. The topic may have been created a
// moment ago by another client declaring it too (order-api and analytics both do, and may start
// together): CreateTopics already says it exists while the metadata still says unknown topic or
// no leader. Those answers are asked again until ctx's deadline.
func (a *Admin) checkPartitions(ctx context.Context, spec TopicSpec) error {
	if spec.Partitions == 0 {
		return nil
	}
	for {
		ms, err := timeoutMillis(ctx, a.cfg.RequestTimeout)
		if err != nil {
			return fmt.Errorf("kafka: describe topic %s: %w", spec.Name, err)
		}
		md, err := a.client.GetMetadata(&spec.Name, false, ms)
		if err != nil {
			return fmt.Errorf("kafka: describe topic %s: %w", spec.Name, err)
		}
		topic, ok := md.Topics[spec.Name]
		if !ok {
			return fmt.Errorf("kafka: describe topic %s: not in metadata", spec.Name)
		}
		switch topic.Error.Code() {
		case ckafka.ErrNoError:
			if got := len(topic.Partitions); got != spec.Partitions {
				return fmt.Errorf("%w: topic %s has %d partitions, declared %d",
					ErrTopicMismatch, spec.Name, got, spec.Partitions)
			}
			return nil
		case ckafka.ErrUnknownTopicOrPart, ckafka.ErrLeaderNotAvailable:
			select {
			case <-ctx.Done():
				return fmt.Errorf("kafka: describe topic %s: %w (%w)", spec.Name, topic.Error, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return fmt.Errorf("kafka: describe topic %s: %w", spec.Name, topic.Error)
		}
	}
}

// DeleteTopics deletes the named topics; topics that do not exist are ignored.
func (a *Admin) DeleteTopics(ctx context.Context, names ...string) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return fmt.Errorf("kafka: delete topics %v: %w", names, ErrClosed)
	}
	ms, err := timeoutMillis(ctx, a.cfg.RequestTimeout)
	if err != nil {
		return fmt.Errorf("kafka: delete topics %v: %w", names, err)
	}
	ctx, cancel := context.WithTimeout(ctx, millis(ms))
	defer cancel()
	results, err := a.client.DeleteTopics(ctx, names,
		ckafka.SetAdminOperationTimeout(millis(ms)), ckafka.SetAdminRequestTimeout(millis(ms)))
	if err != nil {
		return fmt.Errorf("kafka: delete topics %v: %w", names, err)
	}
	var errs []error
	for _, r := range results {
		if code := r.Error.Code(); code != ckafka.ErrNoError && code != ckafka.ErrUnknownTopicOrPart {
			errs = append(errs, fmt.Errorf("kafka: delete topic %s: %w", r.Topic, r.Error))
		}
	}
	return errors.Join(errs...)
}

// Close releases the admin client after in-flight calls returned. It is idempotent.
func (a *Admin) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	a.client.Close()
}
