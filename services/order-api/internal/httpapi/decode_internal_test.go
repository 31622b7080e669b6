package httpapi

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseInteger(t *testing.T) {
	tests := []struct {
		literal string
		want    int64
		ok      bool
	}{
		{"0", 0, true},
		{"-0", 0, true},
		{"0.0e-7", 0, true},
		{"2", 2, true},
		{"-1", -1, true},
		{"2.0", 2, true},
		{"2.000", 2, true},
		{"0.2e1", 2, true},
		{"20e-1", 2, true},
		{"2E0", 2, true},
		{"1e3", 1000, true},
		{"1000e+0", 1000, true},
		{"0.001e6", 1000, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", math.MaxInt64, true}, // saturates
		{"-9223372036854775809", math.MinInt64, true},
		{"1e30", math.MaxInt64, true},
		{"-1e30", math.MinInt64, true},
		{"1e400", math.MaxInt64, true},
		{"1e99999999999999999999", math.MaxInt64, true},
		{"1.5", 0, false},
		{"-0.5", 0, false},
		{"1e-1", 0, false},
		{"1e-400", 0, false},
		{"1.0000000000000000001", 0, false}, // a float64 would call it 1
		{"1e-99999999999999999999", 0, false},
		{"12345.678e2", 0, false},
		{"12345.678e3", 12345678, true},
	}
	for _, tt := range tests {
		t.Run(tt.literal, func(t *testing.T) {
			got, ok := parseInteger(tt.literal)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseInteger checks parseInteger against exact rational arithmetic, for every JSON number
// literal whose exponent is small enough for math/big to expand.
func FuzzParseInteger(f *testing.F) {
	for _, seed := range []string{"0", "-0", "2.0", "0.2e1", "1e3", "1.5", "1e30", "-1e-3", "9223372036854775808", "120e-1"} {
		f.Add(seed)
	}
	minInt, maxInt := big.NewRat(math.MinInt64, 1), big.NewRat(math.MaxInt64, 1)
	f.Fuzz(func(t *testing.T, literal string) {
		var n json.Number
		if json.Unmarshal([]byte(literal), &n) != nil || kind([]byte(literal)) != "number" || strings.TrimSpace(literal) != literal {
			return // not a JSON number literal
		}
		if _, exp, found := strings.Cut(strings.ToLower(literal), "e"); found && len(strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")) > 4 {
			return // too large for big.Rat to expand quickly; covered by the table
		}
		exact, ok := new(big.Rat).SetString(literal)
		if !ok {
			t.Fatalf("big.Rat cannot read %q", literal)
		}

		got, isInt := parseInteger(literal)

		if isInt != exact.IsInt() {
			t.Fatalf("parseInteger(%q) integer = %v, exactly it is %v", literal, isInt, exact.IsInt())
		}
		if !isInt {
			return
		}
		want := exact.Num().Int64()
		switch {
		case exact.Cmp(maxInt) > 0:
			want = math.MaxInt64
		case exact.Cmp(minInt) < 0:
			want = math.MinInt64
		}
		if got != want {
			t.Fatalf("parseInteger(%q) = %d, want %d", literal, got, want)
		}
	})
}
