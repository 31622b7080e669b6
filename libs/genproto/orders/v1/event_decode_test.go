package ordersv1

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// canonicalSamples are events as MarshalOrderPlaced writes them, with the corners of each field.
func canonicalSamples(t testing.TB) [][]byte {
	t.Helper()
	events := []*OrderPlaced{
		{},
		{
			OrderId: "0b5e3f0e-6f2c-4c8e-9a57-1d2f3c4b5a69", CustomerId: "cust-42", Currency: "USD",
			TotalCents: 2497, IdempotencyKey: "k-1",
			PlacedAt: timestamppb.New(time.Date(2025, time.January, 31, 12, 30, 5, 250_000_000, time.UTC)),
			Items: []*PricedItem{
				{Sku: "BOOK-001", Quantity: 2, UnitPriceCents: 999, LineTotalCents: 1998},
				{Sku: "MUG-002", Quantity: 1, UnitPriceCents: 499, LineTotalCents: 499},
			},
		},
		{OrderId: "ünïcode-順序", TotalCents: -9223372036854775808, Items: []*PricedItem{{Quantity: 2147483647}, {Quantity: -2147483648}}},
		{TotalCents: 9223372036854775807, PlacedAt: timestamppb.New(time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC))},
		{PlacedAt: timestamppb.New(time.Date(9999, time.December, 31, 23, 59, 59, 999_999_999, time.UTC))},
		{PlacedAt: &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 1000}},
		{PlacedAt: &timestamppb.Timestamp{Seconds: -1}},
		{Items: []*PricedItem{{}}},
	}
	var out [][]byte
	for _, e := range events {
		b, err := MarshalOrderPlaced(e)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestCanonicalDecoderReadsWhatMarshalOrderPlacedWrites(t *testing.T) {
	for _, b := range canonicalSamples(t) {
		want := &OrderPlaced{}
		require.NoError(t, protojson.Unmarshal(b, want))
		got, ok := decodeCanonical(b)
		require.True(t, ok, "the canonical decoder gave up on %s", b)
		assert.True(t, proto.Equal(want, got), "%s:\nprotojson %v\ncanonical %v", b, want, got)
	}
}

// TestCanonicalDecoderLeavesTheRestToProtojson lists inputs outside the canonical form: the fast
// decoder gives up on each, and UnmarshalOrderPlaced answers as protojson does.
func TestCanonicalDecoderLeavesTheRestToProtojson(t *testing.T) {
	for _, in := range []string{
		`{"orderId":"a"}`,                        // the JSON name: protojson reads it
		`{"order_id":"a","new_field":{"x":[1]}}`, // unknown: protojson discards it
		`{"order_id":"\u0041"}`,                  // an escape
		`{"order_id":null}`,
		`{"total_cents":1e2}`,
		`{"total_cents":"1.0"}`,
		`{"total_cents":-0}`,
		`{"total_cents":007}`,
		`{"total_cents":" 1"}`,
		`{"total_cents":9223372036854775808}`,
		`{"items":[{"quantity":2147483648}]}`,
		`{"order_id":"a","order_id":"b"}`,
		`{"items":[{"sku":"a","sku":"b"}]}`,
		`{"items":null}`,
		`{"items":[null]}`,
		`{"placed_at":"2025-01-31T12:30:05+02:00"}`,
		`{"placed_at":"2025-02-30T12:30:05Z"}`,
		`{"placed_at":"0000-01-01T00:00:00Z"}`,
		`{"placed_at":"2025-01-31T12:30:05.1234567890Z"}`,
		`{"placed_at":"2025-01-31t12:30:05Z"}`,
		"{\"order_id\":\"\xff\"}",
		`{"order_id":"a",}`,
		`{"order_id":"a"} x`,
		`{"order_id":"a"`,
		``,
		`[]`,
	} {
		_, ok := decodeCanonical([]byte(in))
		assert.False(t, ok, "the canonical decoder answered for %s", in)
		want := &OrderPlaced{}
		wantErr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(in), want)
		got, err := UnmarshalOrderPlaced([]byte(in))
		if wantErr != nil {
			assert.Error(t, err, in)
			continue
		}
		if assert.NoError(t, err, in) {
			assert.True(t, proto.Equal(want, got), "%s", in)
		}
	}
}

// FuzzUnmarshalOrderPlacedAgreesWithProtojson checks the canonical decoder against protojson:
// where it answers, protojson accepts the same body and reads the same event. `go test -fuzz`
// explores from these seeds; plain `go test` runs the seeds.
func FuzzUnmarshalOrderPlacedAgreesWithProtojson(f *testing.F) {
	for _, b := range canonicalSamples(f) {
		f.Add(b)
		f.Add([]byte(strings.ReplaceAll(string(b), ",", " ,\n\t")))
	}
	f.Add([]byte(`{"total_cents":"12","items":[{"quantity":"3"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeCanonical(b)
		want := &OrderPlaced{}
		err := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, want)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("the canonical decoder read %q, which protojson refuses: %v", b, err)
		}
		if !proto.Equal(want, got) {
			t.Fatalf("%q:\nprotojson %v\ncanonical %v", b, want, got)
		}
	})
}

func BenchmarkUnmarshalOrderPlaced(b *testing.B) {
	body := canonicalSamples(b)[1]
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalOrderPlaced(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		opts := protojson.UnmarshalOptions{DiscardUnknown: true}
		for b.Loop() {
			if err := opts.Unmarshal(body, &OrderPlaced{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
