package httpapi_test

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/backend-prep/backend-prep/services/order-api/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

// FuzzPlaceOrder posts arbitrary bodies and Idempotency-Keys to POST /v1/orders and checks what
// must hold for any input: no panic, only the contract's statuses (never a 5xx for bad input;
// a key seen before with another body is a 422 idempotency-key-reused),
// every error an RFC 9457 problem matching its status, and every accepted order one that an
// independent reading of the body finds valid and correctly priced.
//
// `go test` runs the seeds (the bad-input and valid-input tables); CI fuzzes it for a bounded
// time with `go test -run '^$' -fuzz '^FuzzPlaceOrder$' -fuzztime 60s ./internal/httpapi`.
func FuzzPlaceOrder(f *testing.F) {
	for _, in := range badInputs {
		if !in.noContentType && len(in.headers) == 0 {
			f.Add(in.body, "")
		}
	}
	for _, in := range validInputs {
		req := in.request()
		body, err := io.ReadAll(req.Body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(body), req.Header.Get("Idempotency-Key"))
	}
	f.Add(validBody, "k-1")
	f.Add(validBody, "\x00")
	f.Add(`{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":1}],"customer_id":"c 42"}`, "")
	f.Add(`{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":1e-2147483649}]}`, "")

	a := newAPI(f, apiOptions{
		kafka:    &broker{name: "kafka", discard: true},
		rabbitmq: &broker{name: "rabbitmq", discard: true},
	})
	allowed := map[int]bool{
		http.StatusAccepted: true, http.StatusBadRequest: true, http.StatusRequestEntityTooLarge: true,
		http.StatusUnsupportedMediaType: true, http.StatusUnprocessableEntity: true,
	}

	f.Fuzz(func(t *testing.T, body, key string) {
		req := orderRequest(body)
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key}
		}

		resp := a.serve(req)
		defer resp.Body.Close()

		if !allowed[resp.StatusCode] {
			t.Fatalf("status %d for body %q, key %q", resp.StatusCode, body, key)
		}
		if resp.StatusCode == http.StatusAccepted {
			checkAccepted(t, body, key, resp)
			return
		}
		p := readProblem(t, resp)
		switch {
		case p.Status != resp.StatusCode:
			t.Fatalf("problem status %d in a %d response", p.Status, resp.StatusCode)
		case !strings.HasPrefix(p.Type, httpapi.ProblemTypeBase), p.Title == "", p.Detail == "":
			t.Fatalf("incomplete problem %+v", p)
		case (p.Type == typeInvalid) != (len(p.Violations) > 0):
			t.Fatalf("violations %v in a %s problem", p.Violations, p.Type)
		case resp.StatusCode == http.StatusUnprocessableEntity && p.Type != typeInvalid && p.Type != typeKeyReused:
			t.Fatalf("a 422 of type %s", p.Type)
		}
	})
}

var customerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// checkAccepted reads the body again with encoding/json and exact arithmetic, and fails unless
// it is an order the contract allows and the 202 prices it correctly.
func checkAccepted(t *testing.T, body, key string, resp *http.Response) {
	t.Helper()
	var order struct {
		CustomerID string `json:"customer_id"`
		Items      []struct {
			SKU      string      `json:"sku"`
			Quantity json.Number `json:"quantity"`
		} `json:"items"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&order); err != nil {
		t.Fatalf("accepted a body encoding/json refuses (%v): %q", err, body)
	}
	if !customerIDPattern.MatchString(order.CustomerID) {
		t.Fatalf("accepted customer_id %q", order.CustomerID)
	}
	if n := len(order.Items); n < orders.MinItems || n > orders.MaxItems {
		t.Fatalf("accepted %d items", n)
	}

	var got struct {
		OrderID    string `json:"order_id"`
		Status     string `json:"status"`
		TotalCents int64  `json:"total_cents"`
		Currency   string `json:"currency"`
		Items      []struct {
			SKU            string `json:"sku"`
			Quantity       int64  `json:"quantity"`
			UnitPriceCents int64  `json:"unit_price_cents"`
			LineTotalCents int64  `json:"line_total_cents"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("202 body: %v", err)
	}
	if len(got.Items) != len(order.Items) || got.Status != "accepted" || got.Currency != validatortest.Currency {
		t.Fatalf("202 body %+v for order %+v", got, order)
	}
	if _, err := uuid.Parse(got.OrderID); err != nil {
		t.Fatalf("order_id %q: %v", got.OrderID, err)
	}
	if key != "" {
		if want, _ := orders.OrderID(order.CustomerID, key); got.OrderID != want {
			t.Fatalf("order_id %s, want %s derived from the Idempotency-Key", got.OrderID, want)
		}
	}
	var total int64
	for i, item := range order.Items {
		quantity, ok := new(big.Rat).SetString(item.Quantity.String())
		if !ok || !quantity.IsInt() || quantity.Cmp(big.NewRat(orders.MinQuantity, 1)) < 0 || quantity.Cmp(big.NewRat(orders.MaxQuantity, 1)) > 0 {
			t.Fatalf("accepted quantity %s", item.Quantity)
		}
		line := got.Items[i]
		price, known := validatortest.Catalog[item.SKU]
		if !known || line.SKU != item.SKU || line.Quantity != quantity.Num().Int64() ||
			line.UnitPriceCents != price || line.LineTotalCents != price*line.Quantity {
			t.Fatalf("line %d priced %+v for %+v", i, line, item)
		}
		total += line.LineTotalCents
	}
	if got.TotalCents != total {
		t.Fatalf("total_cents %d, lines add up to %d", got.TotalCents, total)
	}
}
