// Package orders is order-api's order logic: placing an order means checking it against the
// contract's rules, having the validator price it, and publishing one OrderPlaced event to every
// broker, concurrently, under one deadline. An order is placed only when every broker confirmed
// the event.
//
// The transports are behind two interfaces, Validator and Publisher, so the logic is tested
// without a network; the adapters live in packages validatorclient and events.
package orders

import (
	"errors"
	"fmt"
	"strings"
)

// The contract's bounds on an order (docs/architecture.md, "POST /v1/orders").
const (
	MaxCustomerIDLength = 64
	MinItems            = 1
	MaxItems            = 50
	MinQuantity         = 1
	MaxQuantity         = 1000
	// MaxSKULength bounds a SKU before it reaches the validator; every catalog SKU is far
	// shorter, so a longer one could only ever be unknown.
	MaxSKULength = 64
)

// Order is an order as the customer placed it. A field the request left out holds its zero
// value, which breaks the corresponding rule.
type Order struct {
	CustomerID string
	Items      []Item
}

// Item is one line of an order.
type Item struct {
	SKU string
	// Quantity is int64 so that any integer a client sends, however large, is checked against
	// the bounds rather than wrapped around.
	Quantity int64
}

// PricedOrder is an order the validator accepted and priced.
type PricedOrder struct {
	Items []PricedItem
	// TotalCents is the sum of the lines' LineTotalCents.
	TotalCents int64
	// Currency is the ISO 4217 code of every amount.
	Currency string
}

// PricedItem is one line of a PricedOrder; amounts are integer cents.
type PricedItem struct {
	SKU            string
	Quantity       int32
	UnitPriceCents int64
	LineTotalCents int64
}

// Violation is one broken rule. Field is a path into the request, such as "customer_id" or
// "items[1].quantity" (indices from 0); Reason says what is wrong in words a customer can read.
type Violation struct {
	Field  string
	Reason string
}

// RejectedError says that an order breaks rules, listing every broken rule. The order was not
// placed; sending it again unchanged fails the same way.
type RejectedError struct {
	Violations []Violation
}

func (e *RejectedError) Error() string {
	if len(e.Violations) == 0 {
		return "order rejected"
	}
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Reason
	}
	return "order rejected: " + strings.Join(parts, "; ")
}

// ErrValidatorUnavailable says that the validator did not judge the order: it was unreachable,
// too slow or failed. Nothing was published; the order may be sent again.
var ErrValidatorUnavailable = errors.New("validator unavailable")

// ErrNotPublished says that not every broker confirmed the order's event in time. Some may have
// it; sending the order again with the same Idempotency-Key is safe, because its order_id is the
// same and consumers deduplicate by order_id.
var ErrNotPublished = errors.New("order event not confirmed by every broker")

// Check returns every rule of the contract that o breaks, in field order; none when o may go to
// the validator. An order of more than MaxItems lines gets no per-line violations.
func (o Order) Check() []Violation {
	var vs []Violation
	if n := len(o.CustomerID); n < 1 || n > MaxCustomerIDLength {
		vs = append(vs, Violation{"customer_id", fmt.Sprintf("must be 1 to %d characters long", MaxCustomerIDLength)})
	}
	if !isCustomerID(o.CustomerID) {
		vs = append(vs, Violation{"customer_id", "may contain only the characters A-Z, a-z, 0-9, '_' and '-'"})
	}
	if n := len(o.Items); n < MinItems || n > MaxItems {
		vs = append(vs, Violation{"items", fmt.Sprintf("must hold %d to %d items", MinItems, MaxItems)})
		// Too many lines: their own violations would make the answer many times the request's size
		// (64 KiB of `{}` is some 20,000 lines). One violation says all that needs fixing first.
		return vs
	}
	for i, item := range o.Items {
		if n := len(item.SKU); n < 1 || n > MaxSKULength {
			vs = append(vs, Violation{fmt.Sprintf("items[%d].sku", i), fmt.Sprintf("must be 1 to %d characters long", MaxSKULength)})
		}
		if item.Quantity < MinQuantity || item.Quantity > MaxQuantity {
			vs = append(vs, Violation{fmt.Sprintf("items[%d].quantity", i), fmt.Sprintf("must be an integer from %d to %d", MinQuantity, MaxQuantity)})
		}
	}
	return vs
}

// isCustomerID reports whether s holds only [A-Za-z0-9_-]. It looks at bytes, not runes, so a
// look-alike from another script (Cyrillic "с" for Latin "c") never passes.
func isCustomerID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
