package consume_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// benchWindow is NOTIFIER_RECENT_LIMIT's default: how many notified orders the store, and so
// the deduplication, remembers.
const benchWindow = 10_000

// benchMessages returns n decoded OrderPlaced messages with distinct UUID-shaped order IDs
// under prefix.
func benchMessages(prefix uint32, n int) []consume.Message {
	out := make([]consume.Message, n)
	for i := range out {
		out[i] = consume.Message{
			Order: notify.Order{
				ID:         fmt.Sprintf("%08x-8280-5975-b4e4-%012x", prefix, i),
				CustomerID: "c-42",
				TotalCents: 2598,
				Currency:   "USD",
			},
			Attempt: 1,
		}
	}
	return out
}

// benchDedupe returns what NewHandler wraps in Decode: Dedupe around the notifier, with a
// simulated sender that never fails and loggers that write nothing, over store, which is
// filled with benchWindow notified orders (so it is full and every new order evicts the
// oldest). It returns the orders that store holds.
func benchDedupe(b *testing.B, store *notify.Store) (consume.OrderHandler, []consume.Message) {
	b.Helper()
	log := zap.NewNop()
	sender, err := notify.NewSimulatedSender(log, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	nm, err := notify.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cm, err := consume.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	n := notify.NewNotifier(sender, store, nm, log)
	h := consume.Dedupe(store, cm, log)(func(ctx context.Context, msg consume.Message) error {
		return n.Notify(ctx, msg.Order, msg.Attempt)
	})

	seen := benchMessages(1, benchWindow)
	for _, msg := range seen {
		if err := store.Add(notify.Notification{OrderID: msg.Order.ID, CustomerID: msg.Order.CustomerID, Attempts: 1, SentAt: time.Now().UTC()}); err != nil {
			b.Fatal(err)
		}
	}
	if store.Len() != benchWindow {
		b.Fatalf("store holds %d notifications, want %d", store.Len(), benchWindow)
	}
	return h, seen
}

// BenchmarkDedupe measures the notifier's handling of one decoded OrderPlaced below Decode:
// the in-flight claim on its order_id, the store lookup, and for a new order the (simulated)
// send and the record in the store, with the store at its default limit of 10,000.
func BenchmarkDedupe(b *testing.B) {
	ctx := context.Background()

	// newOrders cycles through 4 windows' worth of IDs: by the time one comes round again the
	// store has forgotten it, so every iteration is a new order.
	newOrders := func(b *testing.B, store *notify.Store) {
		h, _ := benchDedupe(b, store)
		fresh := benchMessages(2, 4*benchWindow)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := h(ctx, fresh[i]); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % len(fresh)
		}
		if store.Len() != benchWindow {
			b.Fatalf("store holds %d notifications, want %d", store.Len(), benchWindow)
		}
	}

	b.Run(fmt.Sprintf("new_order/window=%d/memory", benchWindow), func(b *testing.B) {
		store, err := notify.NewStore(benchWindow)
		if err != nil {
			b.Fatal(err)
		}
		newOrders(b, store)
	})

	// The journal is how make run and the cluster run the notifier (NOTIFIER_JOURNAL_PATH): one
	// write call per notification, and a rewrite of the whole window once the file holds twice
	// the limit.
	b.Run(fmt.Sprintf("new_order/window=%d/journal", benchWindow), func(b *testing.B) {
		store, err := notify.OpenStore(filepath.Join(b.TempDir(), "notifications.jsonl"), benchWindow)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := store.Close(); err != nil {
				b.Error(err)
			}
		})
		newOrders(b, store)
	})

	// A duplicate is recognised from the store alone, journal or not.
	b.Run(fmt.Sprintf("duplicate_order/window=%d", benchWindow), func(b *testing.B) {
		store, err := notify.NewStore(benchWindow)
		if err != nil {
			b.Fatal(err)
		}
		h, seen := benchDedupe(b, store)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := h(ctx, seen[i]); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % len(seen)
		}
		if n, ok := store.Get(seen[0].Order.ID); !ok || n.Attempts != 1 {
			b.Fatalf("order %s: %+v, remembered %t; a duplicate must leave the store as it was", seen[0].Order.ID, n, ok)
		}
	})
}
