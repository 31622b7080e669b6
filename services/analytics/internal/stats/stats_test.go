package stats_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// step is one thing that happens to the stats: a partition is assigned (reset), revoked (drop),
// or an order is read from it (add).
type step struct {
	reset, drop bool
	partition   int32
	order       stats.Order
	counted     bool // for an add: whether the order is expected to be counted
}

func reset(p int32) step { return step{reset: true, partition: p} }
func drop(p int32) step  { return step{drop: true, partition: p} }
func add(p int32, o stats.Order) step {
	return step{partition: p, order: o, counted: true}
}
func duplicate(p int32, o stats.Order) step { return step{partition: p, order: o} }

// order builds a valid order: its total is the sum of its lines.
func order(id string, lines ...stats.Line) stats.Order {
	o := stats.Order{ID: id, Lines: lines}
	for _, l := range lines {
		o.TotalCents += l.TotalCents
	}
	return o
}

func line(sku string, quantity, totalCents int64) stats.Line {
	return stats.Line{SKU: sku, Quantity: quantity, TotalCents: totalCents}
}

func run(t *testing.T, s *stats.Stats, steps []step) {
	t.Helper()
	for i, st := range steps {
		switch {
		case st.reset:
			s.Reset(st.partition)
		case st.drop:
			s.Drop(st.partition)
		default:
			counted, err := s.Add(st.partition, st.order)
			require.NoError(t, err, "step %d", i)
			require.Equal(t, st.counted, counted, "step %d: counted %s", i, st.order.ID)
		}
	}
}

var (
	book  = order("o-1", line("BOOK-001", 2, 2*1999))
	mug   = order("o-2", line("MUG-002", 1, 899), line("BOOK-001", 1, 1999))
	pen   = order("o-3", line("PEN-003", 10, 10*150))
	clock = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

func TestStats(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  stats.Snapshot
	}{
		{
			name: "nothing owned",
			want: stats.Snapshot{BySKU: map[string]stats.SKUTotals{}, Partitions: []int32{}},
		},
		{
			name:  "owned partition without orders",
			steps: []step{reset(2)},
			want:  stats.Snapshot{BySKU: map[string]stats.SKUTotals{}, Partitions: []int32{2}},
		},
		{
			name:  "one order, revenue in cents",
			steps: []step{reset(0), add(0, book)},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 3998, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{"BOOK-001": {Quantity: 2, RevenueCents: 3998}},
			},
		},
		{
			name:  "by SKU adds up lines across orders",
			steps: []step{reset(0), add(0, book), add(0, mug)},
			want: stats.Snapshot{
				Orders: 2, RevenueCents: 3998 + 899 + 1999, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{
					"BOOK-001": {Quantity: 3, RevenueCents: 3 * 1999},
					"MUG-002":  {Quantity: 1, RevenueCents: 899},
				},
			},
		},
		{
			name:  "a duplicate order ID in the same partition is counted once",
			steps: []step{reset(0), add(0, book), duplicate(0, book), add(0, mug), duplicate(0, book)},
			want: stats.Snapshot{
				Orders: 2, RevenueCents: 3998 + 899 + 1999, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{
					"BOOK-001": {Quantity: 3, RevenueCents: 3 * 1999},
					"MUG-002":  {Quantity: 1, RevenueCents: 899},
				},
			},
		},
		{
			name: "the first event of an order wins over a later one with other content",
			steps: []step{reset(0), add(0, book),
				duplicate(0, order(book.ID, line("PEN-003", 1, 150)))},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 3998, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{"BOOK-001": {Quantity: 2, RevenueCents: 3998}},
			},
		},
		{
			name:  "totals are the sum over partitions, listed ascending",
			steps: []step{reset(2), reset(0), add(2, book), add(0, mug), add(2, pen)},
			want: stats.Snapshot{
				Orders: 3, RevenueCents: 3998 + 2898 + 1500, Partitions: []int32{0, 2},
				BySKU: map[string]stats.SKUTotals{
					"BOOK-001": {Quantity: 3, RevenueCents: 3 * 1999},
					"MUG-002":  {Quantity: 1, RevenueCents: 899},
					"PEN-003":  {Quantity: 10, RevenueCents: 1500},
				},
			},
		},
		{
			name:  "a revoked partition's orders leave the totals",
			steps: []step{reset(0), reset(1), add(0, book), add(1, mug), drop(1)},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 3998, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{"BOOK-001": {Quantity: 2, RevenueCents: 3998}},
			},
		},
		{
			name:  "dropping a partition not owned changes nothing",
			steps: []step{reset(0), add(0, book), drop(5)},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 3998, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{"BOOK-001": {Quantity: 2, RevenueCents: 3998}},
			},
		},
		{
			name: "rebuilding a partition from its log gives the same numbers",
			steps: []step{reset(0), add(0, book), add(0, mug), duplicate(0, book),
				reset(0), add(0, book), add(0, mug), duplicate(0, book)},
			want: stats.Snapshot{
				Orders: 2, RevenueCents: 3998 + 2898, Partitions: []int32{0},
				BySKU: map[string]stats.SKUTotals{
					"BOOK-001": {Quantity: 3, RevenueCents: 3 * 1999},
					"MUG-002":  {Quantity: 1, RevenueCents: 899},
				},
			},
		},
		{
			name:  "a partition regained after a revoke starts empty",
			steps: []step{reset(1), add(1, pen), drop(1), reset(1), add(1, book)},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 3998, Partitions: []int32{1},
				BySKU: map[string]stats.SKUTotals{"BOOK-001": {Quantity: 2, RevenueCents: 3998}},
			},
		},
		{
			name:  "an SKU stays while another owned partition sold it",
			steps: []step{reset(0), reset(1), add(0, pen), add(1, pen), drop(0)},
			want: stats.Snapshot{
				Orders: 1, RevenueCents: 1500, Partitions: []int32{1},
				BySKU: map[string]stats.SKUTotals{"PEN-003": {Quantity: 10, RevenueCents: 1500}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stats.New(func() time.Time { return clock })
			run(t, s, tt.steps)
			tt.want.UpdatedAt = clock
			got := s.Snapshot()
			// Whether the totals are complete is TestStats_Complete's subject.
			got.Member, got.Rebuilding = false, nil
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestStats_DuplicatesAcrossPartitionsAreNotDeduplicated(t *testing.T) {
	// The same order ID in two partitions cannot come from one producer keying by order ID; the
	// stats do not pretend to know better and count both.
	s := stats.New(time.Now)
	run(t, s, []step{reset(0), reset(1), add(0, book), add(1, book)})
	assert.EqualValues(t, 2, s.Snapshot().Orders)
}

func TestStats_AddRefusesWhatCannotBeCounted(t *testing.T) {
	tests := []struct {
		name      string
		owned     bool
		order     stats.Order
		wantError error
	}{
		{"partition not owned", false, book, stats.ErrNotOwned},
		{"empty order ID", true, order("", line("BOOK-001", 1, 1999)), stats.ErrInvalidOrder},
		{"no lines", true, stats.Order{ID: "o-9"}, stats.ErrInvalidOrder},
		{"empty SKU", true, order("o-9", line("", 1, 1999)), stats.ErrInvalidOrder},
		{"zero quantity", true, order("o-9", line("BOOK-001", 0, 0)), stats.ErrInvalidOrder},
		{"negative quantity", true, order("o-9", line("BOOK-001", -1, 1999)), stats.ErrInvalidOrder},
		{"negative line total", true, order("o-9", line("BOOK-001", 1, -1)), stats.ErrInvalidOrder},
		{"total is not the sum of the lines", true,
			stats.Order{ID: "o-9", TotalCents: 1, Lines: []stats.Line{line("BOOK-001", 1, 1999)}}, stats.ErrInvalidOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stats.New(time.Now)
			if tt.owned {
				s.Reset(0)
			}
			counted, err := s.Add(0, tt.order)
			require.ErrorIs(t, err, tt.wantError)
			assert.False(t, counted)
			assert.Zero(t, s.Snapshot().Orders)
		})
	}
}

func TestStats_UpdatedAtMovesOnChangesOnly(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	tick := func() time.Time { now = now.Add(time.Second); return now }
	s := stats.New(tick)
	created := s.Snapshot().UpdatedAt
	assert.Equal(t, time.UTC, created.Location(), "UpdatedAt is UTC")

	s.Reset(0)
	assigned := s.Snapshot().UpdatedAt
	assert.True(t, assigned.After(created), "an assignment is a change")

	_, err := s.Add(0, book)
	require.NoError(t, err)
	counted := s.Snapshot().UpdatedAt
	assert.True(t, counted.After(assigned), "a counted order is a change")

	_, err = s.Add(0, book)
	require.NoError(t, err)
	assert.Equal(t, counted, s.Snapshot().UpdatedAt, "a duplicate is not a change")

	s.Drop(0)
	assert.True(t, s.Snapshot().UpdatedAt.After(counted), "a revoke is a change")
}

func TestStats_SnapshotIsACopy(t *testing.T) {
	s := stats.New(time.Now)
	run(t, s, []step{reset(0), add(0, book)})
	snap := s.Snapshot()
	snap.BySKU["BOOK-001"] = stats.SKUTotals{}
	snap.Partitions[0] = 9
	assert.Equal(t, stats.SKUTotals{Quantity: 2, RevenueCents: 3998}, s.Snapshot().BySKU["BOOK-001"])
	assert.Equal(t, []int32{0}, s.Snapshot().Partitions)
}

// TestStats_ConcurrentReadersAndWriter is meant for -race: the consumer writes while HTTP
// requests take snapshots.
func TestStats_ConcurrentReadersAndWriter(t *testing.T) {
	s := stats.New(time.Now)
	s.Reset(0)
	const orders = 500
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range orders {
				snap := s.Snapshot()
				// Every snapshot is consistent: whole orders only.
				assert.Equal(t, snap.Orders*1999, snap.RevenueCents)
			}
		})
	}
	for i := range orders {
		_, err := s.Add(0, order(fmt.Sprintf("o-%d", i), line("BOOK-001", 1, 1999)))
		require.NoError(t, err)
	}
	wg.Wait()
	assert.EqualValues(t, orders, s.Snapshot().Orders)
}

func TestStats_Complete(t *testing.T) {
	s := stats.New(time.Now)
	joining := &stats.IncompleteError{Joining: true, Rebuilding: []int32{}}
	assert.Equal(t, joining, s.Complete(), "before the group assigned anything, which partitions are its own is unknown")

	s.Join()
	require.NoError(t, s.Complete(), "in the group with no partition (more replicas than partitions): zeros are right")

	s.Reset(2)
	s.Reset(0)
	assert.Equal(t, &stats.IncompleteError{Rebuilding: []int32{0, 2}}, s.Complete())
	assert.EqualError(t, s.Complete(), "rebuilding partitions [0 2] from the beginning of the log")
	snap := s.Snapshot()
	assert.True(t, snap.Member)
	assert.Equal(t, []int32{0, 2}, snap.Rebuilding)
	assert.Equal(t, s.Complete(), snap.Complete(), "a snapshot says whether it is complete")

	s.Rebuilt(0)
	s.Rebuilt(7) // not owned: ignored
	assert.Equal(t, &stats.IncompleteError{Rebuilding: []int32{2}}, s.Complete())
	s.Drop(2)
	require.NoError(t, s.Complete(), "a revoked partition is no longer waited for")

	s.Reset(0)
	assert.Equal(t, &stats.IncompleteError{Rebuilding: []int32{0}}, s.Complete(), "a partition assigned again is rebuilt again")
	s.Rebuilt(0)
	require.NoError(t, s.Complete())

	s.Drop(0)
	s.Leave()
	assert.Equal(t, joining, s.Complete(), "out of the group after losing its partitions")
	assert.Equal(t, []int32{}, s.Snapshot().Rebuilding, "never nil")
}

// TestStats_Stop: a stopping replica gives its partitions back one rebalance callback at a time;
// from the moment it stops it is never complete, so it never answers 200 with what is left.
func TestStats_Stop(t *testing.T) {
	s := stats.New(time.Now)
	s.Join()
	for _, p := range []int32{0, 1, 2} {
		s.Reset(p)
		s.Rebuilt(p)
	}
	require.NoError(t, s.Complete())

	s.Stop()
	leaving := &stats.IncompleteError{Joining: true, Leaving: true, Rebuilding: []int32{}}
	assert.Equal(t, leaving, s.Complete())
	assert.EqualError(t, s.Complete(), "leaving the consumer group: the service is stopping")
	for _, p := range []int32{0, 1, 2} {
		s.Drop(p)
		assert.Equal(t, leaving, s.Complete(), "after giving back partition %d", p)
	}
	assert.Equal(t, leaving, s.Snapshot().Complete(), "a snapshot says so too")
}

func TestStats_OrderIDsAreComparedAsStrings(t *testing.T) {
	// order-api's IDs are UUIDs, which the stats keep packed in 16 bytes; that must not change
	// which IDs count as the same order: only the same string is a duplicate.
	const id = "0193a3f0-8b2c-7d4e-9f10-1a2b3c4d5e6f"
	s := stats.New(time.Now)
	run(t, s, []step{
		reset(0),
		add(0, order(id, line("BOOK-001", 1, 1999))),
		duplicate(0, order(id, line("BOOK-001", 1, 1999))),
		add(0, order(strings.ToUpper(id), line("BOOK-001", 1, 1999))), // another string: another order
		add(0, order("0193a3f0-8b2c-7d4e-9f10-1a2b3c4d5e60", line("BOOK-001", 1, 1999))),
		add(0, order("{"+id+"}", line("BOOK-001", 1, 1999))), // not canonical: kept as a string
		duplicate(0, order("{"+id+"}", line("BOOK-001", 1, 1999))),
		add(0, order("0193a3f0+8b2c-7d4e-9f10-1a2b3c4d5e6f", line("BOOK-001", 1, 1999))),
	})
	assert.EqualValues(t, 5, s.Snapshot().Orders)
}
