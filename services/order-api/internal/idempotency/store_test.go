package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency/idempotencytest"
)

func TestMain(m *testing.M) { brokertest.Main(m) }

var defaultOptions = idempotency.Options{Retention: time.Hour, Lease: 30 * time.Second, QueryTimeout: 5 * time.Second}

// openStore returns a migrated Store on url, as one order-api process would have it; its pool
// closes when the test ends.
func openStore(t *testing.T, url string, opts idempotency.Options) *idempotency.Store {
	t.Helper()
	pool, err := idempotency.NewPool(idempotency.Config{URL: url})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, err := idempotency.New(pool, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Migrate(ctx))
	return s
}

func request(key, body string) idempotency.Request {
	return idempotency.Request{
		CustomerID:  "c-42",
		Key:         key,
		Fingerprint: []byte(body),
		OrderID:     "6fd14198-8280-5975-b4e4-3cb950292771",
	}
}

func claim(t *testing.T, s *idempotency.Store, r idempotency.Request) (*idempotency.Claim, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Claim(ctx, r)
}

func finish(t *testing.T, c *idempotency.Claim, o idempotency.Outcome) {
	t.Helper()
	require.NoError(t, c.Finish(context.Background(), o))
}

func TestTheSameRequestIsAReplayAndAnotherIsRefused(t *testing.T) {
	s := openStore(t, idempotencytest.URL(t), defaultOptions)

	first, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err)
	assert.False(t, first.Replay)
	finish(t, first, idempotency.Accepted)

	again, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err, "the same request under the same key")
	assert.True(t, again.Replay, "an accepted request is replayed")

	_, err = claim(t, s, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused)

	other := request("k-1", "order B")
	other.CustomerID = "c-43"
	c, err := claim(t, s, other)
	require.NoError(t, err, "keys are per customer")
	assert.False(t, c.Replay)

	r, ok, err := s.Get(context.Background(), "c-42", "k-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, idempotency.StateCompleted, r.State)
	assert.Equal(t, []byte("order A"), r.Fingerprint)
	assert.Equal(t, "6fd14198-8280-5975-b4e4-3cb950292771", r.OrderID)
	assert.Equal(t, time.UTC, r.CreatedAt.Location())
	assert.WithinDuration(t, time.Now(), r.CreatedAt, time.Minute)
	assert.False(t, r.UpdatedAt.Before(r.CreatedAt))
}

func TestARequestInFlightHoldsItsKey(t *testing.T) {
	s := openStore(t, idempotencytest.URL(t), defaultOptions)

	held, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err)

	_, err = claim(t, s, request("k-1", "order A"))
	require.ErrorIs(t, err, idempotency.ErrInFlight, "a retry while the first attempt runs")
	_, err = claim(t, s, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused, "another request is refused as such even while the first runs")

	finish(t, held, idempotency.MaybePlaced)
	retry, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err, "a request that ended without a 202 may be retried")
	assert.False(t, retry.Replay)
	_, err = claim(t, s, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused, "it may have reached a broker: the key stays bound")

	finish(t, retry, idempotency.NotPlaced)
	_, err = claim(t, s, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused, "a retry that placed nothing does not release a key an earlier attempt may have used")
}

func TestAnOrderThatWasNotPlacedReleasesItsKey(t *testing.T) {
	s := openStore(t, idempotencytest.URL(t), defaultOptions)

	c, err := claim(t, s, request("k-1", "order with an unknown SKU"))
	require.NoError(t, err)
	finish(t, c, idempotency.NotPlaced)

	_, ok, err := s.Get(context.Background(), "c-42", "k-1")
	require.NoError(t, err)
	assert.False(t, ok, "nothing was published, so nothing binds the key")
	c, err = claim(t, s, request("k-1", "the corrected order"))
	require.NoError(t, err)
	assert.False(t, c.Replay)
}

func TestConcurrentRequestsWithOneKeyHaveOneWinner(t *testing.T) {
	url := idempotencytest.URL(t)
	// Two replicas, each with its own pool, as two order-api processes.
	stores := []*idempotency.Store{openStore(t, url, defaultOptions), openStore(t, url, defaultOptions)}

	const n = 16
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, n)
		claimed  = make([]*idempotency.Claim, n)
		requests = make([]idempotency.Request, n)
	)
	for i := range n {
		requests[i] = request("k-race", "order A")
		if i%2 == 1 {
			requests[i] = request("k-race", "order B")
		}
		wg.Go(func() {
			<-start
			claimed[i], errs[i] = stores[i%2].Claim(context.Background(), requests[i])
		})
	}
	close(start)
	wg.Wait()

	winners, inFlight, reused := 0, 0, 0
	var winner idempotency.Request
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = requests[i]
		case errors.Is(err, idempotency.ErrInFlight):
			inFlight++
		case errors.Is(err, idempotency.ErrKeyReused):
			reused++
		default:
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	require.Equal(t, 1, winners, "one request holds the key")
	assert.Equal(t, n/2-1, inFlight, "the winner's twins are told it is in flight")
	assert.Equal(t, n/2, reused, "the other request is refused")
	r, ok, err := stores[0].Get(context.Background(), "c-42", "k-race")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, winner.Fingerprint, r.Fingerprint)
	assert.Equal(t, idempotency.StateProcessing, r.State)
}

func TestAnotherInstanceAndARestartSeeTheKey(t *testing.T) {
	url := idempotencytest.URL(t)
	first := openStore(t, url, defaultOptions)
	c, err := claim(t, first, request("k-1", "order A"))
	require.NoError(t, err)
	finish(t, c, idempotency.Accepted)

	// A second process on the same database, and the table created again at its start.
	second := openStore(t, url, defaultOptions)
	_, err = claim(t, second, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused)
	again, err := claim(t, second, request("k-1", "order A"))
	require.NoError(t, err)
	assert.True(t, again.Replay)
}

func TestAnAbandonedClaimIsTakenOverAfterItsLease(t *testing.T) {
	url := idempotencytest.URL(t)
	opts := defaultOptions
	opts.Lease = time.Second
	s := openStore(t, url, opts)

	dead, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err) // its process dies: it never finishes
	_, err = claim(t, s, request("k-1", "order A"))
	require.ErrorIs(t, err, idempotency.ErrInFlight)

	time.Sleep(1500 * time.Millisecond)
	_, err = claim(t, s, request("k-1", "order B"))
	require.ErrorIs(t, err, idempotency.ErrKeyReused, "the lease frees the key for the same request only")
	taken, err := claim(t, s, request("k-1", "order A"))
	require.NoError(t, err, "the retry takes the abandoned claim over")
	finish(t, taken, idempotency.Accepted)

	// The dead claim's late outcome does not overwrite the one that took over.
	finish(t, dead, idempotency.MaybePlaced)
	r, _, err := s.Get(context.Background(), "c-42", "k-1")
	require.NoError(t, err)
	assert.Equal(t, idempotency.StateCompleted, r.State)
}

func TestKeysExpireAfterTheRetention(t *testing.T) {
	url := idempotencytest.URL(t)
	s := openStore(t, url, defaultOptions)
	for _, key := range []string{"old-1", "old-2", "old-3", "new"} {
		c, err := claim(t, s, request(key, "order A"))
		require.NoError(t, err)
		finish(t, c, idempotency.Accepted)
	}
	age(t, url, 2*time.Hour, "old-1", "old-2", "old-3")

	_, ok, err := s.Get(context.Background(), "c-42", "old-1")
	require.NoError(t, err)
	assert.False(t, ok, "an expired key is gone, deleted or not")
	c, err := claim(t, s, request("old-1", "order B"))
	require.NoError(t, err, "an expired key binds anew")
	assert.False(t, c.Replay)

	n, err := s.DeleteExpired(context.Background(), 1, 10)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "old-2 and old-3, one per statement")
	for _, key := range []string{"old-1", "new"} {
		_, ok, err := s.Get(context.Background(), "c-42", key)
		require.NoError(t, err)
		assert.True(t, ok, key)
	}
}

func TestAStoreOutageIsAnError(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s, err := idempotency.New(pool, idempotency.Options{Retention: time.Hour, Lease: time.Second, QueryTimeout: 2 * time.Second})
	require.NoError(t, err)

	start := time.Now()
	_, err = s.Claim(context.Background(), request("k-1", "order A"))
	require.ErrorIs(t, err, idempotency.ErrUnavailable)
	require.ErrorIs(t, s.Ping(context.Background()), idempotency.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second, "within the query timeouts")
}

// age moves the keys' timestamps into the past, as if they had been used that long ago.
func age(t *testing.T, url string, by time.Duration, keys ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, `UPDATE idempotency_keys SET created_at = created_at - $1::interval,
		updated_at = updated_at - $1::interval WHERE customer_id = 'c-42' AND key = ANY($2)`, by, keys)
	require.NoError(t, err)
}
