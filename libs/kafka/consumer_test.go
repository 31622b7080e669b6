package kafka_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/libs/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// ownership records what the rebalance callbacks reported.
type ownership struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func (o *ownership) assigned(_ context.Context, parts []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owned == nil {
		o.owned = make(map[int32]bool)
	}
	for _, tp := range parts {
		o.owned[tp.Partition] = true
	}
	return nil, nil
}

func (o *ownership) revoked(_ context.Context, parts []kafka.TopicPartition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, tp := range parts {
		delete(o.owned, tp.Partition)
	}
}

func (o *ownership) partitions() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []int32
	for p := range o.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func TestConsumer_GroupMembersSplitThePartitions(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	group := brokertest.UniqueName(t, "group")

	var gotA, gotB recorder
	var ownA, ownB ownership
	a := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: group, Topics: []string{topic}, Handler: gotA.handle,
		OnAssigned: ownA.assigned, OnRevoked: ownA.revoked,
	})
	b := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: group, Topics: []string{topic}, Handler: gotB.handle,
		OnAssigned: ownB.assigned, OnRevoked: ownB.revoked,
	})

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		pa, pb := ownA.partitions(), ownB.partitions()
		require.NotEmpty(ct, pa)
		require.NotEmpty(ct, pb)
		require.ElementsMatch(ct, []int32{0, 1, 2}, append(slices.Clone(pa), pb...), "disjoint and complete")
		assertAssignment(ct, a, pa)
		assertAssignment(ct, b, pb)
	}, waitFor, 50*time.Millisecond, "the callbacks and the assignment agree on a split")

	sent := publishN(t, newProducer(t, cfg), topic, "order", 30)
	for p, high := range highWatermarks(t, topic, 3) {
		require.Positive(t, high, "partition %d got messages", p)
	}
	require.Eventually(t, func() bool { return len(gotA.values())+len(gotB.values()) == len(sent) },
		waitFor, 20*time.Millisecond)
	waitCaughtUp(t, a, len(ownA.partitions()))
	waitCaughtUp(t, b, len(ownB.partitions()))

	assert.ElementsMatch(t, sent, append(gotA.values(), gotB.values()...), "every message exactly once")
	assert.Equal(t, ownA.partitions(), gotA.partitions(), "a consumed only its partitions")
	assert.Equal(t, ownB.partitions(), gotB.partitions(), "b consumed only its partitions")
}

func assertAssignment(t require.TestingT, c *kafka.Consumer, want []int32) {
	assigned, err := c.Assignment()
	require.NoError(t, err)
	var got []int32
	for _, tp := range assigned {
		got = append(got, tp.Partition)
	}
	require.ElementsMatch(t, want, got)
}

func TestConsumer_RestartResumesAfterTheCommittedOffset(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	group := brokertest.UniqueName(t, "group")
	p := newProducer(t, cfg)

	first := publishN(t, p, topic, "first", 9)
	var got1 recorder
	c1 := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: got1.handle})
	require.Eventually(t, func() bool { return len(got1.values()) == len(first) }, waitFor, 20*time.Millisecond)
	stopConsumer(t, c1)
	assert.ElementsMatch(t, first, got1.values())

	second := publishN(t, p, topic, "second", 6)
	var got2 recorder
	c2 := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: got2.handle})
	committed := waitCaughtUp(t, c2, 3)

	assert.ElementsMatch(t, second, got2.values(), "only the new messages: none lost, none redone")
	assert.Equal(t, highWatermarks(t, topic, 3), committed)
}

func TestConsumer_RedeliversWhatTheHandlerDidNotAccept(t *testing.T) {
	cfg := testConfig(t)

	t.Run("a failed message is retried before anything after it", func(t *testing.T) {
		topic := newTopic(t, 1)
		sent := publishN(t, newProducer(t, cfg), topic, "order", 5)

		var got recorder
		attempts := make(map[int64]int)
		handler := func(ctx context.Context, msg *kafka.Message) error {
			attempts[msg.Offset]++ // only the consumer's goroutine calls the handler
			if msg.Offset == 2 && attempts[msg.Offset] == 1 {
				return errors.New("dependency unavailable")
			}
			return got.handle(ctx, msg)
		}
		c := startConsumer(t, cfg, kafka.ConsumerOptions{
			GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic}, Handler: handler,
		})
		committed := waitCaughtUp(t, c, 1)
		stopConsumer(t, c)

		assert.Equal(t, sent, got.values(), "in order, each accepted once")
		assert.Equal(t, map[int64]int{0: 1, 1: 1, 2: 2, 3: 1, 4: 1}, attempts)
		assert.Equal(t, map[int32]int64{0: 5}, committed)
	})

	t.Run("an unaccepted tail is redelivered after a restart", func(t *testing.T) {
		topic := newTopic(t, 1)
		group := brokertest.UniqueName(t, "group")
		sent := publishN(t, newProducer(t, cfg), topic, "order", 5)

		failing := func(_ context.Context, msg *kafka.Message) error {
			if msg.Offset >= 3 {
				return errors.New("cannot process yet")
			}
			return nil
		}
		c1 := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: failing})
		requireLag(t, c1, kafka.PartitionLag{
			TopicPartition: kafka.TopicPartition{Topic: topic, Partition: 0}, Committed: 3, HighWatermark: 5, Lag: 2,
		})
		stopConsumer(t, c1)

		var got recorder
		c2 := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: got.handle})
		waitCaughtUp(t, c2, 1)
		assert.Equal(t, sent[3:], got.values())
	})
}

// requireLag waits until c reports exactly want as its only partition's lag.
func requireLag(t *testing.T, c *kafka.Consumer, want kafka.PartitionLag) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		lags, err := c.Lag(timeout(t, 5*time.Second))
		require.NoError(ct, err)
		require.Equal(ct, []kafka.PartitionLag{want}, lags)
	}, waitFor, 50*time.Millisecond)
}

func TestConsumer_RebuildFromTheBeginningKeepsCommitting(t *testing.T) {
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	group := brokertest.UniqueName(t, "group")
	p := newProducer(t, cfg)
	fromBeginning := func(_ context.Context, parts []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
		return kafka.StartAll(parts, kafka.OffsetBeginning), nil
	}

	first := publishN(t, p, topic, "first", 9)
	var got1 recorder
	c1 := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: group, Topics: []string{topic}, Handler: got1.handle, OnAssigned: fromBeginning,
	})
	committedBefore := waitCaughtUp(t, c1, 3)
	stopConsumer(t, c1)
	assert.ElementsMatch(t, first, got1.values())

	second := publishN(t, p, topic, "second", 6)

	// Pause the replay inside a partition that had at least two messages, after its first one
	// was accepted, and look at the committed offset while librdkafka's auto-commit runs.
	var paused kafka.TopicPartition
	for part, offset := range committedBefore {
		if offset >= 2 {
			paused = kafka.TopicPartition{Topic: topic, Partition: part}
		}
	}
	require.NotEmpty(t, paused.Topic, "nine messages over three partitions put two into one")
	reached, release := make(chan struct{}), make(chan struct{})
	var got2 recorder
	var once sync.Once
	handler := func(ctx context.Context, msg *kafka.Message) error {
		if msg.Partition == paused.Partition && msg.Offset == 1 {
			once.Do(func() { close(reached); <-release })
		}
		return got2.handle(ctx, msg)
	}
	c2 := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: group, Topics: []string{topic}, Handler: handler, OnAssigned: fromBeginning,
	})

	select {
	case <-reached:
	case <-time.After(waitFor):
		t.Fatal("the replay never reached offset 1")
	}
	time.Sleep(5 * cfg.CommitInterval) // several auto-commit rounds
	lags, err := c2.Lag(timeout(t, 5*time.Second))
	close(release)
	require.NoError(t, err)
	for _, l := range lags {
		// Other partitions may have finished their replay (and new messages) meanwhile.
		assert.GreaterOrEqual(t, l.Committed, committedBefore[l.Partition],
			"partition %d: replaying does not commit backwards", l.Partition)
		if l.Partition == paused.Partition {
			assert.Equal(t, committedBefore[l.Partition], l.Committed, "the paused replay holds the committed offset")
		}
	}

	committedAfter := waitCaughtUp(t, c2, 3)
	assert.ElementsMatch(t, append(first, second...), got2.values(), "the whole log is read again")
	assert.Equal(t, highWatermarks(t, topic, 3), committedAfter, "and committed up to its end")
}

func TestConsumer_Stop(t *testing.T) {
	cfg := testConfig(t)

	t.Run("finishes the in-flight message and commits it", func(t *testing.T) {
		topic := newTopic(t, 1)
		group := brokertest.UniqueName(t, "group")
		sent := publishN(t, newProducer(t, cfg), topic, "order", 2)

		inFlight := make(chan struct{})
		var got recorder
		handler := func(ctx context.Context, msg *kafka.Message) error {
			if msg.Offset == 0 {
				close(inFlight)
				time.Sleep(300 * time.Millisecond)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			return got.handle(ctx, msg)
		}
		c := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler})
		<-inFlight
		stopConsumer(t, c)
		require.Equal(t, sent[:1], got.values(), "the in-flight message completed; nothing was fetched after Stop")

		var next recorder
		c2 := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: next.handle})
		waitCaughtUp(t, c2, 1)
		assert.Equal(t, sent[1:], next.values(), "the finished message was committed")
	})

	t.Run("cancels the in-flight handler when its deadline passes", func(t *testing.T) {
		topic := newTopic(t, 1)
		publishN(t, newProducer(t, cfg), topic, "order", 1)

		inFlight := make(chan struct{})
		handler := func(ctx context.Context, _ *kafka.Message) error {
			close(inFlight)
			<-ctx.Done()
			return ctx.Err()
		}
		c, err := kafka.NewConsumer(cfg, kafka.ConsumerOptions{
			GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic}, Handler: handler,
		}, zaptest.NewLogger(t))
		require.NoError(t, err)
		require.NoError(t, c.Start(timeout(t, 10*time.Second)))
		<-inFlight

		err = c.Stop(timeout(t, 200*time.Millisecond))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Fatal("the consumer did not finish after its handler was cancelled")
		}
		require.NoError(t, c.Err())
	})
}

func TestConsumer_FailuresEndConsuming(t *testing.T) {
	cfg := testConfig(t)

	t.Run("OnAssigned error stops the consumer", func(t *testing.T) {
		topic := newTopic(t, 1)
		boom := errors.New("cannot load state")
		c, err := kafka.NewConsumer(cfg, kafka.ConsumerOptions{
			GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic},
			Handler: func(context.Context, *kafka.Message) error { return nil },
			OnAssigned: func(context.Context, []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
				return nil, boom
			},
		}, zaptest.NewLogger(t))
		require.NoError(t, err)
		require.NoError(t, c.Start(timeout(t, 10*time.Second)))

		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Fatal("the consumer kept running")
		}
		require.ErrorIs(t, c.Err(), boom)
		require.Error(t, c.Ready(timeout(t, time.Second)))
		require.ErrorIs(t, c.Stop(timeout(t, time.Second)), boom)
	})

	t.Run("Start fails by its deadline when no broker answers", func(t *testing.T) {
		cfg := cfg
		cfg.BootstrapServers = unreachable
		c, err := kafka.NewConsumer(cfg, kafka.ConsumerOptions{
			GroupID: "any", Topics: []string{"any"},
			Handler: func(context.Context, *kafka.Message) error { return nil },
		}, zaptest.NewLogger(t))
		require.NoError(t, err)

		start := time.Now()
		require.Error(t, c.Start(timeout(t, time.Second)))
		assert.Less(t, time.Since(start), time.Second+250*time.Millisecond)
		<-c.Done()
		require.NoError(t, c.Stop(timeout(t, time.Second)), "a failed start already released the consumer")
	})
}

func TestConsumer_Ready(t *testing.T) {
	topic := newTopic(t, 1)
	cfg := testConfig(t)
	c, err := kafka.NewConsumer(cfg, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic},
		Handler: func(context.Context, *kafka.Message) error { return nil },
	}, zaptest.NewLogger(t))
	require.NoError(t, err)

	require.Error(t, c.Ready(timeout(t, time.Second)), "not ready before Start")
	require.NoError(t, c.Start(timeout(t, 10*time.Second)))
	require.NoError(t, c.Ready(timeout(t, 5*time.Second)))
	require.NoError(t, c.Stop(timeout(t, 10*time.Second)))
	require.ErrorIs(t, c.Ready(timeout(t, time.Second)), kafka.ErrClosed, "not ready after Stop")
}

func TestConsumer_PicksUpATopicCreatedAfterItStarted(t *testing.T) {
	cfg := testConfig(t)
	topic := brokertest.UniqueName(t, "kafkalib")
	var got recorder
	c := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic}, Handler: got.handle,
	})
	time.Sleep(500 * time.Millisecond) // the consumer has seen the topic missing

	admin := newAdmin(t)
	require.NoError(t, admin.EnsureTopic(timeout(t, 10*time.Second), kafka.TopicSpec{Name: topic, Partitions: 1}))
	t.Cleanup(func() { require.NoError(t, admin.DeleteTopics(timeout(t, 10*time.Second), topic)) })
	sent := publishN(t, newProducer(t, cfg), topic, "order", 1)

	require.Eventually(t, func() bool { return len(got.values()) == 1 }, waitFor, 20*time.Millisecond)
	assert.Equal(t, sent, got.values())
	// Stop (and commit) now: the topic's cleanup, registered after the consumer's, runs first.
	stopConsumer(t, c)
}

func TestConsumer_AMemberWithoutPartitionsIsToldItJoined(t *testing.T) {
	// One partition, two members: one of them gets nothing, and learns that it is in the group
	// (rather than still waiting for the group) from an OnAssigned call with no partitions.
	topic := newTopic(t, 1)
	cfg := testConfig(t)
	group := brokertest.UniqueName(t, "group")

	var mu sync.Mutex
	calls := map[string][][]int32{}
	onAssigned := func(member string) func(context.Context, []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
		return func(_ context.Context, parts []kafka.TopicPartition) (map[kafka.TopicPartition]kafka.Offset, error) {
			mu.Lock()
			defer mu.Unlock()
			got := []int32{}
			for _, tp := range parts {
				got = append(got, tp.Partition)
			}
			calls[member] = append(calls[member], got)
			return nil, nil
		}
	}
	handler := func(context.Context, *kafka.Message) error { return nil }
	startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler, OnAssigned: onAssigned("a")})
	startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler, OnAssigned: onAssigned("b")})

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		mu.Lock()
		defer mu.Unlock()
		var owned []int32
		for _, member := range []string{"a", "b"} {
			require.NotEmpty(ct, calls[member], "member %s was told the outcome of its join", member)
			for _, parts := range calls[member] {
				owned = append(owned, parts...)
			}
		}
		require.Equal(ct, []int32{0}, owned, "the partition went to one of them only")
	}, waitFor, 50*time.Millisecond)
}

func TestConsumer_AFailingMessagePausesOnlyItsPartition(t *testing.T) {
	topic := newTopic(t, 2)
	cfg := testConfig(t)
	// Longer than the test: before the change, the poll loop slept this long and no other
	// partition was consumed meanwhile.
	cfg.RetryBackoff = time.Hour

	var got recorder
	var mu sync.Mutex
	poisoned := int32(-1)
	failures := 0
	handler := func(ctx context.Context, msg *kafka.Message) error {
		if string(msg.Key) == "poison" {
			mu.Lock()
			defer mu.Unlock()
			poisoned, failures = msg.Partition, failures+1
			return errors.New("cannot process")
		}
		return got.handle(ctx, msg)
	}
	c := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic}, Handler: handler,
	})
	p := newProducer(t, cfg)
	require.NoError(t, p.Publish(timeout(t, 10*time.Second), kafka.Message{Topic: topic, Key: []byte("poison"), Value: []byte("x")}))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return failures > 0 }, waitFor, 20*time.Millisecond)

	// Keys spread over both partitions; those of the other partition go through at once.
	publishN(t, p, topic, "order", 20)
	mu.Lock()
	bad := poisoned
	mu.Unlock()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.Contains(ct, got.partitions(), 1-bad, "the other partition is consumed meanwhile")
	}, waitFor, 20*time.Millisecond)
	for _, msg := range got.messagesOf() {
		assert.NotEqual(t, bad, msg.Partition, "nothing after the failed message of its partition was handled")
	}
	mu.Lock()
	assert.Equal(t, 1, failures, "the failed message waits for its backoff")
	mu.Unlock()

	// A paused partition does not hold up Stop.
	stopConsumer(t, c)
}

func TestConsumer_StopHandsThePartitionsOverAtOnce(t *testing.T) {
	// With the session timeout at 45s, the only way for the other member to take the partitions
	// over within waitFor/2 is the stopping member leaving the group.
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	cfg.SessionTimeout = 45 * time.Second
	cfg.HeartbeatInterval = 300 * time.Millisecond
	group := brokertest.UniqueName(t, "group")
	handler := func(context.Context, *kafka.Message) error { return nil }

	var ownA, ownB ownership
	a := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler,
		OnAssigned: ownA.assigned, OnRevoked: ownA.revoked})
	b := startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler,
		OnAssigned: ownB.assigned, OnRevoked: ownB.revoked})
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.NotEmpty(ct, ownA.partitions())
		require.NotEmpty(ct, ownB.partitions())
	}, waitFor, 50*time.Millisecond)

	stopConsumer(t, a)
	stopped := time.Now()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.Equal(ct, []int32{0, 1, 2}, ownB.partitions())
		assertAssignment(ct, b, []int32{0, 1, 2})
	}, cfg.SessionTimeout/3, 20*time.Millisecond, "b owns every partition long before a's session could expire")
	t.Logf("FIGURE: after a clean stop the other member owned every partition within %s (session timeout %s)",
		time.Since(stopped).Round(10*time.Millisecond), cfg.SessionTimeout)
}

func TestConsumer_LagDuringStop(t *testing.T) {
	// Lag runs on the monitoring goroutine while the consumer stops: it returns (a reading or
	// ErrClosed) rather than crash on a destroyed client, and Stop does not wait for it.
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	c := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic},
		Handler: func(context.Context, *kafka.Message) error { return nil },
	})
	waitCaughtUp(t, c, 3)

	done := make(chan error)
	go func() {
		for {
			if _, err := c.Lag(timeout(t, 5*time.Second)); errors.Is(err, kafka.ErrClosed) {
				done <- err
				return
			}
		}
	}()
	stopConsumer(t, c)
	select {
	case err := <-done:
		require.ErrorIs(t, err, kafka.ErrClosed)
	case <-time.After(waitFor):
		t.Fatal("Lag kept answering after Stop")
	}
}

func TestConsumer_LagReportsTheLogStart(t *testing.T) {
	topic := newTopic(t, 1)
	cfg := testConfig(t)
	publishN(t, newProducer(t, cfg), topic, "order", 4)
	deleteRecordsBefore(t, topic, 0, 3)

	var got recorder
	c := startConsumer(t, cfg, kafka.ConsumerOptions{
		GroupID: brokertest.UniqueName(t, "group"), Topics: []string{topic}, Handler: got.handle,
	})
	requireLag(t, c, kafka.PartitionLag{
		TopicPartition: kafka.TopicPartition{Topic: topic, Partition: 0},
		LowWatermark:   3, Committed: 4, HighWatermark: 4, Lag: 0,
	})
	assert.Equal(t, []string{"order-3"}, got.values(), "only what retention kept")
}

func TestConsumer_AStaticMemberDoesNotLeaveOnStop(t *testing.T) {
	// KAFKA_GROUP_INSTANCE_ID's price: librdkafka sends no LeaveGroup for a static member, so
	// its partitions wait for its session to expire even after a clean stop, unless a member
	// with the same instance ID comes back.
	topic := newTopic(t, 3)
	cfg := testConfig(t)
	group := brokertest.UniqueName(t, "group")
	handler := func(context.Context, *kafka.Message) error { return nil }

	static := cfg
	static.GroupInstanceID = brokertest.UniqueName(t, "instance")
	var ownA, ownB ownership
	a := startConsumer(t, static, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler,
		OnAssigned: ownA.assigned, OnRevoked: ownA.revoked})
	startConsumer(t, cfg, kafka.ConsumerOptions{GroupID: group, Topics: []string{topic}, Handler: handler,
		OnAssigned: ownB.assigned, OnRevoked: ownB.revoked})
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.NotEmpty(ct, ownA.partitions())
		require.NotEmpty(ct, ownB.partitions())
	}, waitFor, 50*time.Millisecond)

	stopConsumer(t, a)
	stopped := time.Now()
	require.Never(t, func() bool { return len(ownB.partitions()) == 3 }, cfg.SessionTimeout/2, 50*time.Millisecond,
		"the static member's partitions stay with it while its session lasts")
	require.Eventually(t, func() bool { return len(ownB.partitions()) == 3 }, waitFor, 20*time.Millisecond)
	t.Logf("FIGURE: after a static member's clean stop the other member owned every partition after %s (session timeout %s)",
		time.Since(stopped).Round(10*time.Millisecond), cfg.SessionTimeout)
}
