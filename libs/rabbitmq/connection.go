package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// errDroppedSilently stands for a connection that ended without a broker reason, e.g. after a
// timed-out close.
var errDroppedSilently = errors.New("connection closed without a reason from the broker")

// Connection owns one AMQP connection and keeps it alive: when the broker closes it or the
// network drops it, a goroutine owned by the Connection re-dials with capped exponential
// backoff, re-declares every registered Topology and only then hands the new connection out.
// Publishers and consumers built on it recover on their own by asking for a fresh channel.
//
// It is safe for concurrent use. Create it with NewConnection, then Start; Close stops it.
type Connection struct {
	cfg   Config
	uris  []string // the nodes to dial, from cfg.URL
	addrs []string // uris without their credentials, for logs and errors
	log   *zap.Logger
	// next is the index of the URI dialled first. Only the dialling code uses it: Start, then
	// the reconnect loop.
	next int

	loop     context.Context // cancelled by Close: stops reconnecting and waiting
	stopLoop context.CancelFunc

	mu         sync.Mutex
	conn       *amqp.Connection // nil while disconnected
	changed    chan struct{}    // closed and replaced on every change of conn or closed
	lastErr    error            // why the last connection or attempt failed
	topologies []*Topology
	started    bool
	closed     bool
	done       chan struct{} // closed when the reconnect goroutine has returned; nil before Start
}

// session is one established AMQP connection and its notifications.
type session struct {
	addr   string // the node it is connected to, without credentials
	conn   *amqp.Connection
	closes chan *amqp.Error
	blocks chan amqp.Blocking
}

// NewConnection validates cfg and returns a Connection that is not connected yet.
func NewConnection(cfg Config, log *zap.Logger) (*Connection, error) {
	cfg, err := cfg.resolved() // reads RABBITMQ_URL_FILE, if set
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	uris := cfg.URIs()
	addrs := make([]string, len(uris))
	for i, uri := range uris {
		addrs[i] = brokerAddress(uri)
	}
	loop, stop := context.WithCancel(context.Background())
	return &Connection{
		cfg:      cfg,
		uris:     uris,
		addrs:    addrs,
		log:      log.Named("rabbitmq").With(zap.String("broker", strings.Join(addrs, ","))),
		loop:     loop,
		stopLoop: stop,
		changed:  make(chan struct{}),
	}, nil
}

// Start dials the broker, waiting at most DialTimeout per URI or until ctx ends, declares the
// registered topology and starts watching the connection. A broker that cannot be reached at
// start is an error: the caller decides whether to fail or to retry.
func (c *Connection) Start(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return errors.New("rabbitmq: connection already started")
	}
	c.started = true
	c.mu.Unlock()

	s, err := c.connect(ctx)
	if err != nil {
		c.setLastErr(err)
		c.mu.Lock()
		c.started = false // the caller may try again
		c.mu.Unlock()
		return fmt.Errorf("rabbitmq: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = s.conn.CloseDeadline(time.Now().Add(c.cfg.OperationTimeout))
		return ErrClosed
	}
	c.done = make(chan struct{})
	c.conn, c.lastErr = s.conn, nil
	c.broadcast()
	c.mu.Unlock()
	c.log.Info("connected", zap.String("node", s.addr))
	// The reconnect loop outlives Start's ctx on purpose: the Connection owns it and Close stops it.
	go c.run(s) //nolint:contextcheck // see above
	return nil
}

// Close stops reconnecting and closes the connection, which closes every channel opened on it.
// Unconfirmed publishes fail with ErrUnconfirmed; unacknowledged deliveries go back to their
// queues. Close is idempotent.
func (c *Connection) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.broadcast()
	done := c.done
	c.mu.Unlock()

	c.stopLoop()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			// The loop closes whatever it still dials once it sees closed.
			return fmt.Errorf("rabbitmq: close: %w", ctx.Err())
		}
	}

	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn == nil {
		return nil
	}
	deadline := time.Now().Add(c.cfg.OperationTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// The connection is released whatever the broker answers; a connection that was failing
	// as it was closed is nothing the caller can act on.
	if err := conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp.ErrClosed) {
		c.log.Warn("connection did not close cleanly", zap.Error(err))
	}
	c.log.Info("connection closed")
	return nil
}

// Ready reports whether the connection is up with its topology declared. It never blocks on
// the network, so it suits a readiness probe.
func (c *Connection) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.conn == nil || c.conn.IsClosed():
		if c.lastErr != nil {
			return fmt.Errorf("%w: %w", ErrNotConnected, c.lastErr)
		}
		return ErrNotConnected
	}
	return nil
}

// Down returns an error wrapping ErrNotConnected, with the reason, while the connection is known
// to be lost: it was established by Start, then the broker or the network dropped it, and the
// reconnect loop has not replaced it yet. It returns nil while connected and before Start (not
// known to be down), ErrClosed after Close. Unlike a publish, which waits for the connection, it
// never blocks: callers that would rather fail at once while the broker is away ask it first.
func (c *Connection) Down() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.done == nil:
		return nil // not started: nothing is known yet
	case c.conn == nil || c.conn.IsClosed():
		if c.lastErr != nil {
			return fmt.Errorf("%w: %w", ErrNotConnected, c.lastErr)
		}
		return ErrNotConnected
	}
	return nil
}

// Declare declares t now, waiting up to ctx for a connection, and again after every reconnect
// before the connection is handed out. A topology the broker refuses is not kept.
func (c *Connection) Declare(ctx context.Context, t Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	entry := &t
	c.mu.Lock()
	// Registered first so that a reconnect racing with this call declares it too.
	c.topologies = append(c.topologies, entry)
	c.mu.Unlock()

	ch, conn, err := c.channel(ctx, t.declare)
	if err == nil {
		c.closeChannel(conn, ch)
		return nil
	}
	c.mu.Lock()
	c.topologies = slices.DeleteFunc(c.topologies, func(x *Topology) bool { return x == entry })
	c.mu.Unlock()
	return fmt.Errorf("rabbitmq: %w", err)
}

// Channel opens a channel on the current connection, waiting up to ctx for one. The caller
// owns the channel and closes it; it dies with the connection and is not reopened.
func (c *Connection) Channel(ctx context.Context) (*amqp.Channel, error) {
	ch, _, err := c.channel(ctx, nil)
	return ch, err
}

// channel opens a channel and runs setup on it, both bounded by OperationTimeout. It returns
// the connection the channel lives on, so that later calls on the channel can be guarded too.
func (c *Connection) channel(ctx context.Context, setup func(*amqp.Channel) error) (*amqp.Channel, *amqp.Connection, error) {
	for {
		conn, err := c.current(ctx)
		if err != nil {
			return nil, nil, err
		}
		ch, err := c.openChannel(conn, setup)
		if err == nil {
			return ch, conn, nil
		}
		switch {
		case !conn.IsClosed():
			return nil, nil, err
		case ctx.Err() != nil:
			return nil, nil, fmt.Errorf("%w: %w: %w", ErrNotConnected, err, ctx.Err())
		}
		// The connection died under us: wait for the next one.
	}
}

func (c *Connection) openChannel(conn *amqp.Connection, setup func(*amqp.Channel) error) (*amqp.Channel, error) {
	stop := c.guard(conn, "open channel")
	defer stop()
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if setup != nil {
		if err := setup(ch); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	return ch, nil
}

// closeChannel closes ch, bounded by OperationTimeout; a channel that is already closed is fine.
func (c *Connection) closeChannel(conn *amqp.Connection, ch *amqp.Channel) {
	stop := c.guard(conn, "close channel")
	defer stop()
	_ = ch.Close()
}

// guard bounds a synchronous AMQP method: amqp091-go takes no context for them, so when the
// broker does not answer within OperationTimeout the whole connection is dropped, which fails
// the pending call and lets the reconnect loop start over. The returned func disarms it.
func (c *Connection) guard(conn *amqp.Connection, op string) (disarm func() bool) {
	t := time.AfterFunc(c.cfg.OperationTimeout, func() {
		c.log.Warn("broker did not answer in time, dropping the connection",
			zap.String("operation", op), zap.Duration("timeout", c.cfg.OperationTimeout))
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
	})
	return t.Stop
}

// current returns the live connection, waiting up to ctx for one.
func (c *Connection) current(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.conn != nil && !c.conn.IsClosed() {
			conn := c.conn
			c.mu.Unlock()
			return conn, nil
		}
		changed, lastErr := c.changed, c.lastErr
		c.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("%w (last error: %w): %w", ErrNotConnected, lastErr, ctx.Err())
			}
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
		}
	}
}

// connect dials each URI in turn, from c.next on, each within DialTimeout, until one connects
// and declares the registered topology; that URI is dialled first next time.
func (c *Connection) connect(ctx context.Context) (*session, error) {
	var errs []error
	for i := range c.uris {
		at := (c.next + i) % len(c.uris)
		dialCtx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		s, err := c.connectTo(dialCtx, at)
		cancel()
		if err == nil {
			c.next = at
			return s, nil
		}
		errs = append(errs, fmt.Errorf("connect to %s: %w", c.addrs[at], err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// connectTo dials the URI at index at and declares the registered topology.
func (c *Connection) connectTo(ctx context.Context, at int) (*session, error) {
	props := amqp.NewConnectionProperties()
	if c.cfg.ConnectionName != "" {
		props.SetClientConnectionName(c.cfg.ConnectionName)
	}
	conn, err := amqp.DialConfig(c.uris[at], amqp.Config{
		Heartbeat:  c.cfg.Heartbeat,
		Properties: props,
		Dial:       c.dialer(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	s := &session{
		addr:   c.addrs[at],
		conn:   conn,
		closes: conn.NotifyClose(make(chan *amqp.Error, 1)),
		blocks: conn.NotifyBlocked(make(chan amqp.Blocking, 1)),
	}
	c.mu.Lock()
	var registered []Topology
	for _, t := range c.topologies {
		registered = append(registered, *t)
	}
	c.mu.Unlock()
	if len(registered) > 0 {
		ch, err := c.openChannel(conn, mergeTopologies(registered...).declare)
		if err != nil {
			_ = conn.CloseDeadline(time.Now().Add(c.cfg.OperationTimeout))
			return nil, err
		}
		c.closeChannel(conn, ch)
	}
	return s, nil
}

// dialer connects within ctx and bounds the AMQP handshake by DialTimeout too; amqp091-go
// clears the deadline once the connection is open and heartbeats take over.
func (c *Connection) dialer(ctx context.Context) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(c.cfg.DialTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := conn.SetDeadline(deadline); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// run is the reconnect loop: it waits for the connection to die and replaces it, until Close.
func (c *Connection) run(s *session) {
	defer close(c.done)
	for {
		reason, stopped := c.watch(s)
		if stopped {
			return
		}
		c.setDown(reason)
		c.log.Warn("connection lost", zap.String("node", s.addr), zap.Error(reason))
		// The node that dropped the connection is dialled last: in a cluster, another one
		// most likely answers at once.
		c.next = (c.next + 1) % len(c.uris)
		if s = c.reconnect(); s == nil {
			return
		}
	}
}

// watch blocks until the connection of s ends or the loop is stopped.
func (c *Connection) watch(s *session) (reason error, stopped bool) {
	blocks := s.blocks
	for {
		select {
		case <-c.loop.Done():
			return nil, true
		case b, ok := <-blocks:
			switch {
			case !ok:
				blocks = nil
			case b.Active:
				// Publishes stall (their contexts still bound them) until the alarm clears.
				c.log.Warn("broker blocked this connection", zap.String("reason", b.Reason))
			default:
				c.log.Info("broker unblocked this connection")
			}
		case err, ok := <-s.closes:
			if ok && err != nil {
				return err, false
			}
			return errDroppedSilently, false
		}
	}
}

// reconnect dials until it succeeds or the loop is stopped (then it returns nil).
func (c *Connection) reconnect() *session {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.cfg.ReconnectMin,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.cfg.ReconnectMax,
	}
	for attempt := 1; ; attempt++ {
		// The library caps the interval before jitter; cap the delay itself.
		if !sleep(c.loop, min(b.NextBackOff(), c.cfg.ReconnectMax)) {
			return nil
		}

		s, err := c.connect(c.loop)
		if err != nil {
			if c.loop.Err() != nil {
				return nil
			}
			c.setLastErr(err)
			c.log.Warn("reconnect failed", zap.Int("attempt", attempt), zap.Error(err))
			continue
		}
		if !c.setUp(s.conn) {
			_ = s.conn.CloseDeadline(time.Now().Add(c.cfg.OperationTimeout))
			return nil
		}
		c.log.Info("reconnected", zap.String("node", s.addr), zap.Int("attempt", attempt))
		return s
	}
}

// setUp publishes conn as the current connection unless Close has begun.
func (c *Connection) setUp(conn *amqp.Connection) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.conn, c.lastErr = conn, nil
	c.broadcast()
	return true
}

func (c *Connection) setDown(reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.lastErr = nil, reason
	c.broadcast()
}

func (c *Connection) setLastErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

// broadcast wakes everyone waiting in current. Callers hold c.mu.
func (c *Connection) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// sleep waits for d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
