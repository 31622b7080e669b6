// Package validation decides whether an order can be accepted and what it costs. It is the order
// logic of the validator, kept free of gRPC so it can be read and tested on its own: the transport
// turns its Violations into a status, and its PricedOrder into a response.
//
// Rules, each reported against a field path into the request (indices from 0):
//
//	customer_id         1 to 64 characters of A-Z a-z 0-9 _ -
//	items               1 to MaxItems lines
//	items[i].sku        required, in the catalog, not repeated from an earlier line
//	items[i].quantity   1 to catalog.MaxQuantity, and at most the product's max_quantity
//
// Every broken rule is reported, not just the first, so a customer fixes an order in one round
// trip. The one exception is an order with more than MaxItems lines: it is rejected for its size
// alone and its lines are not checked, which bounds the work and the size of the answer whatever a
// client sends.
package validation

import (
	"fmt"
	"unicode/utf8"

	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
)

const (
	// MaxCustomerIDLength is the longest customer_id, in characters.
	MaxCustomerIDLength = 64
	// MaxItems is the largest number of lines in one order.
	MaxItems = 50
	// MinQuantity is the smallest quantity of one line.
	MinQuantity = 1
	// MaxQuantity is the largest quantity of one line for any product; a product may allow less.
	MaxQuantity = catalog.MaxQuantity
)

// Order is an order as the customer placed it.
type Order struct {
	CustomerID string
	Items      []Item
}

// Item is one line of an Order.
type Item struct {
	SKU      string
	Quantity int
}

// PricedOrder is a valid order with every line priced.
type PricedOrder struct {
	// Items are the order's lines in the order's order.
	Items []PricedItem
	// TotalCents is the sum of every LineTotalCents.
	TotalCents int64
	// Currency is the ISO 4217 code of every amount.
	Currency string
}

// PricedItem is one priced line.
type PricedItem struct {
	SKU            string
	Quantity       int
	UnitPriceCents int64
	// LineTotalCents is Quantity × UnitPriceCents.
	LineTotalCents int64
}

// Violation is one broken rule.
type Violation struct {
	// Field is a path into the order such as "customer_id", "items" or "items[1].quantity".
	Field string
	// Reason says what is wrong in words a customer can read.
	Reason string
}

// Validator checks orders against a catalog. It is safe for concurrent use.
type Validator struct {
	catalog *catalog.Catalog
}

// New returns a Validator that prices orders from c.
func New(c *catalog.Catalog) *Validator {
	return &Validator{catalog: c}
}

// Validate returns order priced, or, when it breaks any rule, every violation and no order.
//
// The same SKU on two lines is rejected on the later line rather than merged: the priced order
// then has exactly the lines the customer sent, and "put the whole quantity on one line" is an
// instruction anyone can follow.
func (v *Validator) Validate(order Order) (PricedOrder, []Violation) {
	violations := checkCustomerID(order.CustomerID)
	priced, itemViolations := v.ValidateItems(order.Items)
	if violations = append(violations, itemViolations...); len(violations) > 0 {
		return PricedOrder{}, violations
	}
	return priced, nil
}

// ValidateItems applies the rules of an order's lines alone (every rule but customer_id's): a
// basket being put together, before anyone orders it, is priced by them.
func (v *Validator) ValidateItems(items []Item) (PricedOrder, []Violation) {
	switch n := len(items); {
	case n == 0:
		return PricedOrder{}, []Violation{{"items", "an order needs at least 1 item"}}
	case n > MaxItems:
		return PricedOrder{}, []Violation{{"items", fmt.Sprintf("an order has at most %d items, this one has %d", MaxItems, n)}}
	}

	var violations []Violation
	priced := PricedOrder{Items: make([]PricedItem, 0, len(items)), Currency: v.catalog.Currency()}
	firstLine := make(map[string]int, len(items))
	for i, item := range items {
		product, known := v.catalog.Lookup(item.SKU)
		skuField := fmt.Sprintf("items[%d].sku", i)
		switch first, repeated := firstLine[item.SKU]; {
		case item.SKU == "":
			violations = append(violations, Violation{skuField, "sku is required"})
		case !known:
			violations = append(violations, Violation{skuField, "no product with this sku in the catalog"})
		case repeated:
			violations = append(violations, Violation{skuField, fmt.Sprintf(
				"sku %s is already ordered in items[%d]; put the whole quantity on one line", item.SKU, first)})
		default:
			firstLine[item.SKU] = i
		}

		quantityField := fmt.Sprintf("items[%d].quantity", i)
		switch {
		case item.Quantity < MinQuantity:
			violations = append(violations, Violation{quantityField, fmt.Sprintf("quantity must be at least %d", MinQuantity)})
		case item.Quantity > MaxQuantity:
			violations = append(violations, Violation{quantityField, fmt.Sprintf("quantity must be at most %d", MaxQuantity)})
		case known && item.Quantity > product.MaxQuantity:
			violations = append(violations, Violation{quantityField, fmt.Sprintf(
				"at most %d of %s can be ordered at once", product.MaxQuantity, product.SKU)})
		}

		if len(violations) == 0 {
			line := price(product, item.Quantity)
			priced.Items = append(priced.Items, line)
			priced.TotalCents += line.LineTotalCents
		}
	}
	if len(violations) > 0 {
		return PricedOrder{}, violations
	}
	return priced, nil
}

// price cannot overflow: quantity ≤ MaxQuantity and the catalog bounds the unit price by
// catalog.MaxUnitPriceCents, so a line is below 10^11 cents and an order of MaxItems lines below
// 10^13, far from the int64 limit of about 9.2 × 10^18.
func price(p catalog.Product, quantity int) PricedItem {
	return PricedItem{
		SKU:            p.SKU,
		Quantity:       quantity,
		UnitPriceCents: p.UnitPriceCents,
		LineTotalCents: p.UnitPriceCents * int64(quantity),
	}
}

func checkCustomerID(id string) []Violation {
	const field = "customer_id"
	if id == "" {
		return []Violation{{field, "customer_id is required"}}
	}
	var out []Violation
	if n := utf8.RuneCountInString(id); n > MaxCustomerIDLength {
		out = append(out, Violation{field, fmt.Sprintf("customer_id must be at most %d characters, it has %d", MaxCustomerIDLength, n)})
	}
	for i := range len(id) {
		if !customerIDByte(id[i]) {
			out = append(out, Violation{field, "customer_id may contain only letters A-Z and a-z, digits, '_' and '-'"})
			break
		}
	}
	return out
}

// customerIDByte is a byte of [A-Za-z0-9_-]. Checking bytes rather than runes rejects every
// non-ASCII character, including look-alikes such as the Cyrillic 'с' in "сustomer".
func customerIDByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-'
}
