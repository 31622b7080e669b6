package stats_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// benchOrders returns n valid orders of three lines each, with distinct UUID-shaped IDs (as
// order-api's order_ids are) under prefix, over a handful of SKUs as a small catalog has.
func benchOrders(prefix uint32, n int) []stats.Order {
	skus := []string{"BOOK-001", "ELEC-003", "KTCH-002", "OFFC-004", "BOOK-005", "MUG-001"}
	out := make([]stats.Order, n)
	for i := range out {
		o := stats.Order{ID: fmt.Sprintf("%08x-8280-5975-b4e4-%012x", prefix, i)}
		for j := range 3 {
			l := stats.Line{SKU: skus[(i+j)%len(skus)], Quantity: int64(1 + j), TotalCents: int64(1299 * (1 + j))}
			o.Lines = append(o.Lines, l)
			o.TotalCents += l.TotalCents
		}
		out[i] = o
	}
	return out
}

// BenchmarkAdd measures Stats.Add, what analytics does with each OrderPlaced it reads once the
// record is decoded: validate the order, look its ID up in the partition's set of seen orders,
// and count it unless it is a duplicate.
func BenchmarkAdd(b *testing.B) {
	const partition = 0

	// fresh_order: every iteration an order the partition has not seen, so the set of seen IDs
	// grows. After every len(fresh) orders the partition is reset, outside the timer, so that
	// the IDs are new again; the set therefore holds 0 to 131,071 IDs while measured.
	b.Run("fresh_order", func(b *testing.B) {
		fresh := benchOrders(1, 1<<17)
		s := stats.New(time.Now)
		s.Reset(partition)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == len(fresh) {
				b.StopTimer()
				s.Reset(partition)
				i = 0
				b.StartTimer()
			}
			counted, err := s.Add(partition, fresh[i])
			if err != nil || !counted {
				b.Fatalf("Add %s: counted %t, %v", fresh[i].ID, counted, err)
			}
			i++
		}
	})

	// duplicate_order: every iteration an order the partition already counted (a redelivery,
	// or a retried publish of the same order), out of 100,000 seen ones.
	b.Run("duplicate_order", func(b *testing.B) {
		seen := benchOrders(2, 100_000)
		s := stats.New(time.Now)
		s.Reset(partition)
		for _, o := range seen {
			if _, err := s.Add(partition, o); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			counted, err := s.Add(partition, seen[i])
			if err != nil || counted {
				b.Fatalf("Add %s: counted %t, %v", seen[i].ID, counted, err)
			}
			i = (i + 1) % len(seen)
		}
	})
}
