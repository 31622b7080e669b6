package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Step 4, Kafka: order-api produces every order to the topic "orders.v1" (key = order_id);
// analytics reads it as the consumer group "analytics", counts the orders and commits offsets.

const (
	ordersTopic    = "orders.v1"
	analyticsGroup = "analytics"
)

// kafkaRun is what the checks of step 4 share: one admin client, and what they learnt.
type kafkaRun struct {
	cfg        config
	admin      *kafka.AdminClient // nil until a broker answered it
	partitions []int32            // of the orders topic; nil until known
}

func kafkaChecks(cfg config) ([]check, func()) {
	k := &kafkaRun{cfg: cfg}
	return []check{
		{
			name: "Kafka answers at " + cfg.kafka,
			run:  k.brokerAnswers,
			hint: hintKafka,
		},
		{
			name: "topic " + ordersTopic + " exists",
			run:  k.topicExists,
			hint: "order-api declares it when it starts (the producer owns its topic): " + hintOrderAPI,
		},
		{
			name: "consumer group " + analyticsGroup + " has members",
			run:  k.groupHasMembers,
			hint: hintAnalytics,
		},
		{
			name: "an order posted to order-api is counted by analytics",
			run:  k.orderCounted,
			hint: hintAnalytics,
		},
		{
			name: "consumer group " + analyticsGroup + " has committed offsets on " + ordersTopic,
			run:  k.groupCommitted,
			hint: "analytics commits what it has read every second; " + hintAnalytics,
		},
	}, k.close
}

// brokerAnswers creates the admin client the other checks use and asks the cluster to
// describe itself, which needs a working connection to a broker.
func (k *kafkaRun) brokerAnswers(ctx context.Context) (string, error) {
	admin, cluster, err := describeCluster(ctx, k.cfg.kafka)
	if err != nil {
		return "", err
	}
	k.admin = admin
	return fmt.Sprintf("%d broker(s)", len(cluster.Nodes)), nil
}

// describeCluster creates an admin client for the brokers at bootstrap and asks the cluster to
// describe itself. On success the caller owns the client and closes it.
func describeCluster(ctx context.Context, bootstrap string) (*kafka.AdminClient, kafka.DescribeClusterResult, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap,
		"client.id":         "selfcheck",
		// librdkafka would also print every failed connection attempt; the FAIL lines say it.
		"log_level": 2,
	})
	if err != nil {
		return nil, kafka.DescribeClusterResult{}, fmt.Errorf("create a Kafka admin client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cluster, err := admin.DescribeCluster(ctx, kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		admin.Close()
		return nil, kafka.DescribeClusterResult{}, fmt.Errorf("describe the cluster: %w", err)
	}
	return admin, cluster, nil
}

// topicExists describes the topic: its partitions, and that each has a leader to write to.
func (k *kafkaRun) topicExists(ctx context.Context) (string, error) {
	if k.admin == nil {
		return "", blocked("a Kafka broker that answers")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := k.admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{ordersTopic}),
		kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return "", fmt.Errorf("describe topic %s: %w", ordersTopic, err)
	}
	if len(res.TopicDescriptions) != 1 {
		return "", fmt.Errorf("describe topic %s: got %d descriptions", ordersTopic, len(res.TopicDescriptions))
	}
	topic := res.TopicDescriptions[0]
	if topic.Error.Code() != kafka.ErrNoError {
		return "", fmt.Errorf("describe topic %s: %w", ordersTopic, topic.Error)
	}
	var partitions []int32
	for _, p := range topic.Partitions {
		if p.Leader == nil {
			return "", withHint(fmt.Errorf("partition %d has no leader, so nobody can write to it", p.Partition),
				"the broker is still starting or lost its data: "+hintKafka)
		}
		partitions = append(partitions, int32(p.Partition))
	}
	slices.Sort(partitions)
	k.partitions = partitions
	return fmt.Sprintf("%d partitions", len(partitions)), nil
}

// groupHasMembers describes the consumer group: who is in it, and which partitions each owns.
func (k *kafkaRun) groupHasMembers(ctx context.Context) (string, error) {
	if k.admin == nil {
		return "", blocked("a Kafka broker that answers")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := k.admin.DescribeConsumerGroups(ctx, []string{analyticsGroup}, kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return "", fmt.Errorf("describe group %s: %w", analyticsGroup, err)
	}
	if len(res.ConsumerGroupDescriptions) != 1 {
		return "", fmt.Errorf("describe group %s: got %d descriptions", analyticsGroup, len(res.ConsumerGroupDescriptions))
	}
	group := res.ConsumerGroupDescriptions[0]
	if group.Error.Code() != kafka.ErrNoError {
		return "", fmt.Errorf("describe group %s: %w", analyticsGroup, group.Error)
	}
	if len(group.Members) == 0 {
		return "", fmt.Errorf("the group has no member (state %s): nobody reads %s for analytics", group.State, ordersTopic)
	}
	owned := make([]string, len(group.Members))
	for i, m := range group.Members {
		var parts []int32
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.Topic != nil && *tp.Topic == ordersTopic {
				parts = append(parts, tp.Partition)
			}
		}
		slices.Sort(parts)
		owned[i] = fmt.Sprint(parts)
	}
	return fmt.Sprintf("%s, %d member(s) owning partitions %s", group.State, len(group.Members), strings.Join(owned, " ")), nil
}

// orderCounted places an order and waits until analytics counts one more order than before.
// With several analytics replicas, each counts only the partitions it owns; the partition of an
// order follows from its key, so orders that another replica counts are skipped and another
// is placed, up to maxOrders.
func (k *kafkaRun) orderCounted(ctx context.Context) (string, error) {
	for placed := 1; ; placed++ {
		before, err := getStats(ctx, k.cfg.stats)
		if err != nil {
			return "", fmt.Errorf("read the stats before placing an order: %w", err)
		}
		if len(before.Partitions) == 0 {
			return "", withHint(fmt.Errorf("this analytics replica owns no partition of %s", ordersTopic),
				"it is still joining the group, or other replicas own every partition: wait a few seconds, or scale analytics to 1")
		}
		o, err := placeOrder(ctx, k.cfg.orderAPI, newIdempotencyKey())
		if err != nil {
			return "", withHint(fmt.Errorf("place an order: %w", err), hintOrderAPI)
		}
		if k.partitions == nil {
			return k.waitCounted(ctx, o, -1, before, placed)
		}
		p := partitionOf(o.OrderID, len(k.partitions))
		if slices.Contains(before.Partitions, p) || placed == maxOrders {
			return k.waitCounted(ctx, o, p, before, placed)
		}
	}
}

// maxOrders bounds how many orders a check places to find one the replica it asks can see.
const maxOrders = 10

// waitCounted waits until analytics counts the order o, in partition p (-1: not known).
func (k *kafkaRun) waitCounted(ctx context.Context, o acceptedOrder, p int32, before orderStats, placed int) (string, error) {
	after, err := waitForCount(ctx, k.cfg.stats, before.Orders)
	if err != nil {
		err = fmt.Errorf("order %s (partition %d) was not counted: %w", o.OrderID, p, err)
		if len(before.Partitions) < len(k.partitions) {
			return "", withHint(err, fmt.Sprintf("this analytics replica owns partitions %v of %d, and each replica "+
				"counts only its own: scale analytics to 1 and check again", before.Partitions, len(k.partitions)))
		}
		return "", err
	}
	detail := fmt.Sprintf("order %s in partition %d: orders %d -> %d", o.OrderID, p, before.Orders, after.Orders)
	if placed > 1 {
		detail += fmt.Sprintf("; %d earlier order(s) went to partitions another replica owns", placed-1)
	}
	return detail, nil
}

// groupCommitted reads the group's committed offsets and the end of each partition: the
// difference is the lag, what the group has not processed yet.
func (k *kafkaRun) groupCommitted(ctx context.Context) (string, error) {
	if k.admin == nil || k.partitions == nil {
		return "", blocked("the topic's partitions")
	}
	topic := ordersTopic
	var partitions []kafka.TopicPartition
	for _, p := range k.partitions {
		partitions = append(partitions, kafka.TopicPartition{Topic: &topic, Partition: p})
	}

	committed := map[int32]int64{}
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		res, err := k.admin.ListConsumerGroupOffsets(ctx,
			[]kafka.ConsumerGroupTopicPartitions{{Group: analyticsGroup, Partitions: partitions}},
			kafka.SetAdminRequireStableOffsets(false))
		if err != nil {
			return false, fmt.Errorf("list the offsets of group %s: %w", analyticsGroup, err)
		}
		for _, g := range res.ConsumerGroupsTopicPartitions {
			for _, tp := range g.Partitions {
				if tp.Error == nil && tp.Offset >= 0 {
					committed[tp.Partition] = int64(tp.Offset)
				}
			}
		}
		if len(committed) == 0 {
			return false, fmt.Errorf("the group has committed no offset on %s", ordersTopic)
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}

	ends, err := k.endOffsets(ctx, partitions)
	if err != nil {
		return "", err
	}
	var lag int64
	var each []string
	for _, p := range k.partitions {
		c, ok := committed[p]
		if !ok {
			each = append(each, fmt.Sprintf("p%d=none", p))
			continue
		}
		each = append(each, fmt.Sprintf("p%d=%d", p, c))
		lag += max(0, ends[p]-c)
	}
	return fmt.Sprintf("%s, lag %d", strings.Join(each, " "), lag), nil
}

// endOffsets returns, per partition, the offset the next message written to it will get.
func (k *kafkaRun) endOffsets(ctx context.Context, partitions []kafka.TopicPartition) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, tp := range partitions {
		specs[tp] = kafka.LatestOffsetSpec
	}
	res, err := k.admin.ListOffsets(ctx, specs, kafka.SetAdminRequestTimeout(callTimeout))
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", ordersTopic, err)
	}
	ends := map[int32]int64{}
	for tp, info := range res.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("end offset of %s partition %d: %w", ordersTopic, tp.Partition, info.Error)
		}
		ends[tp.Partition] = int64(info.Offset)
	}
	return ends, nil
}

func (k *kafkaRun) close() {
	if k.admin != nil {
		k.admin.Close()
	}
}
