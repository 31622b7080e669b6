package httpapi

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchBody is a POST /v1/orders body of n lines as a client sends it. The first lines name
// catalog products; beyond those the SKUs are made up, which is fine here: neither decodeOrder
// nor orders.Order.Check looks at the catalog (the validator does).
func benchBody(b *testing.B, n int) []byte {
	b.Helper()
	type item struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	}
	catalog := []string{"BOOK-001", "ELEC-003", "KTCH-002", "OFFC-004", "BOOK-005"}
	body := struct {
		CustomerID string `json:"customer_id"`
		Items      []item `json:"items"`
	}{CustomerID: "c-42"}
	for i := range n {
		sku := fmt.Sprintf("ITEM-%03d", i)
		if i < len(catalog) {
			sku = catalog[i]
		}
		body.Items = append(body.Items, item{SKU: sku, Quantity: 1 + i%5})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// benchSizes are a typical order (3 lines) and the largest one the contract allows (50 lines).
var benchSizes = []int{3, 50}

// BenchmarkDecodeOrder measures the strict decoding of a POST /v1/orders body (decodeOrder),
// which the handler runs on every request once the body is read.
func BenchmarkDecodeOrder(b *testing.B) {
	for _, n := range benchSizes {
		body := benchBody(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				o, err := decodeOrder(body)
				if err != nil || len(o.Items) != n {
					b.Fatalf("decodeOrder: %d items, %v", len(o.Items), err)
				}
			}
		})
	}
}

// BenchmarkDecodeAndCheck measures what the handler does with a body before the idempotency
// store and the validator: decodeOrder, then orders.Order.Check on a valid order.
func BenchmarkDecodeAndCheck(b *testing.B) {
	for _, n := range benchSizes {
		body := benchBody(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				o, err := decodeOrder(body)
				if err != nil {
					b.Fatal(err)
				}
				if vs := o.Check(); len(vs) > 0 {
					b.Fatalf("Check: %v", vs)
				}
			}
		})
	}
}

// BenchmarkDecodeOrderReference is not what the handler does: it is a plain json.Unmarshal of
// the same body into a typed struct, to put the cost of decodeOrder's strictness (unknown
// members, JSON types, integers written as 2.0) in proportion.
func BenchmarkDecodeOrderReference(b *testing.B) {
	type item struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	type order struct {
		CustomerID string `json:"customer_id"`
		Items      []item `json:"items"`
	}
	for _, n := range benchSizes {
		body := benchBody(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var o order
				if err := json.Unmarshal(body, &o); err != nil || len(o.Items) != n {
					b.Fatalf("Unmarshal: %d items, %v", len(o.Items), err)
				}
			}
		})
	}
}
