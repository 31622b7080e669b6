package validation_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
	"github.com/backend-prep/backend-prep/services/validator/internal/validation"
)

// testCatalog has the products the cases below rely on, plus enough others (ITEM-001…ITEM-060) to
// fill orders of 50 and 51 distinct lines.
func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	products := []catalog.Product{
		{SKU: "BOOK-001", Name: "The Go Programming Language", Category: "books", UnitPriceCents: 1299, MaxQuantity: 100},
		{SKU: "ELEC-004", Name: "27-inch 4K Monitor", Category: "electronics", UnitPriceCents: 32999, MaxQuantity: 5},
		{SKU: "OFFC-003", Name: "Sticky Notes", Category: "office", UnitPriceCents: 699, MaxQuantity: 1000},
	}
	for i := 1; i <= 60; i++ {
		products = append(products, catalog.Product{
			SKU: itemSKU(i), Name: "Item", Category: "misc", UnitPriceCents: 100, MaxQuantity: 1000,
		})
	}
	c, err := catalog.New("USD", products)
	require.NoError(t, err)
	return c
}

func itemSKU(i int) string { return fmt.Sprintf("ITEM-%03d", i) }

// distinctItems returns n lines of different SKUs, one unit each.
func distinctItems(n int) []validation.Item {
	items := make([]validation.Item, n)
	for i := range items {
		items[i] = validation.Item{SKU: itemSKU(i + 1), Quantity: 1}
	}
	return items
}

func book(quantity int) []validation.Item {
	return []validation.Item{{SKU: "BOOK-001", Quantity: quantity}}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name  string
		order validation.Order
		want  validation.PricedOrder
	}{
		{
			name:  "the example order",
			order: validation.Order{CustomerID: "c-42", Items: book(2)},
			want: validation.PricedOrder{Currency: "USD", TotalCents: 2598, Items: []validation.PricedItem{
				{SKU: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
			}},
		},
		{
			name: "several lines keep the request's order and add up",
			order: validation.Order{CustomerID: "c-42", Items: []validation.Item{
				{SKU: "OFFC-003", Quantity: 3}, {SKU: "BOOK-001", Quantity: 1}, {SKU: "ELEC-004", Quantity: 2},
			}},
			want: validation.PricedOrder{Currency: "USD", TotalCents: 2097 + 1299 + 65998, Items: []validation.PricedItem{
				{SKU: "OFFC-003", Quantity: 3, UnitPriceCents: 699, LineTotalCents: 2097},
				{SKU: "BOOK-001", Quantity: 1, UnitPriceCents: 1299, LineTotalCents: 1299},
				{SKU: "ELEC-004", Quantity: 2, UnitPriceCents: 32999, LineTotalCents: 65998},
			}},
		},
		{
			name:  "quantity 1",
			order: validation.Order{CustomerID: "c-42", Items: book(1)},
			want: validation.PricedOrder{Currency: "USD", TotalCents: 1299, Items: []validation.PricedItem{
				{SKU: "BOOK-001", Quantity: 1, UnitPriceCents: 1299, LineTotalCents: 1299},
			}},
		},
		{
			name:  "quantity 1000 of a product that allows it",
			order: validation.Order{CustomerID: "c-42", Items: []validation.Item{{SKU: "OFFC-003", Quantity: 1000}}},
			want: validation.PricedOrder{Currency: "USD", TotalCents: 699_000, Items: []validation.PricedItem{
				{SKU: "OFFC-003", Quantity: 1000, UnitPriceCents: 699, LineTotalCents: 699_000},
			}},
		},
		{
			name:  "quantity equal to the product's max_quantity",
			order: validation.Order{CustomerID: "c-42", Items: []validation.Item{{SKU: "ELEC-004", Quantity: 5}}},
			want: validation.PricedOrder{Currency: "USD", TotalCents: 164_995, Items: []validation.PricedItem{
				{SKU: "ELEC-004", Quantity: 5, UnitPriceCents: 32999, LineTotalCents: 164_995},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, violations := validation.New(testCatalog(t)).Validate(tt.order)

			require.Empty(t, violations)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestValidateAcceptsBoundaries(t *testing.T) {
	tests := []struct {
		name       string
		customerID string
		items      []validation.Item
	}{
		{name: "customer_id of 1 character", customerID: "c", items: book(1)},
		{name: "customer_id of 64 characters", customerID: strings.Repeat("c", 64), items: book(1)},
		{name: "customer_id of every allowed kind of character", customerID: "AZaz09_-", items: book(1)},
		{name: "customer_id of only a hyphen", customerID: "-", items: book(1)},
		{name: "1 item", customerID: "c-42", items: distinctItems(1)},
		{name: "50 items", customerID: "c-42", items: distinctItems(50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, violations := validation.New(testCatalog(t)).Validate(validation.Order{CustomerID: tt.customerID, Items: tt.items})

			require.Empty(t, violations)
			assert.Len(t, got.Items, len(tt.items))
		})
	}
}

func TestValidateRejects(t *testing.T) {
	const (
		required    = "customer_id is required"
		badChars    = "customer_id may contain only letters A-Z and a-z, digits, '_' and '-'"
		atLeastOne  = "quantity must be at least 1"
		atMost1000  = "quantity must be at most 1000"
		unknownSKU  = "no product with this sku in the catalog"
		skuRequired = "sku is required"
	)
	tests := []struct {
		name       string
		customerID string
		items      []validation.Item
		want       []validation.Violation
	}{
		// customer_id
		{name: "empty customer_id", customerID: "", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: required}}},
		{name: "customer_id of 65 characters", customerID: strings.Repeat("c", 65), items: book(1),
			want: []validation.Violation{{Field: "customer_id", Reason: "customer_id must be at most 64 characters, it has 65"}}},
		{name: "customer_id with a space", customerID: "c 42", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with a dot", customerID: "c.42", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with an at sign", customerID: "c@42", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with a trailing newline", customerID: "c-42\n", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with a NUL byte", customerID: "c-\x0042", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with a Cyrillic look-alike 'с'", customerID: "\u0441-42", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with a fullwidth digit", customerID: "c-4\uff12", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id with an accented letter", customerID: "c\u00e9-42", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id of invalid UTF-8", customerID: "c-\xff", items: book(1), want: []validation.Violation{{Field: "customer_id", Reason: badChars}}},
		{name: "customer_id too long and with bad characters breaks two rules",
			customerID: strings.Repeat("\u0441", 65), items: book(1),
			want: []validation.Violation{
				{Field: "customer_id", Reason: "customer_id must be at most 64 characters, it has 65"},
				{Field: "customer_id", Reason: badChars},
			}},

		// items
		{name: "no items", customerID: "c-42", items: nil, want: []validation.Violation{{Field: "items", Reason: "an order needs at least 1 item"}}},
		{name: "empty items", customerID: "c-42", items: []validation.Item{}, want: []validation.Violation{{Field: "items", Reason: "an order needs at least 1 item"}}},
		{name: "51 items", customerID: "c-42", items: distinctItems(51),
			want: []validation.Violation{{Field: "items", Reason: "an order has at most 50 items, this one has 51"}}},
		{name: "51 bad items are rejected for their number alone", customerID: "c-42",
			items: append(distinctItems(50), validation.Item{SKU: "NOPE-001", Quantity: 0}),
			want:  []validation.Violation{{Field: "items", Reason: "an order has at most 50 items, this one has 51"}}},

		// items[i].quantity
		{name: "quantity 0", customerID: "c-42", items: book(0), want: []validation.Violation{{Field: "items[0].quantity", Reason: atLeastOne}}},
		{name: "negative quantity", customerID: "c-42", items: book(-1), want: []validation.Violation{{Field: "items[0].quantity", Reason: atLeastOne}}},
		{name: "quantity 1001", customerID: "c-42", items: []validation.Item{{SKU: "OFFC-003", Quantity: 1001}},
			want: []validation.Violation{{Field: "items[0].quantity", Reason: atMost1000}}},
		{name: "huge quantity", customerID: "c-42", items: book(math.MaxInt32), want: []validation.Violation{{Field: "items[0].quantity", Reason: atMost1000}}},
		{name: "quantity one above the product's max_quantity", customerID: "c-42", items: []validation.Item{{SKU: "ELEC-004", Quantity: 6}},
			want: []validation.Violation{{Field: "items[0].quantity", Reason: "at most 5 of ELEC-004 can be ordered at once"}}},
		{name: "quantity 1000 above the product's max_quantity", customerID: "c-42", items: book(1000),
			want: []validation.Violation{{Field: "items[0].quantity", Reason: "at most 100 of BOOK-001 can be ordered at once"}}},

		// items[i].sku
		{name: "empty sku", customerID: "c-42", items: []validation.Item{{SKU: "", Quantity: 1}},
			want: []validation.Violation{{Field: "items[0].sku", Reason: skuRequired}}},
		{name: "unknown sku", customerID: "c-42", items: []validation.Item{{SKU: "BOOK-999", Quantity: 1}},
			want: []validation.Violation{{Field: "items[0].sku", Reason: unknownSKU}}},
		{name: "sku in lower case", customerID: "c-42", items: []validation.Item{{SKU: "book-001", Quantity: 1}},
			want: []validation.Violation{{Field: "items[0].sku", Reason: unknownSKU}}},
		{name: "sku with a Cyrillic look-alike 'В'", customerID: "c-42", items: []validation.Item{{SKU: "\u0412OOK-001", Quantity: 1}},
			want: []validation.Violation{{Field: "items[0].sku", Reason: unknownSKU}}},
		{name: "unknown sku is still checked against the global quantity bound", customerID: "c-42",
			items: []validation.Item{{SKU: "BOOK-999", Quantity: 1001}},
			want:  []validation.Violation{{Field: "items[0].sku", Reason: unknownSKU}, {Field: "items[0].quantity", Reason: atMost1000}}},

		// duplicates: rejected on the later line, never merged
		{name: "the same sku twice", customerID: "c-42",
			items: []validation.Item{{SKU: "BOOK-001", Quantity: 1}, {SKU: "OFFC-003", Quantity: 1}, {SKU: "BOOK-001", Quantity: 2}},
			want: []validation.Violation{
				{Field: "items[2].sku", Reason: "sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line"},
			}},
		{name: "the same sku three times points at the first line each time", customerID: "c-42",
			items: []validation.Item{{SKU: "BOOK-001", Quantity: 1}, {SKU: "BOOK-001", Quantity: 1}, {SKU: "BOOK-001", Quantity: 1}},
			want: []validation.Violation{
				{Field: "items[1].sku", Reason: "sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line"},
				{Field: "items[2].sku", Reason: "sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line"},
			}},

		// everything at once
		{name: "every violation is reported, in field order", customerID: "c 42",
			items: []validation.Item{
				{SKU: "BOOK-001", Quantity: 0},
				{SKU: "", Quantity: 1},
				{SKU: "BOOK-999", Quantity: 1},
				{SKU: "BOOK-001", Quantity: 101},
			},
			want: []validation.Violation{
				{Field: "customer_id", Reason: badChars},
				{Field: "items[0].quantity", Reason: atLeastOne},
				{Field: "items[1].sku", Reason: skuRequired},
				{Field: "items[2].sku", Reason: unknownSKU},
				{Field: "items[3].sku", Reason: "sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line"},
				{Field: "items[3].quantity", Reason: "at most 100 of BOOK-001 can be ordered at once"},
			}},
		{name: "customer_id and items are both checked", customerID: "", items: nil,
			want: []validation.Violation{{Field: "customer_id", Reason: required}, {Field: "items", Reason: "an order needs at least 1 item"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, violations := validation.New(testCatalog(t)).Validate(validation.Order{CustomerID: tt.customerID, Items: tt.items})

			assert.Equal(t, tt.want, violations)
			assert.Zero(t, got, "a rejected order is not priced")
		})
	}
}

// TestPricingCannotOverflow prices the most expensive order the rules allow and checks the
// arithmetic is exact: 50 lines × 1000 units × the largest unit price.
func TestPricingCannotOverflow(t *testing.T) {
	products := make([]catalog.Product, validation.MaxItems)
	items := make([]validation.Item, validation.MaxItems)
	for i := range products {
		products[i] = catalog.Product{
			SKU: itemSKU(i), Name: "Gold bar", Category: "luxury",
			UnitPriceCents: catalog.MaxUnitPriceCents, MaxQuantity: catalog.MaxQuantity,
		}
		items[i] = validation.Item{SKU: itemSKU(i), Quantity: validation.MaxQuantity}
	}
	c, err := catalog.New("USD", products)
	require.NoError(t, err)

	got, violations := validation.New(c).Validate(validation.Order{CustomerID: "c-42", Items: items})

	require.Empty(t, violations)
	const line = int64(catalog.MaxUnitPriceCents) * validation.MaxQuantity
	for _, item := range got.Items {
		assert.Equal(t, line, item.LineTotalCents)
	}
	assert.Equal(t, int64(5_000_000_000_000), got.TotalCents)
	assert.Less(t, got.TotalCents, int64(math.MaxInt64/1000), "orders of magnitude below overflow")
}

func ExampleValidator_Validate() {
	c, err := catalog.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	v := validation.New(c)

	priced, _ := v.Validate(validation.Order{CustomerID: "c-42", Items: []validation.Item{{SKU: "BOOK-001", Quantity: 2}}})
	fmt.Println(priced.TotalCents, priced.Currency)

	_, violations := v.Validate(validation.Order{CustomerID: "c-42", Items: []validation.Item{
		{SKU: "BOOK-001", Quantity: 2}, {SKU: "BOOK-001", Quantity: 0},
	}})
	for _, violation := range violations {
		fmt.Printf("%s: %s\n", violation.Field, violation.Reason)
	}
	// Output:
	// 2598 USD
	// items[1].sku: sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line
	// items[1].quantity: quantity must be at least 1
}
