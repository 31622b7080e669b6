// Package idempotency is order-api's record of Idempotency-Keys, in PostgreSQL: which request
// each (customer_id, key) was first used for, and whether that request is still in flight,
// ended without a 202, or was accepted. It makes the Idempotency-Key contract hold across
// replicas and restarts: a key reused with a different request is refused, and a request retried
// while the first attempt still runs is refused too, as the IETF Idempotency-Key draft
// (draft-ietf-httpapi-idempotency-key-header) asks for (422 and 409 at the HTTP edge).
//
// A request is identified by a fingerprint the caller computes (order-api hashes the decoded
// order, so whitespace or member order do not matter). The store keeps the fingerprint, the
// order_id, the state and UTC timestamps, for a retention period (24 h by default); expired
// records count as absent and a bounded cleanup deletes them.
//
// Every query runs under its own deadline. A store that cannot be reached fails the call with
// an error wrapping ErrUnavailable: the caller must not place the order without its record.
package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of Claim.
var (
	// ErrKeyReused says that the key was already used for a different request.
	ErrKeyReused = errors.New("idempotency key already used for a different request")
	// ErrInFlight says that a request with the same key and the same fingerprint is being
	// processed right now, on this replica or another.
	ErrInFlight = errors.New("a request with this idempotency key is still being processed")
	// ErrUnavailable says that the store could not be asked or did not answer in time.
	ErrUnavailable = errors.New("idempotency store unavailable")
)

// The states of a record.
const (
	// StateProcessing: a request holds the key and is being processed; its claim expires after
	// the lease, so that a replica that died mid-request does not block the key for good.
	StateProcessing = "processing"
	// StateFailed: the request ended without a 202 and may have reached a broker; the key stays
	// bound to its fingerprint and the same request may be retried.
	StateFailed = "failed"
	// StateCompleted: the request was accepted (202).
	StateCompleted = "completed"
)

// Defaults of Options.
const (
	DefaultRetention       = 24 * time.Hour
	DefaultQueryTimeout    = 2 * time.Second
	DefaultCleanupInterval = 10 * time.Minute
	// DefaultCleanupBatch bounds one DELETE of the cleanup, so that it never holds many locks.
	DefaultCleanupBatch = 1000
)

// Options tunes a Store.
type Options struct {
	// Retention is how long a key stays bound to its first request, counted from that request.
	Retention time.Duration
	// Lease is how long a claim in state processing blocks others; past it the request is
	// considered abandoned (its process died) and a retry with the same request takes it over.
	// It must exceed the longest a request can take.
	Lease time.Duration
	// QueryTimeout bounds every query.
	QueryTimeout time.Duration
}

// Request is what a key is bound to.
type Request struct {
	CustomerID string
	Key        string
	// Fingerprint identifies the request's content; a different one under the same key is
	// ErrKeyReused.
	Fingerprint []byte
	// OrderID is the order_id the request places.
	OrderID string
}

// Store records idempotency keys in one PostgreSQL table. It is safe for concurrent use, by any
// number of processes sharing the database.
type Store struct {
	pool *pgxpool.Pool
	opts Options
}

// New returns a Store on pool; it does not touch the database until Migrate or a call.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("idempotency: no connection pool")
	}
	if opts.Retention <= 0 {
		return nil, fmt.Errorf("idempotency: retention must be positive, got %s", opts.Retention)
	}
	if opts.Lease <= 0 {
		return nil, fmt.Errorf("idempotency: lease must be positive, got %s", opts.Lease)
	}
	if opts.QueryTimeout <= 0 {
		return nil, fmt.Errorf("idempotency: query timeout must be positive, got %s", opts.QueryTimeout)
	}
	return &Store{pool: pool, opts: opts}, nil
}

// migrationLock is the advisory lock key that serialises Migrate across replicas starting at
// once: concurrent CREATE TABLE IF NOT EXISTS can otherwise fail on PostgreSQL's catalog.
const migrationLock = 0x6f72646572617069 // "orderapi"

// schema creates the table; it is idempotent and runs at every start.
const schema = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
	customer_id  text        NOT NULL,
	key          text        NOT NULL,
	fingerprint  bytea       NOT NULL,
	order_id     uuid        NOT NULL,
	state        text        NOT NULL CHECK (state IN ('processing', 'failed', 'completed')),
	claim        text        NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	PRIMARY KEY (customer_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
`

// Migrate creates the table and its index when they are missing.
func (s *Store) Migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("idempotency: create the table: %w", err)
	}
	return nil
}

// Ping checks that the database answers, within ctx and the query timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Claim is a request's hold on its key, returned by Store.Claim. Finish it once the request
// ended.
type Claim struct {
	store *Store
	req   Request
	token string
	// Replay is set when the key's request was already accepted: this is a retry of a completed
	// request, which holds nothing and needs no Finish.
	Replay bool
	// fresh is set when this claim created the record (or replaced an expired one).
	fresh bool
}

// claimSQL binds the key to the request unless a live record says otherwise: it inserts a new
// record, replaces one older than the retention, or takes over one of the same fingerprint
// that failed or whose processing lease ran out. It returns nothing when the record stays as
// it is; the caller then reads it to tell why.
const claimSQL = `
INSERT INTO idempotency_keys AS k
	(customer_id, key, fingerprint, order_id, state, claim, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'processing', $5, now(), now())
ON CONFLICT (customer_id, key) DO UPDATE SET
	fingerprint = EXCLUDED.fingerprint,
	order_id    = EXCLUDED.order_id,
	state       = 'processing',
	claim       = EXCLUDED.claim,
	created_at  = CASE WHEN k.created_at < now() - $6::interval THEN now() ELSE k.created_at END,
	updated_at  = now()
WHERE k.created_at < now() - $6::interval
   OR (k.fingerprint = EXCLUDED.fingerprint
       AND (k.state = 'failed' OR (k.state = 'processing' AND k.updated_at < now() - $7::interval)))
RETURNING (k.created_at = k.updated_at) AS fresh`

// Claim binds req's key to req, or tells why it cannot: ErrKeyReused when the key belongs to
// another fingerprint, ErrInFlight while a request with the same fingerprint is processed, an
// error wrapping ErrUnavailable when the store fails. A key whose request was accepted yields a
// Claim with Replay set.
func (s *Store) Claim(ctx context.Context, req Request) (*Claim, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	// One deadline for every attempt. Between the upsert and the read the record can vanish
	// (its claim released it): try again.
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	for range 3 {
		c, err := s.tryClaim(ctx, req, token)
		if err == nil || !errors.Is(err, errVanished) {
			return c, err
		}
	}
	return nil, fmt.Errorf("%w: the key's record kept changing", ErrUnavailable)
}

var errVanished = errors.New("record vanished")

func (s *Store) tryClaim(ctx context.Context, req Request, token string) (*Claim, error) {
	var fresh bool
	err := s.pool.QueryRow(ctx, claimSQL, req.CustomerID, req.Key, req.Fingerprint, req.OrderID, token,
		s.opts.Retention, s.opts.Lease).Scan(&fresh)
	switch {
	case err == nil:
		return &Claim{store: s, req: req, token: token, fresh: fresh}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w: claim the key: %w", ErrUnavailable, err)
	}
	var (
		fingerprint []byte
		state       string
	)
	err = s.pool.QueryRow(ctx, `SELECT fingerprint, state FROM idempotency_keys WHERE customer_id = $1 AND key = $2`,
		req.CustomerID, req.Key).Scan(&fingerprint, &state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errVanished
	case err != nil:
		return nil, fmt.Errorf("%w: read the key: %w", ErrUnavailable, err)
	case string(fingerprint) != string(req.Fingerprint):
		return nil, ErrKeyReused
	case state == StateCompleted:
		return &Claim{store: s, req: req, Replay: true}, nil
	default:
		return nil, ErrInFlight
	}
}

// Outcome is how a claimed request ended.
type Outcome int

// The outcomes of a request.
const (
	// Accepted: the request was answered with 202.
	Accepted Outcome = iota + 1
	// NotPlaced: nothing reached a broker (the order broke rules, or the validator could not
	// judge it). A key this claim bound is released, so a corrected request may use it.
	NotPlaced
	// MaybePlaced: the event may be on a broker. The key stays bound to the request, which may
	// be retried.
	MaybePlaced
)

// Finish records how the claimed request ended. It runs even when ctx is cancelled (the client
// hung up), under its own query timeout. When the lease ran out and another request took the
// key over, Finish leaves the record to that request.
func (c *Claim) Finish(ctx context.Context, o Outcome) error {
	if c.Replay {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.store.opts.QueryTimeout)
	defer cancel()
	var err error
	switch {
	case o == Accepted:
		_, err = c.store.pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'completed', updated_at = now()
			WHERE customer_id = $1 AND key = $2 AND claim = $3`, c.req.CustomerID, c.req.Key, c.token)
	case o == NotPlaced && c.fresh:
		_, err = c.store.pool.Exec(ctx, `DELETE FROM idempotency_keys
			WHERE customer_id = $1 AND key = $2 AND claim = $3`, c.req.CustomerID, c.req.Key, c.token)
	default:
		_, err = c.store.pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'failed', updated_at = now()
			WHERE customer_id = $1 AND key = $2 AND claim = $3`, c.req.CustomerID, c.req.Key, c.token)
	}
	if err != nil {
		return fmt.Errorf("%w: record the outcome: %w", ErrUnavailable, err)
	}
	return nil
}

// Record is what the store holds for a key, for tests and operators.
type Record struct {
	Fingerprint []byte
	OrderID     string
	State       string
	CreatedAt   time.Time // UTC
	UpdatedAt   time.Time // UTC
}

// Get returns the record of a key; ok is false when there is none (or it expired).
func (s *Store) Get(ctx context.Context, customerID, key string) (r Record, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	err = s.pool.QueryRow(ctx, `SELECT fingerprint, order_id::text, state, created_at, updated_at
		FROM idempotency_keys WHERE customer_id = $1 AND key = $2 AND created_at >= now() - $3::interval`,
		customerID, key, s.opts.Retention).Scan(&r.Fingerprint, &r.OrderID, &r.State, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, true, nil
}

// DeleteExpired deletes records older than the retention, at most batch rows per statement and
// at most maxBatches statements, and returns how many it deleted. Rows another replica is
// deleting at the same time are skipped, not waited for.
func (s *Store) DeleteExpired(ctx context.Context, batch, maxBatches int) (int64, error) {
	var total int64
	for range maxBatches {
		qctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
		tag, err := s.pool.Exec(qctx, `DELETE FROM idempotency_keys WHERE (customer_id, key) IN (
			SELECT customer_id, key FROM idempotency_keys WHERE created_at < now() - $1::interval
			LIMIT $2 FOR UPDATE SKIP LOCKED)`, s.opts.Retention, batch)
		cancel()
		if err != nil {
			return total, fmt.Errorf("%w: delete expired keys: %w", ErrUnavailable, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			break
		}
	}
	return total, nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("idempotency: claim token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
