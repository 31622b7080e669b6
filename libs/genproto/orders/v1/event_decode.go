package ordersv1

import (
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// decodeCanonical decodes the form MarshalOrderPlaced writes without protojson's reflection,
// which was half of the CPU analytics spent rebuilding its stats from the log. It reads a strict
// subset of what protojson reads: the proto field names, each at most once; strings without
// escapes; integers in plain decimal, bare or quoted; placed_at with a "Z" zone; JSON whitespace
// anywhere between tokens. Whatever is outside that subset (an unknown or camelCase field, an
// escape, null, an exponent, a duplicate, malformed input) makes it give up with ok false, and
// UnmarshalOrderPlaced asks protojson, which decides. So where it answers, it answers as protojson
// would; FuzzUnmarshalOrderPlacedAgreesWithProtojson checks that.
func decodeCanonical(b []byte) (e *OrderPlaced, ok bool) {
	d := canonicalDecoder{b: b}
	e = &OrderPlaced{}
	var seen uint8
	ok = d.object(func(name []byte) bool {
		var bit uint8
		var ok bool
		switch string(name) {
		case "order_id":
			bit = 1 << 0
			e.OrderId, ok = d.str()
		case "customer_id":
			bit = 1 << 1
			e.CustomerId, ok = d.str()
		case "items":
			bit = 1 << 2
			e.Items, ok = d.items()
		case "total_cents":
			bit = 1 << 3
			e.TotalCents, ok = d.int(64)
		case "currency":
			bit = 1 << 4
			e.Currency, ok = d.str()
		case "placed_at":
			bit = 1 << 5
			e.PlacedAt, ok = d.timestamp()
		case "idempotency_key":
			bit = 1 << 6
			e.IdempotencyKey, ok = d.str()
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	if !ok || !d.end() {
		return nil, false
	}
	return e, true
}

// canonicalDecoder reads b from position i; every method reports false on anything outside the
// canonical subset, leaving the decision to protojson.
type canonicalDecoder struct {
	b []byte
	i int
}

func (d *canonicalDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips whitespace and the byte c.
func (d *canonicalDecoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// peek skips whitespace and reports whether the next byte is c, without consuming it.
func (d *canonicalDecoder) peek(c byte) bool {
	d.space()
	return d.i < len(d.b) && d.b[d.i] == c
}

// end reports whether only whitespace is left.
func (d *canonicalDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// object reads {"name": value, ...}, calling field with each name to read its value.
func (d *canonicalDecoder) object(field func(name []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		name, ok := d.raw()
		if !ok || !d.consume(':') || !field(name) {
			return false
		}
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// raw reads a string without escapes or control characters, in valid UTF-8, and returns its
// bytes (still in b).
func (d *canonicalDecoder) raw() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	ascii := true
	for ; d.i < len(d.b); d.i++ {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (d *canonicalDecoder) str() (string, bool) {
	s, ok := d.raw()
	return string(s), ok
}

// int reads an integer of bitSize bits, bare or quoted: an optional minus sign and decimal
// digits without leading zeros ("-0" is left to protojson).
func (d *canonicalDecoder) int(bitSize int) (int64, bool) {
	d.space()
	quoted := d.i < len(d.b) && d.b[d.i] == '"'
	if quoted {
		d.i++
	}
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	s := d.b[start:d.i]
	switch {
	case d.i == digits: // no digits
		return 0, false
	case d.b[digits] == '0' && (d.i-digits > 1 || digits > start):
		return 0, false
	}
	if quoted {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return 0, false
		}
		d.i++
	} else if d.i < len(d.b) && !delimiter(d.b[d.i]) {
		return 0, false // a fraction or an exponent
	}
	n, err := strconv.ParseInt(string(s), 10, bitSize)
	return n, err == nil
}

// delimiter reports whether c may follow a number.
func delimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

// items reads the array of priced lines.
func (d *canonicalDecoder) items() ([]*PricedItem, bool) {
	if !d.consume('[') {
		return nil, false
	}
	items := []*PricedItem{}
	if d.consume(']') {
		return items, true
	}
	for {
		if !d.peek('{') {
			return nil, false
		}
		item := &PricedItem{}
		var seen uint8
		ok := d.object(func(name []byte) bool {
			var bit uint8
			var ok bool
			switch string(name) {
			case "sku":
				bit = 1 << 0
				item.Sku, ok = d.str()
			case "quantity":
				bit = 1 << 1
				var q int64
				q, ok = d.int(32)
				item.Quantity = int32(q)
			case "unit_price_cents":
				bit = 1 << 2
				item.UnitPriceCents, ok = d.int(64)
			case "line_total_cents":
				bit = 1 << 3
				item.LineTotalCents, ok = d.int(64)
			default:
				return false
			}
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			return ok
		})
		if !ok {
			return nil, false
		}
		items = append(items, item)
		if d.consume(']') {
			return items, true
		}
		if !d.consume(',') {
			return nil, false
		}
	}
}

// timestamp reads placed_at in the form protojson writes, YYYY-MM-DDThh:mm:ss[.f{1,9}]Z, with
// a year from 0001 on (protojson's range); time.Parse with RFC 3339, as protojson uses, decides
// whether the date and time exist.
func (d *canonicalDecoder) timestamp() (*timestamppb.Timestamp, bool) {
	s, ok := d.raw()
	const layout = "dddd-dd-ddTdd:dd:dd"
	if !ok || len(s) < len(layout)+1 || s[len(s)-1] != 'Z' {
		return nil, false
	}
	for i := range len(layout) {
		if layout[i] == 'd' && (s[i] < '0' || s[i] > '9') || layout[i] != 'd' && s[i] != layout[i] {
			return nil, false
		}
	}
	if string(s[:4]) == "0000" {
		return nil, false
	}
	if frac := s[len(layout) : len(s)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return nil, false
		}
		for _, c := range frac[1:] {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return nil, false
	}
	return &timestamppb.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}, true
}
