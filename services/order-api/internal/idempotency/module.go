package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
)

// Config is what Module needs; order-api's config package derives it from the environment.
type Config struct {
	// URL is a libpq connection URL, postgres://user:password@host:port/database?….
	URL string
	// PasswordFile, when set, holds the password (a Kubernetes Secret mounted as a file); it
	// replaces any password in URL.
	PasswordFile string
	Options
}

// Module provides a *Store on a connection pool it opens and closes with the application, and
// the readiness check "postgres". Start fails when the database does not answer or the table
// cannot be created; a cleanup of expired keys runs every DefaultCleanupInterval until stop.
var Module = fx.Module("idempotency",
	fx.Provide(
		newLifecycleStore,
		admin.AsCheck(func(s *Store) admin.Check { return admin.Check{Name: "postgres", Check: s.Ping} }),
	),
)

// NewPool returns a connection pool for cfg without connecting: connections open on first use.
func NewPool(cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("idempotency: POSTGRES_URL: %w", err)
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("idempotency: POSTGRES_PASSWORD_FILE: %w", err)
		}
		pc.ConnConfig.Password = strings.TrimRight(string(b), "\r\n")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("idempotency: connection pool: %w", err)
	}
	return pool, nil
}

func newLifecycleStore(lc fx.Lifecycle, cfg Config, log *zap.Logger) (*Store, error) {
	pool, err := NewPool(cfg)
	if err != nil {
		return nil, err
	}
	store, err := New(pool, cfg.Options)
	if err != nil {
		pool.Close()
		return nil, err
	}
	cleanup := newCleaner(store, DefaultCleanupInterval, log.Named("idempotency"))
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := store.Ping(ctx); err != nil {
				pool.Close() // fx does not stop a hook whose start failed
				return fmt.Errorf("idempotency: %w", err)
			}
			if err := store.Migrate(ctx); err != nil {
				pool.Close()
				return err
			}
			cleanup.start(ctx)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			err := cleanup.stop(ctx)
			pool.Close()
			return err
		},
	})
	return store, nil
}

// cleaner deletes expired keys every interval; its goroutine lives from start to stop.
type cleaner struct {
	store    *Store
	interval time.Duration
	log      *zap.Logger

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newCleaner(s *Store, interval time.Duration, log *zap.Logger) *cleaner {
	return &cleaner{store: s, interval: interval, log: log, done: make(chan struct{})}
}

// maxCleanupBatches bounds one round of the cleanup: at most this many DELETEs of
// DefaultCleanupBatch rows; what is left waits for the next round.
const maxCleanupBatches = 10

// start runs the cleanup until stop; it keeps ctx's values but not its end (OnStart's context
// ends once the application has started).
func (c *cleaner) start(ctx context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			n, err := c.store.DeleteExpired(ctx, DefaultCleanupBatch, maxCleanupBatches)
			switch {
			case err != nil && ctx.Err() == nil:
				c.log.Warn("deleting expired idempotency keys failed", zap.Error(err))
			case n > 0:
				c.log.Info("deleted expired idempotency keys", zap.Int64("keys", n))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the cleanup and waits for it, at most until ctx ends.
func (c *cleaner) stop(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.once.Do(c.cancel)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return errors.New("idempotency: the cleanup did not stop in time")
	}
}
