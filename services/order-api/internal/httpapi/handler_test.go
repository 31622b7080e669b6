package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/backend-prep/backend-prep/services/order-api/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

const validBody = `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 2}]}`

// withItem is an order of c-42 with one item whose JSON is item.
func withItem(item string) string {
	return `{"customer_id": "c-42", "items": [` + item + `]}`
}

// withCustomer is an order of one book by the customer whose JSON value is customer.
func withCustomer(customer string) string {
	return `{"customer_id": ` + customer + `, "items": [{"sku": "BOOK-001", "quantity": 1}]}`
}

func withItems(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = `{"sku": "BOOK-001", "quantity": 1}`
	}
	return `{"customer_id": "c-42", "items": [` + strings.Join(items, ",") + `]}`
}

// badInput is a request POST /v1/orders must refuse.
type badInput struct {
	name    string
	body    string
	headers []string // name, value, …; a Content-Type here replaces application/json
	// noContentType sends the request without a Content-Type header.
	noContentType bool

	wantStatus int
	wantType   string
	// wantDetail must appear in the problem's detail.
	wantDetail string
	// wantViolations are the exact violations of a 422.
	wantViolations []violation
	// askValidator is set when the order is well-formed and within the contract's bounds, so
	// only the validator can refuse it; the OpenAPI document accepts such a request too.
	askValidator bool
	// documentCannotTell explains why the OpenAPI document accepts a request the API refuses.
	documentCannotTell string
}

const (
	typeMalformed   = httpapi.ProblemTypeBase + "malformed-request"
	typeTooLarge    = httpapi.ProblemTypeBase + "body-too-large"
	typeMediaType   = httpapi.ProblemTypeBase + "unsupported-media-type"
	typeInvalid     = httpapi.ProblemTypeBase + "invalid-order"
	typeUnavailable = httpapi.ProblemTypeBase + "unavailable"
	typeKeyReused   = httpapi.ProblemTypeBase + "idempotency-key-reused"
	typeKeyInFlight = httpapi.ProblemTypeBase + "idempotency-key-in-flight"

	lengthReason   = "must be 1 to 64 characters long"
	charsReason    = "may contain only the characters A-Z, a-z, 0-9, '_' and '-'"
	itemsReason    = "must hold 1 to 50 items"
	quantityReason = "must be an integer from 1 to 1000"
)

var badInputs = []badInput{
	// Not JSON at all.
	{name: "truncated JSON", body: `{"customer_id": "c-42",`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body is not valid JSON: unexpected end of input"},
	{name: "not JSON", body: `customer_id=c-42`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body is not valid JSON: invalid character 'c'"},
	{name: "single quotes", body: `{'customer_id': 'c-42'}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "not valid JSON"},
	{name: "byte order mark", body: "\ufeff" + validBody,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "not valid JSON"},
	{name: "empty body", body: ``,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body is empty; expected a JSON object"},
	{name: "only whitespace", body: " \n\t ",
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body is empty"},
	{name: "trailing object", body: validBody + ` {}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "unexpected data after the JSON object"},
	{name: "trailing garbage", body: validBody + `x`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "unexpected data after the JSON object"},
	{name: "trailing closing brace", body: validBody + `}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "unexpected data after the JSON object"},

	// JSON, but not an order object.
	{name: "null body", body: `null`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body must be a JSON object, got null"},
	{name: "array instead of object", body: `[` + validBody + `]`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body must be a JSON object, got array"},
	{name: "string instead of object", body: `"c-42"`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the body must be a JSON object, got string"},
	{name: "unknown top-level field", body: `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 1}], "coupon": "FREE"}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "coupon: unknown field; expected only customer_id, items"},
	{name: "field name in another case", body: `{"Customer_ID": "c-42", "items": [{"sku": "BOOK-001", "quantity": 1}]}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "Customer_ID: unknown field"},
	{name: "unknown field in an item", body: withItem(`{"sku": "BOOK-001", "quantity": 1, "price_cents": 1}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].price_cents: unknown field; expected only sku, quantity"},

	// Mistyped members; null is a type of its own.
	{name: "customer_id is a number", body: withCustomer(`42`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "customer_id: must be a string, got number"},
	{name: "customer_id is null", body: withCustomer(`null`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "customer_id: must be a string, got null"},
	{name: "items is an object", body: `{"customer_id": "c-42", "items": {"sku": "BOOK-001", "quantity": 1}}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items: must be an array, got object"},
	{name: "items is null", body: `{"customer_id": "c-42", "items": null}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items: must be an array, got null"},
	{name: "item is null", body: withItem(`null`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0]: must be an object, got null"},
	{name: "item is an array", body: withItem(`["BOOK-001", 1]`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0]: must be an object, got array"},
	{name: "sku is null", body: withItem(`{"sku": null, "quantity": 1}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].sku: must be a string, got null"},
	{name: "quantity is a string", body: withItem(`{"sku": "BOOK-001", "quantity": "2"}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].quantity: must be an integer, got string"},
	{name: "quantity is null", body: withItem(`{"sku": "BOOK-001", "quantity": null}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].quantity: must be an integer, got null"},
	{name: "quantity is a boolean", body: withItem(`{"sku": "BOOK-001", "quantity": true}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].quantity: must be an integer, got boolean"},
	{name: "fractional quantity", body: withItem(`{"sku": "BOOK-001", "quantity": 1.5}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[0].quantity: must be an integer, got a number with a fractional part"},
	{name: "tiny fractional quantity", body: withItem(`{"sku": "BOOK-001", "quantity": 1e-400}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "fractional part"},
	{name: "fraction beyond float64 precision", body: withItem(`{"sku": "BOOK-001", "quantity": 1.0000000000000000001}`),
		wantStatus: 400, wantType: typeMalformed, wantDetail: "fractional part",
		documentCannotTell: "the document's validator reads numbers as float64, which rounds the fraction away"},
	{name: "second item mistyped", body: `{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 1}, {"sku": 7, "quantity": 1}]}`,
		wantStatus: 400, wantType: typeMalformed, wantDetail: "items[1].sku: must be a string, got number"},

	// Size and media type.
	{name: "body of 65 KiB", body: withCustomer(`"` + strings.Repeat("a", 65<<10) + `"`),
		wantStatus: 413, wantType: typeTooLarge, wantDetail: "the body must not exceed 65536 bytes"},
	{name: "no content type", body: validBody, noContentType: true,
		wantStatus: 415, wantType: typeMediaType, wantDetail: "the Content-Type header is missing"},
	{name: "text/plain", body: validBody, headers: []string{"Content-Type", "text/plain"},
		wantStatus: 415, wantType: typeMediaType, wantDetail: "Content-Type must be application/json, got text/plain"},
	{name: "form encoded", body: `customer_id=c-42`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
		wantStatus: 415, wantType: typeMediaType, wantDetail: "got application/x-www-form-urlencoded"},
	{name: "JSON in Latin-1", body: validBody, headers: []string{"Content-Type", "application/json; charset=iso-8859-1"},
		wantStatus: 415, wantType: typeMediaType, wantDetail: "the body must be UTF-8 encoded, got charset=iso-8859-1",
		documentCannotTell: "OpenAPI matches media types without their parameters"},
	{name: "unparsable content type", body: validBody, headers: []string{"Content-Type", "application/json; charset"},
		wantStatus: 415, wantType: typeMediaType, wantDetail: "is not a valid media type",
		documentCannotTell: "OpenAPI matches media types without their parameters"},

	// Idempotency-Key.
	{name: "empty Idempotency-Key", body: validBody, headers: []string{"Idempotency-Key", ""},
		wantStatus: 400, wantType: typeMalformed, wantDetail: "the Idempotency-Key header must be 1 to 255 characters long, got 0",
		documentCannotTell: "the document's validator takes an empty header for a missing one"},
	{name: "Idempotency-Key of 256 characters", body: validBody, headers: []string{"Idempotency-Key", strings.Repeat("k", 256)},
		wantStatus: 400, wantType: typeMalformed, wantDetail: "must be 1 to 255 characters long, got 256"},
	{name: "non-ASCII Idempotency-Key", body: validBody, headers: []string{"Idempotency-Key", "ключ"},
		wantStatus: 400, wantType: typeMalformed, wantDetail: "only printable ASCII characters, found byte 0xd0 at position 0"},
	{name: "Idempotency-Key with a tab", body: validBody, headers: []string{"Idempotency-Key", "a\tb"},
		wantStatus: 400, wantType: typeMalformed, wantDetail: "found byte 0x09 at position 1"},
	{name: "two Idempotency-Keys", body: validBody, headers: []string{"Idempotency-Key", "a", "Idempotency-Key", "b"},
		wantStatus: 400, wantType: typeMalformed, wantDetail: "send at most one Idempotency-Key header",
		documentCannotTell: "OpenAPI describes a header's value, not how often it is sent"},

	// Well-formed orders that break the contract's rules: 422, every violation at once.
	{name: "no items", body: `{"customer_id": "c-42", "items": []}`,
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items", itemsReason}}},
	{name: "51 items", body: withItems(51),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items", itemsReason}}},
	{name: "quantity 0", body: withItem(`{"sku": "BOOK-001", "quantity": 0}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "quantity 1001", body: withItem(`{"sku": "BOOK-001", "quantity": 1001}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "negative quantity", body: withItem(`{"sku": "BOOK-001", "quantity": -1}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "huge quantity", body: withItem(`{"sku": "BOOK-001", "quantity": 1e30}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "quantity beyond float64", body: withItem(`{"sku": "BOOK-001", "quantity": 1e400}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "quantity that wraps to 1 as int32", body: withItem(`{"sku": "BOOK-001", "quantity": 4294967297}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "missing quantity", body: withItem(`{"sku": "BOOK-001"}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].quantity", quantityReason}}},
	{name: "empty sku", body: withItem(`{"sku": "", "quantity": 1}`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].sku", lengthReason}}},
	{name: "missing customer_id", body: `{"items": [{"sku": "BOOK-001", "quantity": 1}]}`,
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", lengthReason}}},
	{name: "empty customer_id", body: withCustomer(`""`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", lengthReason}}},
	{name: "customer_id of 65 characters", body: withCustomer(`"` + strings.Repeat("c", 65) + `"`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", lengthReason}}},
	{name: "customer_id with bad characters", body: withCustomer(`"c 42!"`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", charsReason}}},
	{name: "customer_id with a Cyrillic look-alike", body: withCustomer(`"с-42"`), // U+0441, not "c"
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", charsReason}}},
	{name: "customer_id with an escaped Cyrillic look-alike", body: withCustomer(`"\u0441-42"`),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", charsReason}}},
	{name: "customer_id with invalid UTF-8", body: withCustomer("\"c-\xff\""),
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"customer_id", charsReason}}},
	{name: "every rule broken at once", body: `{"customer_id": "", "items": [{"sku": "BOOK-001", "quantity": 0}, {"sku": "", "quantity": 1001}]}`,
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{
			{"customer_id", lengthReason},
			{"items[0].quantity", quantityReason},
			{"items[1].sku", lengthReason},
			{"items[1].quantity", quantityReason},
		}},

	// Within the bounds, refused by the validator.
	{name: "unknown SKU", body: withItem(`{"sku": "NOPE-001", "quantity": 1}`), askValidator: true,
		wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{{"items[0].sku", `unknown SKU "NOPE-001"`}}},
	{name: "two unknown SKUs", body: `{"customer_id": "c-42", "items": [{"sku": "X", "quantity": 1}, {"sku": "BOOK-001", "quantity": 1}, {"sku": "Y", "quantity": 1}]}`,
		askValidator: true, wantStatus: 422, wantType: typeInvalid, wantViolations: []violation{
			{"items[0].sku", `unknown SKU "X"`},
			{"items[2].sku", `unknown SKU "Y"`},
		}},
}

// request builds the HTTP request of a bad input.
func (in badInput) request() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(in.body))
	if !in.noContentType {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(in.headers); i += 2 {
		if http.CanonicalHeaderKey(in.headers[i]) == "Content-Type" {
			req.Header.Set(in.headers[i], in.headers[i+1])
			continue
		}
		// Set directly, so that values the client library would refuse reach the handler.
		key := http.CanonicalHeaderKey(in.headers[i])
		req.Header[key] = append(req.Header[key], in.headers[i+1])
	}
	return req
}

func TestPlaceOrderRefusesBadInput(t *testing.T) {
	a := newAPI(t, apiOptions{})
	for _, in := range badInputs {
		t.Run(in.name, func(t *testing.T) {
			callsBefore := a.validator.Calls()

			resp := a.serve(in.request())
			defer resp.Body.Close()

			require.Equal(t, in.wantStatus, resp.StatusCode)
			p := readProblem(t, resp)
			assert.Equal(t, in.wantType, p.Type)
			assert.Equal(t, in.wantStatus, p.Status)
			assert.NotEmpty(t, p.Title)
			assert.Contains(t, p.Detail, in.wantDetail)
			assert.Equal(t, in.wantViolations, p.Violations)
			assert.Empty(t, resp.Header.Get("Retry-After"), "bad input does not get better by waiting")

			asked := a.validator.Calls() - callsBefore
			if in.askValidator {
				assert.EqualValues(t, 1, asked)
			} else {
				assert.Zero(t, asked, "an order refused by order-api never reaches the validator")
			}
			assert.Empty(t, a.kafka.published())
			assert.Empty(t, a.rabbitmq.published())
		})
	}
}

// validInput is a request POST /v1/orders accepts.
type validInput struct {
	name    string
	request func() *http.Request
	// quantity is the first item's quantity as the order was placed.
	quantity int32
}

func post(body string, headers ...string) func() *http.Request {
	return func() *http.Request { return orderRequest(body, headers...) }
}

var validInputs = []validInput{
	{"plain", post(validBody), 2},
	{"charset utf-8", post(validBody, "Content-Type", "application/json; charset=utf-8"), 2},
	{"media type in capitals", post(validBody, "Content-Type", "Application/JSON; charset=UTF-8"), 2},
	{"quantity 2.0", post(withItem(`{"sku": "BOOK-001", "quantity": 2.0}`)), 2},
	{"quantity 0.2e1", post(withItem(`{"sku": "BOOK-001", "quantity": 0.2e1}`)), 2},
	{"quantity 1e3", post(withItem(`{"sku": "BOOK-001", "quantity": 1e3}`)), 1000},
	{"escaped characters", post(`{"customer_id": "c\u002d42", "items": [{"sku": "BOOK\u002d001", "quantity": 2}]}`), 2},
	{"members in another order", post(`{"items": [{"quantity": 2, "sku": "BOOK-001"}], "customer_id": "c-42"}`), 2},
	{"surrounding whitespace", post("\n  " + validBody + "\n\n"), 2},
	{"body of exactly 64 KiB", post(padded(validBody, httpapi.MaxBodyBytes)), 2},
	{"50 items", post(withItems(50)), 1},
	{"customer_id of 64 characters", post(withCustomer(`"` + strings.Repeat("C", 64) + `"`)), 1},
	{"Idempotency-Key of 255 printable characters", post(validBody, "Idempotency-Key", strings.Repeat("~", 254)+"!"), 2},
	{"Idempotency-Key with inner spaces", post(validBody, "Idempotency-Key", "order 7 of c-42"), 2},
}

func TestPlaceOrderAcceptsEveryFormOfAValidOrder(t *testing.T) {
	for _, in := range validInputs {
		t.Run(in.name, func(t *testing.T) {
			a := newAPI(t, apiOptions{})

			resp := a.serve(in.request())
			defer resp.Body.Close()

			require.Equal(t, http.StatusAccepted, resp.StatusCode, readBody(t, resp))
			require.Len(t, a.kafka.published(), 1)
			assert.Equal(t, in.quantity, a.kafka.published()[0].OrderPlaced.GetItems()[0].GetQuantity())
		})
	}
}

// padded fills body with trailing spaces up to size bytes.
func padded(body string, size int) string {
	return body + strings.Repeat(" ", size-len(body))
}

func TestPlaceOrderAnswersWithThePricedOrder(t *testing.T) {
	a := newAPI(t, apiOptions{})

	resp := a.serve(orderRequest(
		`{"customer_id": "c-42", "items": [{"sku": "BOOK-001", "quantity": 2}, {"sku": "MUG-001", "quantity": 3}]}`,
		"Idempotency-Key", "order-7"))
	defer resp.Body.Close()

	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotEmpty(t, resp.Header.Get("X-Request-Id"), "every response names its request")
	orderID, err := orders.OrderID("c-42", "order-7")
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"order_id": "`+orderID+`",
		"status": "accepted",
		"total_cents": 5295,
		"currency": "EUR",
		"items": [
			{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 1299, "line_total_cents": 2598},
			{"sku": "MUG-001", "quantity": 3, "unit_price_cents": 899, "line_total_cents": 2697}
		]
	}`, readBody(t, resp))

	require.Len(t, a.kafka.published(), 1)
	require.Len(t, a.rabbitmq.published(), 1)
	event := a.kafka.published()[0]
	assert.Equal(t, event, a.rabbitmq.published()[0])
	assert.Equal(t, "order-7", event.OrderPlaced.GetIdempotencyKey())
	assert.Equal(t, orderID, event.OrderPlaced.GetOrderId())
}

func TestPlaceOrderDerivesTheOrderIDFromTheIdempotencyKey(t *testing.T) {
	a := newAPI(t, apiOptions{})
	place := func(customer, key string) string {
		t.Helper()
		var headers []string
		if key != "" {
			headers = []string{"Idempotency-Key", key}
		}
		resp := a.serve(orderRequest(withCustomer(`"`+customer+`"`), headers...))
		defer resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		var body struct {
			OrderID string `json:"order_id"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body.OrderID
	}

	first := place("c-42", "retry-me")
	assert.Equal(t, first, place("c-42", "retry-me"), "a replay names the same order")
	assert.NotEqual(t, first, place("c-43", "retry-me"), "another customer's key names another order")
	assert.NotEqual(t, first, place("c-42", "another-key"))
	assert.NotEqual(t, place("c-42", ""), place("c-42", ""), "without a key every request is a new order")

	replays := 0
	for _, e := range a.kafka.published() {
		if e.OrderPlaced.GetOrderId() == first {
			replays++
		}
	}
	assert.Equal(t, 2, replays, "a replay is published again; consumers deduplicate by order_id")
}

// unavailable is a 503 scenario: the validator or a broker fails the order.
type unavailable struct {
	name string
	opts func(t *testing.T) apiOptions
	// bound is how long the answer may take: the deadline that applies, plus slack for
	// scheduling on a busy machine.
	bound      time.Duration
	wantDetail string
}

const (
	shortDeadline = 300 * time.Millisecond
	slack         = 2 * time.Second
)

var unavailableScenarios = []unavailable{
	{
		name: "validator not running",
		opts: func(t *testing.T) apiOptions {
			srv := validatortest.Start(t, &validatortest.Validator{})
			srv.Stop()
			return apiOptions{validatorAddr: srv.Addr, validatorTimeout: shortDeadline}
		},
		bound:      shortDeadline + slack,
		wantDetail: "could not be validated right now and was not placed",
	},
	{
		name: "validator too slow",
		opts: func(*testing.T) apiOptions {
			return apiOptions{validator: &validatortest.Validator{Block: true}, validatorTimeout: shortDeadline}
		},
		bound:      shortDeadline + slack,
		wantDetail: "could not be validated right now",
	},
	{
		name: "validator failing",
		opts: func(*testing.T) apiOptions {
			return apiOptions{validator: &validatortest.Validator{Fail: codes.Internal}}
		},
		bound:      slack,
		wantDetail: "could not be validated right now",
	},
	{
		name: "Kafka fails",
		opts: func(*testing.T) apiOptions {
			return apiOptions{kafka: &broker{name: "kafka", fail: errors.New("kafka: not enough replicas")}}
		},
		bound:      slack,
		wantDetail: "retry after Retry-After with the same Idempotency-Key",
	},
	{
		name: "RabbitMQ never confirms",
		opts: func(*testing.T) apiOptions {
			return apiOptions{rabbitmq: &broker{name: "rabbitmq", hang: true}, publishTimeout: shortDeadline}
		},
		bound:      shortDeadline + slack,
		wantDetail: "may still be placed; retry after Retry-After with the same Idempotency-Key, which places it once — without a key, a retry may place a second order",
	},
}

func TestPlaceOrderAnswers503WhenADependencyIsUnavailable(t *testing.T) {
	for _, sc := range unavailableScenarios {
		t.Run(sc.name, func(t *testing.T) {
			a := newAPI(t, sc.opts(t))

			start := time.Now()
			resp := a.serve(orderRequest(validBody, "Idempotency-Key", "k-1"))
			defer resp.Body.Close()
			elapsed := time.Since(start)

			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, "3", resp.Header.Get("Retry-After"))
			p := readProblem(t, resp)
			assert.Equal(t, typeUnavailable, p.Type)
			assert.Equal(t, 503, p.Status)
			assert.Contains(t, p.Detail, sc.wantDetail)
			assert.Less(t, elapsed, sc.bound, "the answer comes within the deadline")
		})
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	a := newAPI(t, apiOptions{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/orders", http.StatusMethodNotAllowed},
		{http.MethodPut, "/v1/orders", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/order", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.method, tt.path), func(t *testing.T) {
			resp := a.serve(httptest.NewRequest(tt.method, tt.path, strings.NewReader(validBody)))
			defer resp.Body.Close()

			require.Equal(t, tt.want, resp.StatusCode)
			p := readProblem(t, resp)
			assert.Equal(t, tt.want, p.Status)
			assert.Equal(t, "about:blank", p.Type)
		})
	}
}
