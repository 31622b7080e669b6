package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.uber.org/zap"
)

// Handler processes one message. Returning nil marks the message done: its offset becomes
// eligible for commit. Returning an error leaves it uncommitted; the consumer delivers the same
// message again after Config.RetryBackoff and does not move past it on that partition, which is
// paused meanwhile; the other partitions go on. So a message that can never succeed blocks its
// partition (and only its partition): the handler decides when to give up (log, dead-letter,
// return nil). Its ctx is cancelled only when Stop's deadline passes.
type Handler func(ctx context.Context, msg *Message) error

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is where a partition starts: an absolute offset (>= 0) or one of the logical offsets.
type Offset int64

// Logical start offsets for OnAssigned.
const (
	// OffsetCommitted resumes after the group's committed offset; a partition without one
	// starts at its beginning.
	OffsetCommitted = Offset(ckafka.OffsetStored)
	// OffsetBeginning starts at the oldest retained message.
	OffsetBeginning = Offset(ckafka.OffsetBeginning)
	// OffsetEnd starts with messages produced after the assignment.
	OffsetEnd = Offset(ckafka.OffsetEnd)
)

// StartAll returns a start map that begins every partition at the same offset — for example
// StartAll(partitions, OffsetBeginning) to rebuild state from the whole log.
func StartAll(partitions []TopicPartition, at Offset) map[TopicPartition]Offset {
	starts := make(map[TopicPartition]Offset, len(partitions))
	for _, tp := range partitions {
		starts[tp] = at
	}
	return starts
}

// ConsumerOptions says what a Consumer consumes and what it calls.
type ConsumerOptions struct {
	// GroupID is the consumer group; its members share the partitions of Topics.
	GroupID string
	// Topics are the subscribed topics.
	Topics []string
	// Handler is called for every message, one at a time, on the consumer's goroutine. It and
	// the callbacks below must not call Stop, which waits for them.
	Handler Handler
	// OnAssigned, if set, is called at the end of every rebalance this member takes part in,
	// with the partitions it gained, before any of their messages reach Handler. The list may be
	// empty: the member joined (or stayed in) the group and gained nothing, for example because
	// the group has more members than the topics have partitions. Until the first call the
	// member owns nothing because it is not in the group yet. It returns where each partition
	// starts; partitions it leaves out start at OffsetCommitted. An error stops the consumer
	// (Stop and Err return it).
	OnAssigned func(ctx context.Context, partitions []TopicPartition) (map[TopicPartition]Offset, error)
	// OnRevoked, if set, is called with the partitions this member gave up, after the last of
	// their messages went through Handler. Their accepted offsets are committed right after.
	// Both callbacks run inside the rebalance, which the whole group waits for: keep them short.
	OnRevoked func(ctx context.Context, partitions []TopicPartition)
	// OnLost, if set, is called instead of OnRevoked when the partitions were lost rather than
	// given up: the group already handed them to others (this member missed its session
	// timeout, or was fenced). The member is out of the group until OnAssigned is called again.
	// If nil, OnRevoked is called for lost partitions too.
	OnLost func(ctx context.Context, partitions []TopicPartition)
}

// PartitionLag is the consumer lag of one assigned partition: how many messages the group has
// not committed yet.
type PartitionLag struct {
	TopicPartition
	// LowWatermark is the offset of the oldest retained message; equal to HighWatermark when
	// retention deleted every message of the partition (or none was ever produced).
	LowWatermark int64
	// Committed is the group's committed offset (the next offset it will read), or -1 if the
	// group has committed nothing for this partition yet.
	Committed int64
	// HighWatermark is the offset the next produced message will get.
	HighWatermark int64
	// Lag is HighWatermark minus Committed, or minus LowWatermark when nothing is committed or
	// the committed offset fell below the oldest retained message.
	Lag int64
}

// Consumer is a consumer-group member that feeds messages to a Handler and commits only what
// the Handler accepted.
//
// Commits: offsets are stored (enable.auto.offset.store=false + StoreMessage) only after the
// handler returned nil, and librdkafka's auto-commit commits the stored offsets every
// Config.CommitInterval, when partitions are revoked and on close. So the caller decides what is
// committed and librdkafka decides when — which matters because it skips commits while a
// cooperative rebalance is in flight, where manual commits are known to fail or to trigger yet
// another rebalance (librdkafka issue #4059).
//
// Assignment: cooperative-sticky. A rebalance moves only the partitions that must move; the
// others keep being consumed and their in-memory state stays valid. With an eager assignor every
// join or leave revokes everything, so a consumer that rebuilds state per partition from the
// beginning of the log (as analytics does) would rebuild all of it on every deploy. The cost is
// a second rebalance round when partitions do move, which takes a heartbeat interval or two.
type Consumer struct {
	cfg  Config
	opts ConsumerOptions
	log  *zap.Logger

	consumer *ckafka.Consumer
	logs     chan ckafka.LogEvent // librdkafka's log lines; closed by closeClient
	logsDone chan struct{}        // closed when the librdkafka log channel is drained

	// offsets answers Lag with a client of its own, so that a slow lag query never holds up
	// closing the consumer: librdkafka's synchronous offset calls cannot be interrupted, and a
	// client may not be destroyed while one runs. It is a plain consumer of the same group that
	// never subscribes (so never joins the group): Committed and QueryWatermarkOffsets on it
	// are bounded by a timeout, and closeClient leaves the group with the real consumer first,
	// then waits for them. Not librdkafka's admin client: its ListConsumerGroupOffsets aborts
	// the whole process when a broker restarts under it (librdkafka issues 3663 and 4605,
	// "rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0' failed"), which the
	// fault suite's kill -9 of Kafka reproduced.
	offsets       *ckafka.Consumer
	offsetsMu     sync.RWMutex // held for reading by Lag's offset calls, for writing by close
	offsetsGone   bool
	closing       context.Context
	cancelClosing context.CancelFunc

	lifecycle sync.Mutex // serialises Start and Stop
	started   bool
	stopOnce  sync.Once
	stop      chan struct{} // closed by Stop: poll no more
	done      chan struct{} // closed when the poll goroutine returned (or, unstarted, on Stop)
	runErr    error         // why the poll goroutine ended; read after done is closed

	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	mu     sync.RWMutex // held for reading by calls from other goroutines, for writing by close
	closed bool

	// Owned by the poll goroutine (rebalance callbacks run on it too).
	floors map[TopicPartition]int64     // per partition: offsets up to here are already committed
	paused map[TopicPartition]time.Time // partitions backing off after a failure: when to resume
	failed error                        // set by a rebalance callback; stops the poll loop
}

// NewConsumer creates a consumer for opts.GroupID. It does not join the group until Start.
func NewConsumer(cfg Config, opts ConsumerOptions, log *zap.Logger) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: consumer config: %w", err)
	}
	switch {
	case opts.GroupID == "":
		return nil, errors.New("kafka: consumer: empty group id")
	case len(opts.Topics) == 0:
		return nil, errors.New("kafka: consumer: no topics")
	case opts.Handler == nil:
		return nil, errors.New("kafka: consumer: nil handler")
	}
	log = log.With(zap.String("component", "kafka.consumer"), zap.String("group", opts.GroupID))

	logs := newLogChannel()
	conf := commonConfig(cfg)
	maps.Copy(conf, ckafka.ConfigMap{
		"group.id":                      opts.GroupID,
		"partition.assignment.strategy": "cooperative-sticky",
		"enable.auto.commit":            true,
		"enable.auto.offset.store":      false,
		"auto.commit.interval.ms":       int(cfg.CommitInterval.Milliseconds()),
		// A group that never committed starts at the beginning: nothing produced before the
		// first deployment of a consumer is skipped.
		"auto.offset.reset":      "earliest",
		"session.timeout.ms":     int(cfg.SessionTimeout.Milliseconds()),
		"heartbeat.interval.ms":  int(cfg.HeartbeatInterval.Milliseconds()),
		"max.poll.interval.ms":   int(cfg.MaxPollInterval.Milliseconds()),
		"go.logs.channel.enable": true,
		"go.logs.channel":        logs,
		// librdkafka prefetches up to 64 MiB into the consumer's queue by default; a consumer
		// rebuilding from the beginning of the log would hold most of a laptop-sized pod's
		// memory in buffers.
		"queued.max.messages.kbytes": 8 * 1024,
		// Once the queue holds that much, librdkafka postpones the next fetch by
		// fetch.queue.backoff.ms, 1 s by default: a consumer that drains 8 MiB in less than
		// that then waits for the rest of the second. Replaying the log, analytics was idle
		// more than half the time, which made its rebuild 2.5 times slower than its CPU allowed.
		"fetch.queue.backoff.ms": int(fetchQueueBackoff.Milliseconds()),
	})
	if cfg.GroupInstanceID != "" {
		conf["group.instance.id"] = cfg.GroupInstanceID
	}
	offsetsConf := commonConfig(cfg)
	offsetsConf["group.id"] = opts.GroupID
	offsetsConf["enable.auto.commit"] = false
	offsets, err := ckafka.NewConsumer(&offsetsConf)
	if err != nil {
		return nil, fmt.Errorf("kafka: create offsets client: %w", err)
	}
	kc, err := ckafka.NewConsumer(&conf)
	if err != nil {
		_ = offsets.Close()
		return nil, fmt.Errorf("kafka: create consumer: %w", err)
	}
	c := &Consumer{
		cfg:      cfg,
		opts:     opts,
		log:      log,
		consumer: kc,
		offsets:  offsets,
		logs:     logs,
		logsDone: make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		floors:   make(map[TopicPartition]int64),
		paused:   make(map[TopicPartition]time.Time),
	}
	c.handlerCtx, c.cancelHandler = context.WithCancel(context.Background())
	c.closing, c.cancelClosing = context.WithCancel(context.Background())
	go c.serveLogs()
	return c, nil
}

func (c *Consumer) serveLogs() {
	defer close(c.logsDone)
	for ev := range c.logs {
		logLibrdkafka(c.log, ev)
	}
}

// Start checks that a broker answers by ctx's deadline, subscribes and starts the goroutine that
// polls and calls the handler. ctx bounds only the start; the consumer runs until Stop. If Start
// fails, the consumer is already released. A Consumer runs once: to consume again after Stop,
// create a new one.
func (c *Consumer) Start(ctx context.Context) error {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	select {
	case <-c.stop:
		return ErrClosed
	default:
	}
	if c.started {
		return errors.New("kafka: consumer already started")
	}
	err := ping(ctx, c.cfg, c.consumer.GetMetadata)
	if err == nil {
		err = c.consumer.SubscribeTopics(c.opts.Topics, c.rebalance)
	}
	if err != nil {
		// A consumer that failed to start is finished: release librdkafka now, since fx does
		// not call OnStop for a hook whose OnStart failed.
		c.stopOnce.Do(func() { close(c.stop) })
		c.closeClient()
		close(c.done)
		return fmt.Errorf("kafka: start consumer %s on %v: %w", c.opts.GroupID, c.opts.Topics, err)
	}
	c.started = true
	// The poll loop outlives Start's ctx, which bounds only the start: handlers get the
	// consumer's own context, cancelled by Stop.
	go c.run() //nolint:contextcheck // see above
	c.log.Info("consumer started", zap.Strings("topics", c.opts.Topics))
	return nil
}

// Stop stops polling, lets the in-flight message finish, commits the accepted offsets and leaves
// the group, so that the other members take over at once. If ctx expires first, the in-flight
// handler's context is cancelled and Stop returns ctx's error; the consumer still finishes in
// the background. Otherwise Stop returns the error that ended consuming, if any. It is
// idempotent.
func (c *Consumer) Stop(ctx context.Context) error {
	c.lifecycle.Lock()
	first := false
	c.stopOnce.Do(func() { close(c.stop); first = true })
	started := c.started
	c.lifecycle.Unlock()

	if !started && first {
		c.closeClient()
		close(c.done)
	}
	select {
	case <-c.done:
		return c.runErr
	case <-ctx.Done():
		c.cancelHandler()
		return fmt.Errorf("kafka: stop consumer %s: %w", c.opts.GroupID, ctx.Err())
	}
}

// Done is closed when the consumer stopped consuming, after Stop or on a fatal error.
func (c *Consumer) Done() <-chan struct{} { return c.done }

// Err returns why the consumer stopped once Done is closed; nil after a clean Stop.
func (c *Consumer) Err() error {
	select {
	case <-c.done:
		return c.runErr
	default:
		return nil
	}
}

// Ready reports whether the consumer is running and a broker answered by ctx's deadline.
func (c *Consumer) Ready(ctx context.Context) error {
	c.lifecycle.Lock()
	started := c.started
	c.lifecycle.Unlock()
	if !started {
		return errors.New("kafka: consumer not started")
	}
	select {
	case <-c.done:
		if c.runErr != nil {
			return fmt.Errorf("kafka: consumer stopped: %w", c.runErr)
		}
		return ErrClosed
	default:
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	return ping(ctx, c.cfg, c.consumer.GetMetadata)
}

// Assignment returns the partitions this member currently owns.
func (c *Consumer) Assignment() ([]TopicPartition, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, ErrClosed
	}
	parts, err := c.consumer.Assignment()
	if err != nil {
		return nil, fmt.Errorf("kafka: assignment: %w", err)
	}
	return fromKafkaPartitions(parts), nil
}

// Lag returns the consumer lag of every partition this member owns: committed offsets come from
// the group coordinator, watermarks from the latest fetch responses or, when those are not
// cached yet, from the partition leaders. Network calls end by ctx's deadline (or
// Config.RequestTimeout). They run on a client of their own, so a slow lag query never holds
// up leaving the group; closing waits for it only before releasing that client.
func (c *Consumer) Lag(ctx context.Context) ([]PartitionLag, error) {
	assigned, cached, err := c.lagSnapshot()
	if err != nil || len(assigned) == 0 {
		return nil, err
	}
	ms, err := timeoutMillis(ctx, c.cfg.RequestTimeout)
	if err != nil {
		return nil, fmt.Errorf("kafka: lag: %w", err)
	}
	c.offsetsMu.RLock()
	defer c.offsetsMu.RUnlock()
	if c.offsetsGone {
		return nil, ErrClosed
	}
	deadline := time.Now().Add(millis(ms))
	committed, err := c.committed(assigned, deadline)
	if err == nil {
		err = c.queryWatermarks(cached, deadline)
	}
	if err != nil {
		if c.closing.Err() != nil {
			return nil, ErrClosed // cancelled by the close, not failed
		}
		return nil, err
	}
	lags := make([]PartitionLag, 0, len(assigned))
	for _, tp := range fromKafkaPartitions(assigned) {
		w := cached[tp]
		l := PartitionLag{TopicPartition: tp, LowWatermark: w.low, HighWatermark: w.high, Committed: -1, Lag: w.high - w.low}
		if off, ok := committed[tp]; ok && off >= 0 {
			l.Committed = off
			l.Lag = max(0, w.high-max(off, w.low))
		}
		lags = append(lags, l)
	}
	return lags, nil
}

type watermarks struct{ low, high int64 }

// lagSnapshot reads, without any network call, the assignment and the watermarks librdkafka
// cached from fetch responses (-1 where unknown). Every fetch response carries the high
// watermark, so for a partition being consumed the cached value is at most one fetch wait old.
func (c *Consumer) lagSnapshot() ([]ckafka.TopicPartition, map[TopicPartition]watermarks, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	assigned, err := c.consumer.Assignment()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: lag: %w", err)
	}
	cached := make(map[TopicPartition]watermarks, len(assigned))
	for _, tp := range assigned {
		low, high, err := c.consumer.GetWatermarkOffsets(*tp.Topic, tp.Partition)
		if err != nil || low < 0 || high < 0 {
			low, high = -1, -1
		}
		cached[TopicPartition{Topic: *tp.Topic, Partition: tp.Partition}] = watermarks{low, high}
	}
	return assigned, cached, nil
}

// committed asks the group coordinator for the group's committed offsets of parts (-1: none),
// by the deadline.
func (c *Consumer) committed(parts []ckafka.TopicPartition, deadline time.Time) (map[TopicPartition]int64, error) {
	ms, err := msUntil(deadline)
	if err != nil {
		return nil, fmt.Errorf("kafka: lag: committed offsets: %w", err)
	}
	res, err := c.offsets.Committed(parts, ms)
	if err != nil {
		return nil, fmt.Errorf("kafka: lag: committed offsets: %w", err)
	}
	out := make(map[TopicPartition]int64, len(parts))
	for _, tp := range res {
		if tp.Error != nil {
			return nil, fmt.Errorf("kafka: lag: committed offset of %s: %w", tp, tp.Error)
		}
		off := int64(tp.Offset)
		if off < 0 {
			off = -1 // none committed (OffsetInvalid)
		}
		out[TopicPartition{Topic: *tp.Topic, Partition: tp.Partition}] = off
	}
	return out, nil
}

// queryWatermarks fills in the watermarks the cache lacked by asking the partition leaders, by
// the deadline.
func (c *Consumer) queryWatermarks(marks map[TopicPartition]watermarks, deadline time.Time) error {
	for tp, w := range marks {
		if w.high >= 0 {
			continue
		}
		ms, err := msUntil(deadline)
		if err != nil {
			return fmt.Errorf("kafka: lag: watermarks: %w", err)
		}
		low, high, err := c.offsets.QueryWatermarkOffsets(tp.Topic, tp.Partition, ms)
		if err != nil {
			return fmt.Errorf("kafka: lag: watermarks of %s[%d]: %w", tp.Topic, tp.Partition, err)
		}
		marks[tp] = watermarks{low: low, high: high}
	}
	return nil
}

// msUntil is the millisecond timeout left until deadline for a blocking librdkafka call.
func msUntil(deadline time.Time) (int, error) {
	ms := int(time.Until(deadline).Milliseconds())
	if ms < 1 {
		return 0, context.DeadlineExceeded
	}
	return ms, nil
}

// fetchQueueBackoff is how long librdkafka waits to fetch again for a partition whose messages
// fill the consumer's queue (queued.max.messages.kbytes).
const fetchQueueBackoff = 10 * time.Millisecond

// pollTimeout bounds one Poll, and so how long Stop waits for an idle consumer to notice.
const pollTimeout = 100 * time.Millisecond

func (c *Consumer) run() {
	defer close(c.done)
	err := c.poll()
	// Commit what the handler accepted before leaving, so a successor does not redo it. Close
	// would commit too, but silently; this way a failure is reported.
	if _, cerr := c.consumer.Commit(); cerr != nil && !isNoOffset(cerr) {
		err = errors.Join(err, fmt.Errorf("kafka: final commit: %w", cerr))
	}
	c.closeClient()
	c.runErr = err
	c.log.Info("consumer stopped", zap.Error(err))
}

func (c *Consumer) poll() error {
	for {
		select {
		case <-c.stop:
			return nil
		default:
		}
		if c.failed != nil {
			return c.failed
		}
		c.resumeDue()
		switch e := c.consumer.Poll(int(pollTimeout.Milliseconds())).(type) {
		case nil:
		case *ckafka.Message:
			if err := e.TopicPartition.Error; err != nil {
				c.log.Warn("partition error", zap.Stringer("partition", e.TopicPartition), zap.Error(err))
				continue
			}
			c.handle(e)
		case ckafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafka: consumer failed: %w", e)
			}
			c.log.Warn("consumer error", zap.Error(e))
		case ckafka.OffsetsCommitted:
			// The outcome of an automatic commit. A failed one is retried with the next round,
			// since the stored offsets stay; until then the reported lag is higher.
			if e.Error != nil && !isNoOffset(e.Error) {
				c.log.Warn("commit offsets", zap.Error(e.Error))
			}
		default:
			c.log.Debug("consumer event", zap.Stringer("event", e))
		}
	}
}

func (c *Consumer) handle(km *ckafka.Message) {
	msg := messageFromKafka(km)
	tp := TopicPartition{Topic: msg.Topic, Partition: msg.Partition}
	ctx, span := startProcess(c.handlerCtx, c.opts.GroupID, msg)
	err := c.opts.Handler(ctx, msg)
	endProcess(span, err)
	if err != nil {
		c.log.Warn("handler failed; message will be redelivered",
			zap.String("topic", msg.Topic), zap.Int32("partition", msg.Partition),
			zap.Int64("offset", msg.Offset), zap.Error(err))
		c.rewind(km.TopicPartition)
		return
	}
	if floor, ok := c.floors[tp]; ok {
		if msg.Offset+1 <= floor {
			// Replaying the part of the log the group committed before: storing these offsets
			// would move the committed offset backwards and make the lag jump.
			return
		}
		delete(c.floors, tp)
	}
	if _, err := c.consumer.StoreMessage(km); err != nil {
		// Only possible when the partition was revoked meanwhile; the new owner redoes it.
		c.log.Warn("store offset", zap.Stringer("partition", km.TopicPartition), zap.Error(err))
	}
}

// rewind makes the partition deliver the failed message again, after Config.RetryBackoff so
// that a failing dependency is not hammered. Seeking discards messages of the partition that
// were already fetched, so nothing after the failed message is handled (or committed) before
// it. Only this partition waits: it is paused until the backoff has passed, while the poll loop
// goes on with the others, whose messages do not depend on the failed one.
func (c *Consumer) rewind(at ckafka.TopicPartition) {
	at.Error = nil
	parts, err := c.consumer.SeekPartitions([]ckafka.TopicPartition{at})
	if err == nil && len(parts) == 1 && parts[0].Error != nil {
		// librdkafka reports a failure of one partition in the list, not in err.
		err = parts[0].Error
	}
	if err == nil {
		err = c.consumer.Pause([]ckafka.TopicPartition{at})
	}
	if err != nil {
		// Without the rewind, the messages already fetched after the failed one would be handled
		// and stored, committing past it: stop instead, so nothing is lost.
		c.failed = fmt.Errorf("kafka: rewind %s to redeliver a failed message: %w", at, err)
		return
	}
	c.paused[TopicPartition{Topic: *at.Topic, Partition: at.Partition}] = time.Now().Add(c.cfg.RetryBackoff)
}

// resumeDue resumes the partitions whose backoff has passed.
func (c *Consumer) resumeDue() {
	now := time.Now()
	for tp, at := range c.paused {
		if now.Before(at) {
			continue
		}
		delete(c.paused, tp)
		topic := tp.Topic
		if err := c.consumer.Resume([]ckafka.TopicPartition{{Topic: &topic, Partition: tp.Partition}}); err != nil {
			c.failed = fmt.Errorf("kafka: resume %s[%d] after a failed message: %w", tp.Topic, tp.Partition, err)
		}
	}
}

// rebalance runs on the poll goroutine, inside Poll (or Close), so no handler is running.
func (c *Consumer) rebalance(kc *ckafka.Consumer, ev ckafka.Event) error {
	cooperative := kc.GetRebalanceProtocol() == "COOPERATIVE"
	switch e := ev.(type) {
	case ckafka.AssignedPartitions:
		assign := c.startPositions(e.Partitions)
		var err error
		if cooperative {
			err = kc.IncrementalAssign(assign)
		} else {
			err = kc.Assign(assign)
		}
		if err != nil {
			c.failed = fmt.Errorf("kafka: assign %v: %w", assign, err)
		}
		c.log.Info("partitions assigned", zap.Any("partitions", fromKafkaPartitions(assign)))
	case ckafka.RevokedPartitions:
		parts := fromKafkaPartitions(e.Partitions)
		lost := kc.AssignmentLost()
		if lost {
			// The group already gave these partitions to others (e.g. after a missed session
			// timeout); committing for them would fail, so their progress is redone elsewhere.
			c.log.Warn("partitions lost", zap.Any("partitions", parts))
		}
		switch {
		case lost && c.opts.OnLost != nil:
			c.opts.OnLost(c.handlerCtx, parts)
		case c.opts.OnRevoked != nil && len(parts) > 0:
			c.opts.OnRevoked(c.handlerCtx, parts)
		}
		for _, tp := range parts {
			delete(c.floors, tp)
			if _, ok := c.paused[tp]; ok {
				// A partition regained later must not come back paused.
				delete(c.paused, tp)
				topic := tp.Topic
				if err := kc.Resume([]ckafka.TopicPartition{{Topic: &topic, Partition: tp.Partition}}); err != nil {
					c.log.Warn("resume a revoked partition", zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition), zap.Error(err))
				}
			}
		}
		var err error
		if cooperative {
			err = kc.IncrementalUnassign(e.Partitions)
		} else {
			err = kc.Unassign()
		}
		if err != nil {
			c.failed = fmt.Errorf("kafka: unassign %v: %w", parts, err)
		}
		c.log.Info("partitions revoked", zap.Any("partitions", parts))
	}
	return nil
}

// startPositions asks OnAssigned where the new partitions start. For partitions rewound below
// the group's committed offset it records that offset as a floor, so that the replay does not
// commit backwards.
func (c *Consumer) startPositions(assigned []ckafka.TopicPartition) []ckafka.TopicPartition {
	out := make([]ckafka.TopicPartition, len(assigned))
	copy(out, assigned)
	for i := range out {
		out[i].Offset = ckafka.OffsetStored
	}
	// A rebalance that gives this member nothing still ends in an (empty) assignment, which
	// librdkafka needs acknowledged and which tells the caller that the member is in the group.
	if c.opts.OnAssigned == nil {
		return out
	}
	starts, err := c.opts.OnAssigned(c.handlerCtx, fromKafkaPartitions(assigned))
	if err != nil {
		// Still assign (the group waits for it); the poll loop stops right after.
		c.failed = fmt.Errorf("kafka: OnAssigned: %w", err)
		return out
	}
	var rewound []ckafka.TopicPartition
	for i, tp := range out {
		if start, ok := starts[TopicPartition{Topic: *tp.Topic, Partition: tp.Partition}]; ok && start != OffsetCommitted {
			out[i].Offset = ckafka.Offset(start)
			rewound = append(rewound, tp)
		}
	}
	if len(rewound) > 0 {
		c.recordFloors(rewound)
	}
	return out
}

func (c *Consumer) recordFloors(parts []ckafka.TopicPartition) {
	committed, err := c.consumer.Committed(parts, int(c.cfg.RequestTimeout.Milliseconds()))
	if err != nil {
		// Without the floor the replay commits from the start again: the lag looks high until
		// the replay catches up, but nothing is lost.
		c.log.Warn("read committed offsets of rewound partitions", zap.Error(err))
		return
	}
	for _, tp := range committed {
		if tp.Offset >= 0 {
			c.floors[TopicPartition{Topic: *tp.Topic, Partition: tp.Partition}] = int64(tp.Offset)
		}
	}
}

// closeClient leaves the group (running the revoke callback) and releases librdkafka. A lag
// query in flight runs on a client of its own: the group is left without waiting for it, and
// only the release of that client waits for it to end (by its timeout at the latest). It is released before
// Close so that callbacks run by Close may still call methods such as Lag (which then report
// ErrClosed).
func (c *Consumer) closeClient() {
	c.cancelClosing()
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return
	}
	if err := c.consumer.Close(); err != nil {
		c.log.Warn("close consumer", zap.Error(err))
	}
	close(c.logs) // Close waited for the client's log poller: nobody sends any more
	<-c.logsDone
	c.cancelHandler()
	c.offsetsMu.Lock()
	c.offsetsGone = true
	c.offsetsMu.Unlock()
	if err := c.offsets.Close(); err != nil {
		c.log.Warn("close offsets client", zap.Error(err))
	}
}

func fromKafkaPartitions(parts []ckafka.TopicPartition) []TopicPartition {
	out := make([]TopicPartition, len(parts))
	for i, tp := range parts {
		out[i] = TopicPartition{Topic: *tp.Topic, Partition: tp.Partition}
	}
	return out
}

func isNoOffset(err error) bool {
	var kerr ckafka.Error
	return errors.As(err, &kerr) && kerr.Code() == ckafka.ErrNoOffset
}
