package orders_test

import (
	"fmt"
	"testing"

	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// BenchmarkCheck measures the contract's rules on a valid order of 3 lines (a typical order)
// and of 50 (the most the contract allows): the path every accepted order takes.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{3, 50} {
		o := orders.Order{CustomerID: "c-42"}
		for i := range n {
			o.Items = append(o.Items, orders.Item{SKU: fmt.Sprintf("ITEM-%03d", i), Quantity: int64(1 + i%5)})
		}
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if vs := o.Check(); len(vs) > 0 {
					b.Fatalf("Check: %v", vs)
				}
			}
		})
	}
}
