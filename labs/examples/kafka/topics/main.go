// Command topics shows Kafka's topics and partitions through the admin API, and changes them:
// the cluster-side view of what the producer and consumer examples do.
//
//	go run ./labs/examples/kafka/topics                                   # every topic, its partition count
//	go run ./labs/examples/kafka/topics --topic orders.v1                 # partitions: leader, replicas, end offset
//	go run ./labs/examples/kafka/topics --topic orders.v1 --group analytics   # and the group's committed offsets, lag
//	go run ./labs/examples/kafka/topics --topic hello --partitions 6      # add partitions (never fewer)
//	go run ./labs/examples/kafka/topics --topic hello --delete
//	go run ./labs/examples/kafka/topics --delete-group hello-readers --delete-group other   # a group and its offsets
//	go run ./labs/examples/kafka/topics --topic orders.v1 --set retention.ms=604800000
//	go run ./labs/examples/kafka/topics --topic orders.v1 --unset retention.ms   # back to the broker's default
//
// Adding partitions changes where keys land — murmur2(key) modulo the partition count — so
// the events of one key may continue on another partition than before. That is why order-api
// refuses to start when orders.v1 has another partition count than it declares.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "topics:", err)
		os.Exit(1)
	}
}

func run() error {
	bootstrap := flag.String("bootstrap", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	topic := flag.String("topic", "", "topic to describe or change; empty: list every topic")
	partitions := flag.Int("partitions", 0, "grow --topic to this many partitions")
	del := flag.Bool("delete", false, "delete --topic and its messages")
	group := flag.String("group", "", "with --topic: also this consumer group's committed offset and lag per partition")
	timeout := flag.Duration("timeout", 15*time.Second, "deadline for the whole run")
	var sets, unsets []string
	flag.Func("set", "with --topic: set a topic config, name=value (repeatable)", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("want name=value, got %q", v)
		}
		sets = append(sets, v)
		return nil
	})
	flag.Func("unset", "with --topic: remove a topic config, so the broker's default applies again (repeatable)", func(v string) error {
		if v == "" || strings.Contains(v, "=") {
			return fmt.Errorf("want a config name, got %q", v)
		}
		unsets = append(unsets, v)
		return nil
	})
	var groups []string
	flag.Func("delete-group", "delete this consumer group and its committed offsets; none of its consumers may be running (repeatable)", func(v string) error {
		if v == "" {
			return fmt.Errorf("want a group name")
		}
		groups = append(groups, v)
		return nil
	})
	flag.Parse()
	if len(groups) > 0 && *topic != "" {
		return fmt.Errorf("--delete-group acts on groups alone: leave out --topic")
	}
	if *topic == "" && len(sets)+len(unsets) > 0 {
		return fmt.Errorf("--set and --unset need --topic")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": *bootstrap})
	if err != nil {
		return fmt.Errorf("create admin client: %w", err)
	}
	defer admin.Close()

	switch {
	case len(groups) > 0:
		return deleteGroups(ctx, admin, groups)
	case *topic == "":
		return list(ctx, admin)
	case *del:
		return deleteTopic(ctx, admin, *topic)
	case *partitions > 0:
		if err := grow(ctx, admin, *topic, *partitions); err != nil {
			return err
		}
	}
	if len(sets)+len(unsets) > 0 {
		if err := alterConfigs(ctx, admin, *topic, sets, unsets); err != nil {
			return err
		}
	}
	return describe(ctx, admin, *topic, *group)
}

// list prints every topic the cluster has, with its partition count; Kafka's own topics
// (__consumer_offsets, where groups commit their offsets) included.
func list(ctx context.Context, admin *kafka.AdminClient) error {
	deadline, _ := ctx.Deadline()
	md, err := admin.GetMetadata(nil, true, int(time.Until(deadline).Milliseconds()))
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	names := slices.Sorted(maps.Keys(md.Topics))
	for _, name := range names {
		fmt.Printf("%-40s %d partition(s)\n", name, len(md.Topics[name].Partitions))
	}
	return nil
}

// describe prints each partition of a topic: the broker leading it (all reads and writes go
// there), its replicas, and its end offset — how many messages were ever written to it. With a
// group, also where that group has committed to (the next offset it will read) and its lag, the
// records written that it has not processed yet: end offset minus committed offset. The lag is
// known from the broker alone, so it can be read while none of the group's consumers runs.
func describe(ctx context.Context, admin *kafka.AdminClient, topic, group string) error {
	res, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{topic}))
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	t := res.TopicDescriptions[0]
	if t.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("describe %s: %w", topic, t.Error)
	}
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, p := range t.Partitions {
		specs[kafka.TopicPartition{Topic: &topic, Partition: int32(p.Partition)}] = kafka.LatestOffsetSpec
	}
	offsets, err := admin.ListOffsets(ctx, specs)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	ends := map[int32]kafka.Offset{}
	for tp, info := range offsets.ResultInfos {
		ends[tp.Partition] = info.Offset
	}
	var committed map[int32]kafka.Offset
	if group != "" {
		if committed, err = committedOffsets(ctx, admin, topic, group, slices.Collect(maps.Keys(specs))); err != nil {
			return err
		}
	}
	fmt.Printf("topic %s: %d partition(s)\n", topic, len(t.Partitions))
	for _, p := range t.Partitions {
		leader := "none"
		if p.Leader != nil {
			leader = fmt.Sprint(p.Leader.ID)
		}
		end := ends[int32(p.Partition)]
		fmt.Printf("  partition %d: leader broker %s, %d replica(s), end offset %d",
			p.Partition, leader, len(p.Replicas), end)
		if group != "" {
			c, ok := committed[int32(p.Partition)]
			if ok && c >= 0 {
				fmt.Printf(", group %s committed %d, lag %d", group, c, max(0, end-c))
			} else {
				fmt.Printf(", group %s committed nothing", group)
			}
		}
		fmt.Println()
	}
	return printOverrides(ctx, admin, topic)
}

// printOverrides prints the configs set on the topic itself; every other config is the
// broker's default.
func printOverrides(ctx context.Context, admin *kafka.AdminClient, topic string) error {
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		return fmt.Errorf("configs of %s: %w", topic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("configs of %s: %w", topic, e)
	}
	var own []string
	for name, c := range res[0].Config {
		if c.Source == kafka.ConfigSourceDynamicTopic {
			own = append(own, name+"="+c.Value)
		}
	}
	slices.Sort(own)
	if len(own) == 0 {
		fmt.Println("  configs: the broker's defaults")
		return nil
	}
	fmt.Printf("  configs set on the topic: %s\n", strings.Join(own, ", "))
	return nil
}

// alterConfigs sets and removes topic configs in one incremental change: the configs it does
// not name keep their values.
func alterConfigs(ctx context.Context, admin *kafka.AdminClient, topic string, sets, unsets []string) error {
	var entries []kafka.ConfigEntry
	for _, kv := range sets {
		name, value, _ := strings.Cut(kv, "=")
		entries = append(entries, kafka.ConfigEntry{Name: name, Value: value, IncrementalOperation: kafka.AlterConfigOpTypeSet})
	}
	for _, name := range unsets {
		entries = append(entries, kafka.ConfigEntry{Name: name, IncrementalOperation: kafka.AlterConfigOpTypeDelete})
	}
	res, err := admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic, Config: entries}})
	if err != nil {
		return fmt.Errorf("change configs of %s: %w", topic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("change configs of %s: %w", topic, e)
	}
	return nil
}

// committedOffsets asks the group's coordinator where the group has committed to on each
// partition: the offset of the next record it will read (kafka.OffsetInvalid when nothing).
func committedOffsets(ctx context.Context, admin *kafka.AdminClient, topic, group string, partitions []kafka.TopicPartition) (map[int32]kafka.Offset, error) {
	res, err := admin.ListConsumerGroupOffsets(ctx,
		[]kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: partitions}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	out := map[int32]kafka.Offset{}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return nil, fmt.Errorf("committed offset of group %s on %s partition %d: %w", group, topic, tp.Partition, tp.Error)
			}
			out[tp.Partition] = tp.Offset
		}
	}
	return out, nil
}

// grow adds partitions to a topic. Kafka cannot remove partitions: their messages would be lost.
func grow(ctx context.Context, admin *kafka.AdminClient, topic string, total int) error {
	res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: total}})
	if err != nil {
		return fmt.Errorf("add partitions to %s: %w", topic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("add partitions to %s: %w", topic, e)
	}
	fmt.Printf("topic %s: now %d partitions\n", topic, total)
	return nil
}

func deleteTopic(ctx context.Context, admin *kafka.AdminClient, topic string) error {
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil {
		return fmt.Errorf("delete %s: %w", topic, err)
	}
	if e := res[0].Error; e.Code() != kafka.ErrNoError {
		return fmt.Errorf("delete %s: %w", topic, e)
	}
	fmt.Printf("topic %s: deleted\n", topic)
	return nil
}

// deleteGroups deletes consumer groups with their committed offsets. The broker refuses a group
// that still has members (GROUP_NOT_EMPTY): stop its consumers first. Each group is reported.
func deleteGroups(ctx context.Context, admin *kafka.AdminClient, groups []string) error {
	res, err := admin.DeleteConsumerGroups(ctx, groups)
	if err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	var failed []error
	for _, g := range res.ConsumerGroupResults {
		if g.Error.Code() != kafka.ErrNoError {
			failed = append(failed, fmt.Errorf("group %s: %w", g.Group, g.Error))
			continue
		}
		fmt.Printf("group %s: deleted\n", g.Group)
	}
	return errors.Join(failed...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
