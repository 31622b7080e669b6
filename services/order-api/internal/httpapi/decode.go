package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// malformedError says the body is not a well-formed, well-typed order document: 400.
type malformedError struct {
	// Field is the JSON path of the offending value ("items[2].quantity"), empty for the body.
	Field  string
	Reason string
}

func (e *malformedError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func malformed(field, format string, args ...any) error {
	return &malformedError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeOrder reads the body of POST /v1/orders.
//
// It decides the 400 side of the 400/422 split: the body must be exactly one JSON object with
// only the documented members, each of the documented JSON type — null is not a string, a
// number with a fraction is not an integer, "2" is not a number. Anything else is a
// *malformedError. What it accepts may still break the contract's rules (a missing member, an
// empty customer_id, a quantity of 0 or 1e30): those are for orders.Order.Check and end as 422.
//
// Duplicate member names are not an error; the last one wins, as in encoding/json.
func decodeOrder(body []byte) (orders.Order, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return orders.Order{}, malformed("", "the body is empty; expected a JSON object")
		}
		return orders.Order{}, malformed("", "the body is not valid JSON: %s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return orders.Order{}, malformed("", "unexpected data after the JSON object")
	}

	members, err := object(raw, "", []string{"customer_id", "items"})
	if err != nil {
		return orders.Order{}, err
	}
	var o orders.Order
	if v, ok := members["customer_id"]; ok {
		if o.CustomerID, err = str(v, "customer_id"); err != nil {
			return orders.Order{}, err
		}
	}
	if v, ok := members["items"]; ok {
		if o.Items, err = items(v, "items"); err != nil {
			return orders.Order{}, err
		}
	}
	return o, nil
}

func items(raw json.RawMessage, path string) ([]orders.Item, error) {
	if k := kind(raw); k != "array" {
		return nil, malformed(path, "must be an array, got %s", k)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, malformed(path, "%s", jsonError(err))
	}
	out := make([]orders.Item, len(elems))
	for i, elem := range elems {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		members, err := object(elem, itemPath, []string{"sku", "quantity"})
		if err != nil {
			return nil, err
		}
		if v, ok := members["sku"]; ok {
			if out[i].SKU, err = str(v, itemPath+".sku"); err != nil {
				return nil, err
			}
		}
		if v, ok := members["quantity"]; ok {
			if out[i].Quantity, err = integer(v, itemPath+".quantity"); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// object decodes a JSON object whose members must all be among known.
func object(raw json.RawMessage, path string, known []string) (map[string]json.RawMessage, error) {
	if k := kind(raw); k != "object" {
		if path == "" {
			return nil, malformed("", "the body must be a JSON object, got %s", k)
		}
		return nil, malformed(path, "must be an object, got %s", k)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, malformed(path, "%s", jsonError(err))
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names) // report the same unknown member every time
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, malformed(join(path, name), "unknown field; expected only %s", strings.Join(known, ", "))
		}
	}
	return members, nil
}

func str(raw json.RawMessage, path string) (string, error) {
	if k := kind(raw); k != "string" {
		return "", malformed(path, "must be a string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed(path, "%s", jsonError(err))
	}
	return s, nil
}

func integer(raw json.RawMessage, path string) (int64, error) {
	if k := kind(raw); k != "number" {
		return 0, malformed(path, "must be an integer, got %s", k)
	}
	n, ok := parseInteger(string(bytes.TrimSpace(raw)))
	if !ok {
		return 0, malformed(path, "must be an integer, got a number with a fractional part")
	}
	return n, nil
}

// parseInteger reads a JSON number literal the way JSON Schema reads "integer": any number
// without a fractional part, however it is written — 2, 2.0, 0.2e1 and 2e0 are all the integer
// 2, and 1e30 is an integer too. ok is false for a number with a fractional part. Integers
// outside the int64 range saturate to its bounds, which lie outside every range the API accepts.
//
// It works on the decimal digits rather than on a float64, which would round 1.0000000000000001
// to the integer 1 and cannot hold 1e400 at all.
func parseInteger(lit string) (n int64, ok bool) {
	negative := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mantissa, exponent, _ := strings.Cut(strings.ToLower(lit), "e")
	whole, fraction, _ := strings.Cut(mantissa, ".")

	// The value is 0.<digits> × 10^point, with point counted from the start of digits.
	digits := whole + fraction
	point := int64(len(whole))
	if exponent != "" {
		exp, err := strconv.ParseInt(exponent, 10, 32)
		if err != nil {
			// Only a range error is possible on a valid literal: the exponent is beyond ±2^31,
			// so the value is astronomically large or small.
			exp = math.MaxInt32
			if strings.HasPrefix(exponent, "-") {
				exp = math.MinInt32
			}
		}
		point += exp
	}
	trimmed := strings.TrimLeft(digits, "0")
	point -= int64(len(digits) - len(trimmed))
	digits = strings.TrimRight(trimmed, "0")

	switch {
	case digits == "":
		return 0, true // zero, however written
	case int64(len(digits)) > point:
		return 0, false // a non-zero digit after the decimal point
	case point > 19: // more digits than any int64 has
		return saturate(negative), true
	}
	text := digits + strings.Repeat("0", int(point)-len(digits))
	if negative {
		text = "-" + text
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return saturate(negative), true
	}
	return n, true
}

func saturate(negative bool) int64 {
	if negative {
		return math.MinInt64
	}
	return math.MaxInt64
}

// kind names the JSON type of a value as JSON Schema does.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonError describes a decoding error without the "json: " prefix and with the position of a
// syntax error, which is what a client needs to find it.
func jsonError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syntax.Error(), "json: "), syntax.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
