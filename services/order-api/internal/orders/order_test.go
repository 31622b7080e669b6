package orders_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

func validOrder() orders.Order {
	return orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 2}}}
}

func TestCheck(t *testing.T) {
	const (
		lengthReason   = "must be 1 to 64 characters long"
		charsReason    = "may contain only the characters A-Z, a-z, 0-9, '_' and '-'"
		itemsReason    = "must hold 1 to 50 items"
		skuReason      = "must be 1 to 64 characters long"
		quantityReason = "must be an integer from 1 to 1000"
	)
	items := func(n int) []orders.Item {
		out := make([]orders.Item, n)
		for i := range out {
			out[i] = orders.Item{SKU: "BOOK-001", Quantity: 1}
		}
		return out
	}
	tests := []struct {
		name   string
		modify func(o *orders.Order)
		want   []orders.Violation
	}{
		{"valid order", func(*orders.Order) {}, nil},
		{"customer_id of 64 characters", func(o *orders.Order) { o.CustomerID = strings.Repeat("a", 64) }, nil},
		{"every allowed character", func(o *orders.Order) { o.CustomerID = "AZaz09_-" }, nil},
		{"50 items", func(o *orders.Order) { o.Items = items(50) }, nil},
		{"quantity 1", func(o *orders.Order) { o.Items[0].Quantity = 1 }, nil},
		{"quantity 1000", func(o *orders.Order) { o.Items[0].Quantity = 1000 }, nil},

		{"missing customer_id", func(o *orders.Order) { o.CustomerID = "" },
			[]orders.Violation{{"customer_id", lengthReason}}},
		{"customer_id of 65 characters", func(o *orders.Order) { o.CustomerID = strings.Repeat("a", 65) },
			[]orders.Violation{{"customer_id", lengthReason}}},
		{"customer_id with a space", func(o *orders.Order) { o.CustomerID = "c 42" },
			[]orders.Violation{{"customer_id", charsReason}}},
		{"customer_id with a Cyrillic look-alike", func(o *orders.Order) { o.CustomerID = "\u0441-42" },
			[]orders.Violation{{"customer_id", charsReason}}},
		{"customer_id with a fullwidth digit", func(o *orders.Order) { o.CustomerID = "c-４2" },
			[]orders.Violation{{"customer_id", charsReason}}},
		{"customer_id too long and with bad characters", func(o *orders.Order) { o.CustomerID = strings.Repeat("!", 65) },
			[]orders.Violation{{"customer_id", lengthReason}, {"customer_id", charsReason}}},
		{"no items", func(o *orders.Order) { o.Items = nil },
			[]orders.Violation{{"items", itemsReason}}},
		{"51 items", func(o *orders.Order) { o.Items = items(51) },
			[]orders.Violation{{"items", itemsReason}}},
		{"empty sku", func(o *orders.Order) { o.Items[0].SKU = "" },
			[]orders.Violation{{"items[0].sku", skuReason}}},
		{"sku of 65 characters", func(o *orders.Order) { o.Items[0].SKU = strings.Repeat("S", 65) },
			[]orders.Violation{{"items[0].sku", skuReason}}},
		{"quantity 0", func(o *orders.Order) { o.Items[0].Quantity = 0 },
			[]orders.Violation{{"items[0].quantity", quantityReason}}},
		{"quantity 1001", func(o *orders.Order) { o.Items[0].Quantity = 1001 },
			[]orders.Violation{{"items[0].quantity", quantityReason}}},
		{"negative quantity", func(o *orders.Order) { o.Items[0].Quantity = -1 },
			[]orders.Violation{{"items[0].quantity", quantityReason}}},
		{"quantity beyond int32", func(o *orders.Order) { o.Items[0].Quantity = math.MaxInt64 },
			[]orders.Violation{{"items[0].quantity", quantityReason}}},
		{"every rule broken at once, in field order", func(o *orders.Order) {
			o.CustomerID = ""
			o.Items = append(items(49), orders.Item{SKU: "", Quantity: 0})
		}, []orders.Violation{
			{"customer_id", lengthReason},
			{"items[49].sku", skuReason},
			{"items[49].quantity", quantityReason},
		}},
		{"too many lines: their own faults are not listed", func(o *orders.Order) {
			o.Items = append(items(50), orders.Item{SKU: "", Quantity: 0})
		}, []orders.Violation{
			{"items", itemsReason},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOrder()
			tt.modify(&o)
			assert.Equal(t, tt.want, o.Check())
		})
	}
}

func TestOrderIDIsDerivedFromCustomerAndIdempotencyKey(t *testing.T) {
	id := func(customer, key string) string {
		t.Helper()
		got, err := orders.OrderID(customer, key)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	first := id("c-42", "key-1")
	assert.Equal(t, first, id("c-42", "key-1"), "same customer, same key: same order")
	// Fixed by the namespace: another replica, a release, or any UUIDv5 implementation (Python:
	// uuid.uuid5(UUID("cd845706-4f53-4fd3-b118-1c445cb23259"), "c-42:key-1")) derives the same ID.
	assert.Equal(t, "6fd14198-8280-5975-b4e4-3cb950292771", first)
	assert.NotEqual(t, first, id("c-43", "key-1"), "another customer's key names another order")
	assert.NotEqual(t, first, id("c-42", "key-2"))

	random1, random2 := id("c-42", ""), id("c-42", "")
	assert.NotEqual(t, random1, random2, "without a key every order is new")
	assert.Equal(t, byte('7'), random1[14], "a time-ordered UUID (version 7)")
	assert.Equal(t, byte('5'), first[14], "a name-based UUID (version 5)")
}
