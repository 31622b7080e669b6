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

// Producer publishes messages through one long-lived idempotent librdkafka producer. It is safe
// for concurrent use; create one per process and Close it on shutdown.
type Producer struct {
	cfg   Config
	log   *zap.Logger
	admin *Admin

	mu       sync.RWMutex // held for reading around every librdkafka call, for writing by Close
	closed   bool
	producer *ckafka.Producer

	logs       chan ckafka.LogEvent // librdkafka's log lines; closed by Close
	eventsDone chan struct{}        // closed when serveEvents returned
	gone       chan struct{}        // closed once no delivery report can arrive any more

	// The brokers' state as librdkafka reports it: down from its all-brokers-down error until a
	// probe of watchBrokers reaches a broker again.
	stateMu     sync.Mutex
	down        error         // nil while not known to be down
	downSince   time.Time     // when down was set
	brokersDown chan struct{} // wakes watchBrokers; buffered, one pending wake-up is enough
	stopWatch   chan struct{} // closed by Close
	watchDone   chan struct{} // closed when watchBrokers returned
}

// ErrAllBrokersDown says that librdkafka has lost its connection to every broker and has not
// reached one since. Publish would only queue the message until a broker returns or its
// deadline passes.
var ErrAllBrokersDown = errors.New("kafka: all brokers down")

// Probing for a broker while all are down: one metadata request at a time, each bounded by
// probeTimeout, one every probeInterval at most. A metadata request needs a connection, so it
// also makes librdkafka reconnect, which it does not otherwise hurry to do for a producer that
// is given nothing to send.
const (
	probeTimeout  = time.Second
	probeInterval = 250 * time.Millisecond
)

// NewProducer creates the producer. librdkafka connects in the background, so this does not
// block; use Ready to wait for a broker.
func NewProducer(cfg Config, log *zap.Logger) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: producer config: %w", err)
	}
	log = log.With(zap.String("component", "kafka.producer"))
	logVersion(log)

	logs := newLogChannel()
	conf := commonConfig(cfg)
	maps.Copy(conf, ckafka.ConfigMap{
		// Idempotence gives each message a sequence number, so the broker drops the duplicates
		// that retries would otherwise write and keeps per-partition order. It needs acks=all,
		// which is also what makes an acknowledged message survive the loss of the leader.
		"enable.idempotence": true,
		"acks":               "all",
		// Bounded: a message that cannot be delivered in this time fails instead of waiting forever.
		"delivery.timeout.ms": int(cfg.DeliveryTimeout.Milliseconds()),
		"linger.ms":           int(cfg.Linger.Milliseconds()),
		"compression.type":    cfg.Compression,
		// The Java client's partitioner, so a key lands on the same partition whichever client
		// produced it.
		"partitioner": "murmur2_random",
		// Publish only needs the outcome, not a copy of key and value in every delivery report.
		"go.delivery.report.fields": "none",
		"go.logs.channel.enable":    true,
		"go.logs.channel":           logs,
		// The Go client allocates its Events() and ProduceChannel() buffers up front, a million
		// entries each by default: 24 MB of heap, most of order-api's, for channels that carry
		// nothing here (delivery reports go to Publish's own channels, messages through
		// Produce). Events() still brings the client's errors, which serveEvents reads at once.
		"go.events.channel.size":  1000,
		"go.produce.channel.size": 1000,
		// librdkafka waits up to 10 s (its default) between attempts to reach a broker that
		// went away; a broker that is back should be noticed within about a second.
		"reconnect.backoff.max.ms": 1000,
	})
	kp, err := ckafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka: create producer: %w", err)
	}
	derived, err := ckafka.NewAdminClientFromProducer(kp)
	if err != nil {
		kp.Close()
		return nil, fmt.Errorf("kafka: create producer admin client: %w", err)
	}

	p := &Producer{
		cfg:         cfg,
		log:         log,
		admin:       &Admin{cfg: cfg, client: derived},
		producer:    kp,
		logs:        logs,
		eventsDone:  make(chan struct{}),
		gone:        make(chan struct{}),
		brokersDown: make(chan struct{}, 1),
		stopWatch:   make(chan struct{}),
		watchDone:   make(chan struct{}),
	}
	go p.serveEvents()
	go p.watchBrokers()
	return p, nil
}

// serveEvents logs what librdkafka reports outside of delivery reports (those go to the
// per-message channels of Publish). It returns when Close closed both channels.
func (p *Producer) serveEvents() {
	defer close(p.eventsDone)
	events, logs := p.producer.Events(), p.logs
	for events != nil || logs != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch e := ev.(type) {
			case ckafka.Error:
				if e.Code() == ckafka.ErrAllBrokersDown {
					p.setDown(e)
					continue
				}
				if e.IsFatal() {
					// With idempotence a fatal error (e.g. a sequence gap the broker cannot
					// repair) leaves the producer unusable; Ready reports it from now on.
					p.log.Error("fatal producer error", zap.Error(e))
				} else {
					p.log.Warn("producer error", zap.Error(e))
				}
			default:
				p.log.Debug("producer event", zap.Stringer("event", e))
			}
		case le, ok := <-logs:
			if !ok {
				logs = nil
				continue
			}
			logLibrdkafka(p.log, le)
		}
	}
}

// Publish sends msg and waits for the broker's acknowledgement from all in-sync replicas. It
// returns nil once the message is stored, the delivery error if the producer gave up, or
// ctx's error if the caller's deadline passed first — in which case the message may still be
// delivered later (at-least-once: callers retry with the same key and consumers deduplicate).
// While every broker is down the message waits in librdkafka's queue: Publish does not fail
// fast, callers that would rather do so ask Down first. The record carries the context of ctx's
// span (tracing.go).
func (p *Producer) Publish(ctx context.Context, msg Message) error {
	if msg.Topic == "" {
		return errors.New("kafka: publish: empty topic")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publish to %s: %w", msg.Topic, err)
	}
	ctx, span := startSend(ctx, &msg)
	delivered, err := p.deliver(ctx, msg)
	endSend(span, delivered, err)
	return err
}

// deliver produces msg and waits for its delivery report, which it returns.
func (p *Producer) deliver(ctx context.Context, msg Message) (*ckafka.Message, error) {
	// Buffered so that librdkafka's poller never blocks on a caller that stopped waiting.
	delivery := make(chan ckafka.Event, 1)
	if err := p.produce(msg.toKafka(), delivery); err != nil {
		return nil, fmt.Errorf("kafka: publish to %s: %w", msg.Topic, err)
	}
	select {
	case ev := <-delivery:
		km, ok := ev.(*ckafka.Message)
		if !ok {
			return nil, fmt.Errorf("kafka: publish to %s: unexpected delivery event %v", msg.Topic, ev)
		}
		if err := km.TopicPartition.Error; err != nil {
			return km, fmt.Errorf("kafka: deliver to %s: %w", msg.Topic, err)
		}
		return km, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("kafka: publish to %s: %w", msg.Topic, ctx.Err())
	case <-p.gone:
		return nil, fmt.Errorf("kafka: publish to %s: %w", msg.Topic, ErrClosed)
	}
}

func (p *Producer) produce(km *ckafka.Message, delivery chan ckafka.Event) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	return p.producer.Produce(km, delivery)
}

// Ready reports whether the producer can deliver: it has hit no fatal error and a broker
// answered a metadata request by ctx's deadline. It serves the readiness probe and start-up.
func (p *Producer) Ready(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.producer.GetFatalError(); err != nil {
		return fmt.Errorf("kafka: producer failed: %w", err)
	}
	return ping(ctx, p.cfg, p.producer.GetMetadata)
}

// Down returns an error wrapping ErrAllBrokersDown while every broker is known to be
// unreachable — librdkafka reported all broker connections down and no broker answered since —
// or the producer's fatal error, if it hit one. Otherwise it returns nil: the brokers are up,
// slow, or not known to be down. It never waits on the network, so it can be asked before every
// publish; a caller that would rather fail at once than wait for its deadline asks it first.
func (p *Producer) Down() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.producer.GetFatalError(); err != nil {
		return fmt.Errorf("kafka: producer failed: %w", err)
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	return p.down
}

// setDown records librdkafka's all-brokers-down error and wakes watchBrokers; it logs the
// transition, not every repetition.
func (p *Producer) setDown(reason ckafka.Error) {
	p.stateMu.Lock()
	already := p.down != nil
	if !already {
		p.down = fmt.Errorf("%w (%s): %w", ErrAllBrokersDown, p.cfg.BootstrapServers, reason)
		p.downSince = time.Now()
	}
	p.stateMu.Unlock()
	if already {
		return
	}
	p.log.Warn("all brokers down: publishing fails at once until a broker answers again", zap.Error(reason))
	select {
	case p.brokersDown <- struct{}{}:
	default:
	}
}

// watchBrokers probes the cluster while Down reports it down, and clears the state once a
// broker answers. The producer owns it; Close stops it.
func (p *Producer) watchBrokers() {
	defer close(p.watchDone)
	for {
		select {
		case <-p.stopWatch:
			return
		case <-p.brokersDown:
		}
		for {
			err := p.probe()
			if err == nil {
				p.setUp()
				break
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			select {
			case <-p.stopWatch:
				return
			case <-time.After(probeInterval):
			}
		}
	}
}

func (p *Producer) probe() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	return ping(ctx, p.cfg, p.producer.GetMetadata)
}

func (p *Producer) setUp() {
	p.stateMu.Lock()
	was := p.down != nil
	since := p.downSince
	p.down = nil
	p.stateMu.Unlock()
	if was {
		p.log.Info("a broker answers again: publishing resumes", zap.Duration("down_for", time.Since(since)))
	}
}

// Admin returns an admin client that shares the producer's connections. It is valid until the
// producer is closed; closing it is not needed.
func (p *Producer) Admin() *Admin { return p.admin }

// Close flushes outstanding messages until ctx's deadline, then purges what is left (their
// publishers get an error) and releases the producer. Publish calls after Close fail with
// ErrClosed. Close is idempotent.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	// From here no Produce call or probe is running or can start, so the producer is ours alone.
	close(p.stopWatch)
	<-p.watchDone

	var err error
	if left := p.flush(ctx); left > 0 {
		err = fmt.Errorf("kafka: close producer: %d messages or requests still outstanding: %w",
			left, context.DeadlineExceeded)
		if perr := p.producer.Purge(ckafka.PurgeQueue | ckafka.PurgeInFlight); perr != nil {
			err = errors.Join(err, fmt.Errorf("kafka: purge producer: %w", perr))
		}
		// Purged messages get failed delivery reports; serve them so that waiting publishers
		// learn the outcome now rather than at their own deadline.
		p.producer.Flush(int(purgeGrace.Milliseconds()))
	}
	p.admin.Close()
	p.producer.Close()
	close(p.logs) // Close waited for the client's log poller: nobody sends any more
	<-p.eventsDone
	close(p.gone)
	p.log.Info("producer closed")
	return err
}

// purgeGrace bounds serving the local delivery reports of purged messages during Close.
const purgeGrace = 100 * time.Millisecond

func (p *Producer) flush(ctx context.Context) int {
	ms := int(p.cfg.DeliveryTimeout.Milliseconds())
	if deadline, ok := ctx.Deadline(); ok {
		ms = max(0, int(time.Until(deadline).Milliseconds()))
	}
	if ctx.Err() != nil {
		ms = 0
	}
	return p.producer.Flush(ms)
}
