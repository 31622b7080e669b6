// Package httpapi is order-api's HTTP transport: POST /v1/orders on echo. It checks the request
// (content type, size, Idempotency-Key, a strictly decoded JSON body), hands the order to
// package orders, and maps the outcome onto the contract's statuses, every error as an RFC 9457
// problem (application/problem+json).
//
// The 400/422 split: 400 means the request is not a well-formed order document — not JSON,
// trailing data, an unknown member, a value of the wrong JSON type (null included; a fractional
// quantity is not an integer), or a bad Idempotency-Key header. 422 means a well-formed order
// that breaks a rule — a missing member, customer_id length or characters, 1 to 50 items,
// quantity 1 to 1000 (so 0, -1 and 1e30 are 422), or the validator's verdict (an unknown SKU) —
// and lists every broken rule in violations at once.
//
// Idempotency-Key: a request with a key is recorded in the idempotency store (package
// idempotency, PostgreSQL) before the order is placed, keyed by (customer_id, key) and bound to a
// fingerprint of the decoded order. The same order again gets the same answer (202, the same
// order_id); another order under the same key is refused with 422 (idempotency-key-reused), and
// a retry while the first attempt is still processed with 409 (idempotency-key-in-flight), as
// the IETF Idempotency-Key draft asks. When the store cannot record the key, the order is not
// placed: 503. Requests without a key never touch the store.
package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// MaxBodyBytes bounds the body of POST /v1/orders (64 KiB).
const MaxBodyBytes = 64 << 10

// Options tunes a Handler.
type Options struct {
	// RetryAfter is sent as the Retry-After header of a 503, rounded up to whole seconds.
	RetryAfter time.Duration
}

// Handler serves POST /v1/orders.
type Handler struct {
	orders     *orders.Service
	keys       *idempotency.Store
	retryAfter string
	metrics    *metrics
}

// NewHandler returns the handler placing orders with svc and recording Idempotency-Keys in keys;
// it registers its metrics on reg.
func NewHandler(svc *orders.Service, keys *idempotency.Store, reg prometheus.Registerer, opts Options) (*Handler, error) {
	if keys == nil {
		return nil, errors.New("httpapi: no idempotency store")
	}
	if opts.RetryAfter <= 0 {
		return nil, fmt.Errorf("httpapi: retry-after must be positive, got %s", opts.RetryAfter)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Handler{
		orders:     svc,
		keys:       keys,
		retryAfter: strconv.Itoa(int(math.Ceil(opts.RetryAfter.Seconds()))),
		metrics:    m,
	}, nil
}

// Register adds the routes to e.
func (h *Handler) Register(e *echo.Echo) {
	e.POST("/v1/orders", h.placeOrder)
}

// accepted is the 202 body.
type accepted struct {
	OrderID    string         `json:"order_id"`
	Status     string         `json:"status"`
	TotalCents int64          `json:"total_cents"`
	Currency   string         `json:"currency"`
	Items      []acceptedItem `json:"items"`
}

type acceptedItem struct {
	SKU            string `json:"sku"`
	Quantity       int32  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

func (h *Handler) placeOrder(c echo.Context) error {
	req, err := h.readRequest(c)
	if err != nil {
		return h.fail(c, err)
	}
	ctx := c.Request().Context() // carries the request's span: its trace_id is on every log line

	// An order that breaks the contract's rules is refused before the key is looked at: it
	// could not be placed, and bad input never depends on the store (never a 5xx).
	if vs := req.Order.Check(); len(vs) > 0 {
		return h.fail(c, &orders.RejectedError{Violations: vs})
	}
	claim, err := h.claim(ctx, req)
	if err != nil {
		return h.fail(c, err)
	}

	placed, err := h.orders.Place(ctx, req)
	var recordErr error
	if claim != nil {
		recordErr = claim.Finish(ctx, outcomeForKey(err))
	}
	if err != nil {
		return h.fail(c, errors.Join(err, recordErr))
	}
	c.SetRequest(c.Request().WithContext(logging.WithFields(ctx, zap.String("order_id", placed.GetOrderId()))))
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(ordersv1.SpanAttributeOrderID, placed.GetOrderId()))
	h.metrics.accepted.Inc()
	if werr := c.JSON(http.StatusAccepted, acceptedBody(placed)); werr != nil {
		return errors.Join(werr, recordErr)
	}
	// The order is placed and the key stays bound to it; only its state could not be recorded,
	// so a retry waits out the lease (409) before it is answered again. The access log says so.
	return recordErr
}

// claim binds the request's Idempotency-Key to its order; nil without a key.
func (h *Handler) claim(ctx context.Context, req orders.Request) (*idempotency.Claim, error) {
	if req.IdempotencyKey == "" {
		return nil, nil //nolint:nilnil // no key, nothing to hold
	}
	orderID, err := orders.OrderID(req.Order.CustomerID, req.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return h.keys.Claim(ctx, idempotency.Request{
		CustomerID:  req.Order.CustomerID,
		Key:         req.IdempotencyKey,
		Fingerprint: fingerprint(req.Order),
		OrderID:     orderID,
	})
}

// outcomeForKey says what placing the order did, as the idempotency store records it.
func outcomeForKey(err error) idempotency.Outcome {
	var rejected *orders.RejectedError
	switch {
	case err == nil:
		return idempotency.Accepted
	case errors.As(err, &rejected), errors.Is(err, orders.ErrValidatorUnavailable):
		return idempotency.NotPlaced // nothing was published
	default:
		return idempotency.MaybePlaced
	}
}

// fingerprint identifies an order under its Idempotency-Key: SHA-256 of the decoded order —
// customer_id, then each item's sku and quantity in the request's order — each value
// length-prefixed, so no two orders share an encoding. The JSON spelling does not matter
// (whitespace, member order, escapes, 2 or 2.0); the items' order does, as it does in the answer.
func fingerprint(o orders.Order) []byte {
	h := sha256.New()
	write := func(s string) {
		_, _ = h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		_, _ = h.Write([]byte(s))
	}
	write("order-api/fingerprint/v1")
	write(o.CustomerID)
	_, _ = h.Write(binary.AppendUvarint(nil, uint64(len(o.Items))))
	for _, item := range o.Items {
		write(item.SKU)
		_, _ = h.Write(binary.BigEndian.AppendUint64(nil, uint64(item.Quantity)))
	}
	return h.Sum(nil)
}

// readRequest checks the request in the order that costs least first: headers, then the body.
func (h *Handler) readRequest(c echo.Context) (orders.Request, error) {
	r := c.Request()
	if err := checkContentType(r.Header.Get(echo.HeaderContentType)); err != nil {
		return orders.Request{}, err
	}
	key, err := idempotencyKey(r.Header)
	if err != nil {
		return orders.Request{}, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response().Writer, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return orders.Request{}, err
		}
		return orders.Request{}, malformed("", "the body could not be read: %v", err)
	}
	order, err := decodeOrder(body)
	if err != nil {
		return orders.Request{}, err
	}
	return orders.Request{Order: order, IdempotencyKey: key}, nil
}

// fail answers with the problem err maps to, and returns err so that the access log, which
// records every request once, records why; the response is already written by then.
func (h *Handler) fail(c echo.Context, err error) error {
	o := outcomeOf(err)
	if o.problem.Status >= http.StatusInternalServerError {
		h.metrics.failed.WithLabelValues(o.metric).Inc()
	} else {
		h.metrics.rejected.WithLabelValues(o.metric).Inc()
	}
	if o.retry {
		c.Response().Header().Set("Retry-After", h.retryAfter)
	}
	body, merr := json.Marshal(o.problem) // strings and ints only: it cannot fail
	if merr != nil {
		return errors.Join(err, merr)
	}
	if werr := c.Blob(o.problem.Status, httpserver.ProblemContentType, body); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

func acceptedBody(e *ordersv1.OrderPlaced) accepted {
	body := accepted{
		OrderID:    e.GetOrderId(),
		Status:     "accepted",
		TotalCents: e.GetTotalCents(),
		Currency:   e.GetCurrency(),
		Items:      make([]acceptedItem, len(e.GetItems())),
	}
	for i, item := range e.GetItems() {
		body.Items[i] = acceptedItem{
			SKU:            item.GetSku(),
			Quantity:       item.GetQuantity(),
			UnitPriceCents: item.GetUnitPriceCents(),
			LineTotalCents: item.GetLineTotalCents(),
		}
	}
	return body
}
