package rabbitmq_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

// testConfig is a Config for url with short delays, so that recovery happens within a test.
func testConfig(url string) rabbitmq.Config {
	return rabbitmq.Config{
		URL:               url,
		ConnectionName:    "rabbitmq-test",
		DialTimeout:       5 * time.Second,
		Heartbeat:         5 * time.Second,
		OperationTimeout:  5 * time.Second,
		ReconnectMin:      50 * time.Millisecond,
		ReconnectMax:      500 * time.Millisecond,
		PublishTimeout:    5 * time.Second,
		PublisherChannels: 4,
		Prefetch:          8,
	}
}

func testLogger(t *testing.T) *zap.Logger {
	t.Helper()
	return zaptest.NewLogger(t)
}

// startConnection starts a Connection for cfg and closes it when the test ends.
func startConnection(t *testing.T, cfg rabbitmq.Config) *rabbitmq.Connection {
	t.Helper()
	conn, err := rabbitmq.NewConnection(cfg, testLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Close(ctx); err != nil {
			t.Errorf("close connection: %v", err)
		}
	})
	return conn
}

func newPublisher(t *testing.T, conn *rabbitmq.Connection) *rabbitmq.Publisher {
	t.Helper()
	p := rabbitmq.NewPublisher(conn, testLogger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	return p
}

// startConsumer starts a consumer and stops it when the test ends.
func startConsumer(t *testing.T, conn *rabbitmq.Connection, cfg rabbitmq.ConsumerConfig, h rabbitmq.Handler) *rabbitmq.Consumer {
	t.Helper()
	c, err := rabbitmq.NewConsumer(conn, cfg, h, testLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop consumer: %v", err)
		}
	})
	return c
}

// declare declares topo on conn and deletes its queues and exchanges when the test ends.
func declare(t *testing.T, conn *rabbitmq.Connection, url string, topo rabbitmq.Topology) {
	t.Helper()
	deleteOnCleanup(t, url, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, conn.Declare(ctx, topo))
}

// deleteOnCleanup removes the queues and exchanges of topo through a connection of its own
// when the test ends, so that the broker other tests share stays clean.
func deleteOnCleanup(t *testing.T, url string, topo rabbitmq.Topology) {
	t.Helper()
	t.Cleanup(func() {
		withRawChannel(t, url, func(ch *amqp.Channel) error {
			for _, q := range topo.Queues {
				if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
					return err
				}
			}
			for _, e := range topo.Exchanges {
				if err := ch.ExchangeDelete(e.Name, false, false); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// withRawChannel runs fn on a plain amqp091-go channel, bounded by 15 seconds.
func withRawChannel(t *testing.T, url string, fn func(*amqp.Channel) error) {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	defer func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) }()

	done := make(chan error, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- err
			return
		}
		done <- fn(ch)
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		_ = conn.CloseDeadline(time.Now().Add(time.Second)) // unblocks fn
		t.Fatal("broker call did not finish in 15s")
	}
}

// queueDepth returns the number of ready (not unacknowledged) messages in queue.
func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	var n int
	withRawChannel(t, url, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err != nil {
			return err
		}
		n = q.Messages
		return nil
	})
	return n
}

// workQueue is a topic exchange with one quorum queue bound to it by routingKey.
func workQueue(t *testing.T, routingKey string) (rabbitmq.Topology, string, string) {
	t.Helper()
	exchange := brokertest.UniqueName(t, "ex")
	queue := brokertest.UniqueName(t, "q")
	return rabbitmq.Topology{
		Exchanges: []rabbitmq.Exchange{{Name: exchange, Kind: rabbitmq.ExchangeTopic, Durable: true}},
		Queues:    []rabbitmq.Queue{{Name: queue, Type: rabbitmq.QueueQuorum, Durable: true}},
		Bindings:  []rabbitmq.Binding{{Queue: queue, Exchange: exchange, RoutingKey: routingKey}},
	}, exchange, queue
}

// collect is a Handler that sends every delivery to the returned channel.
func collect(capacity int) (rabbitmq.Handler, <-chan rabbitmq.Delivery) {
	out := make(chan rabbitmq.Delivery, capacity)
	return func(_ context.Context, d rabbitmq.Delivery) error {
		out <- d
		return nil
	}, out
}

// receive waits for one delivery.
func receive(t *testing.T, deliveries <-chan rabbitmq.Delivery, within time.Duration) rabbitmq.Delivery {
	t.Helper()
	select {
	case d := <-deliveries:
		return d
	case <-time.After(within):
		t.Fatalf("no delivery within %s", within)
		return rabbitmq.Delivery{}
	}
}

func publishCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// faultProxy forwards TCP connections to the broker and lets a test cut them, refuse new
// ones or stall the traffic, without disturbing the broker that other tests share.
type faultProxy struct {
	ln       net.Listener
	target   string
	refusing atomic.Bool
	stalled  atomic.Bool
	held     atomic.Int64 // reads held back while stalled
	closing  chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newFaultProxy starts a proxy to the broker of brokerURL and returns it with the URL that
// goes through it.
func newFaultProxy(t *testing.T, brokerURL string) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(brokerURL)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: u.Host, closing: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		close(p.closing)
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

// Cut closes every connection going through the proxy, as a network failure would.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Refuse makes the proxy close new connections at once, as if the broker were down.
func (p *faultProxy) Refuse(on bool) { p.refusing.Store(on) }

// Stall makes the proxy hold every byte instead of forwarding it, as a hung broker would.
func (p *faultProxy) Stall(on bool) { p.stalled.Store(on) }

func (p *faultProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refusing.Load() {
			_ = client.Close()
			continue
		}
		upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client] = struct{}{}
		p.conns[upstream] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(upstream, client) })
		p.wg.Go(func() { p.pipe(client, upstream) })
	}
}

func (p *faultProxy) pipe(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.stalled.Load() {
			p.held.Add(1)
		}
		for p.stalled.Load() {
			select {
			case <-p.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
