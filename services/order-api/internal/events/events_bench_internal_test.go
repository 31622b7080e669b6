package events

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// benchEvent is an OrderPlaced of n priced lines, as orders.Service.Place builds it for a
// request that came with an Idempotency-Key.
func benchEvent(n int) orders.Event {
	e := orders.Event{
		ID: "0190f5c2-9d43-7b1e-8c5a-1f2e3d4c5b6a",
		OrderPlaced: &ordersv1.OrderPlaced{
			OrderId:        "6fd14198-8280-5975-b4e4-3cb950292771",
			CustomerId:     "c-42",
			Currency:       "USD",
			PlacedAt:       timestamppb.New(time.Date(2025, 1, 31, 12, 0, 0, 123456789, time.UTC)),
			IdempotencyKey: "8e0f6a5c-2b9d-4c1e-9f3a-7d6b5a4c3e21",
		},
	}
	for i := range n {
		item := &ordersv1.PricedItem{Sku: fmt.Sprintf("ITEM-%03d", i), Quantity: int32(1 + i%5), UnitPriceCents: 1299}
		item.LineTotalCents = int64(item.Quantity) * item.UnitPriceCents
		e.OrderPlaced.Items = append(e.OrderPlaced.Items, item)
		e.OrderPlaced.TotalCents += item.LineTotalCents
	}
	return e
}

// BenchmarkEncode measures encoding one OrderPlaced from scratch: the protojson body and the
// contract's headers. orders.Service encodes the body once per order (Event.Body) and both
// publishers reuse it; this benchmark's event has no Body, so it measures that one encoding.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{3, 50} {
		e := benchEvent(n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				enc, err := encode(e)
				if err != nil || len(enc.headers) != 3 {
					b.Fatalf("encode: %d headers, %v", len(enc.headers), err)
				}
			}
		})
	}
}
