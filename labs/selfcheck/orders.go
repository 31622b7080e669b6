package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// The HTTP side of the system as the checks see it: order-api's POST /v1/orders, analytics'
// GET /v1/stats and the notifier's GET /v1/notifications/{order_id} (docs/architecture.md,
// "HTTP contracts").

// orderRequest is the body of POST /v1/orders.
type orderRequest struct {
	CustomerID string      `json:"customer_id"`
	Items      []orderItem `json:"items"`
}

type orderItem struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// acceptedOrder is the body of a 202 answer.
type acceptedOrder struct {
	OrderID    string       `json:"order_id"`
	Status     string       `json:"status"`
	TotalCents int64        `json:"total_cents"`
	Currency   string       `json:"currency"`
	Items      []pricedItem `json:"items"`
}

type pricedItem struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

// problem is an application/problem+json error body (RFC 9457) with order-api's violations.
type problem struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail"`
	Violations []violation `json:"violations"`
}

type violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// orderStats is the body of analytics' GET /v1/stats.
type orderStats struct {
	Orders       int64   `json:"orders"`
	RevenueCents int64   `json:"revenue_cents"`
	Partitions   []int32 `json:"partitions"`
}

// notification is the body of the notifier's GET /v1/notifications/{order_id}.
type notification struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Attempts   int       `json:"attempts"`
	SentAt     time.Time `json:"sent_at"`
}

// sampleOrder is the order every example of the course uses; the customer names the self-check,
// so its orders are easy to tell apart in logs.
func sampleOrder() orderRequest {
	return orderRequest{CustomerID: "selfcheck", Items: []orderItem{{SKU: "BOOK-001", Quantity: 2}}}
}

// newIdempotencyKey returns a key no earlier run used, so each run places a new order.
func newIdempotencyKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "selfcheck-" + hex.EncodeToString(b)
}

// answer is an HTTP response, read in full.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// do sends one request with its own deadline and reads the whole answer.
func do(ctx context.Context, method, rawURL string, body []byte, header map[string]string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read body: %w", method, rawURL, err)
	}
	mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return answer{status: res.StatusCode, contentType: mediaType, body: b}, nil
}

// postOrder sends POST /v1/orders, with an Idempotency-Key when key is not empty.
func postOrder(ctx context.Context, orderAPI string, order orderRequest, key string) (answer, error) {
	body, err := json.Marshal(order)
	if err != nil {
		return answer{}, err
	}
	header := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		header["Idempotency-Key"] = key
	}
	return do(ctx, http.MethodPost, orderAPI+"/v1/orders", body, header)
}

// placeOrder posts the sample order under key and returns the accepted order.
func placeOrder(ctx context.Context, orderAPI, key string) (acceptedOrder, error) {
	a, err := postOrder(ctx, orderAPI, sampleOrder(), key)
	if err != nil {
		return acceptedOrder{}, err
	}
	if a.status != http.StatusAccepted {
		return acceptedOrder{}, fmt.Errorf("POST /v1/orders answered %d, want 202: %s", a.status, short(a.body))
	}
	var o acceptedOrder
	if err := json.Unmarshal(a.body, &o); err != nil {
		return acceptedOrder{}, fmt.Errorf("POST /v1/orders: 202 body is not an order: %w", err)
	}
	if o.OrderID == "" {
		return acceptedOrder{}, fmt.Errorf("POST /v1/orders: 202 body has no order_id: %s", short(a.body))
	}
	return o, nil
}

// getStats reads analytics' totals.
func getStats(ctx context.Context, statsURL string) (orderStats, error) {
	a, err := do(ctx, http.MethodGet, statsURL+"/v1/stats", nil, nil)
	if err != nil {
		return orderStats{}, err
	}
	if a.status != http.StatusOK {
		return orderStats{}, fmt.Errorf("GET /v1/stats answered %d: %s", a.status, short(a.body))
	}
	var s orderStats
	if err := json.Unmarshal(a.body, &s); err != nil {
		return orderStats{}, fmt.Errorf("GET /v1/stats: %w", err)
	}
	return s, nil
}

// errNotYet means the notifier has no notification for the order (yet): it answered 404.
var errNotYet = errors.New("the notifier answers 404: no notification for this order (yet)")

// getNotification asks the notifier whether it notified the customer of orderID.
func getNotification(ctx context.Context, notifierURL, orderID string) (notification, error) {
	a, err := do(ctx, http.MethodGet, notifierURL+"/v1/notifications/"+url.PathEscape(orderID), nil, nil)
	if err != nil {
		return notification{}, err
	}
	switch a.status {
	case http.StatusOK:
	case http.StatusNotFound:
		return notification{}, errNotYet
	default:
		return notification{}, fmt.Errorf("GET /v1/notifications/%s answered %d: %s", orderID, a.status, short(a.body))
	}
	var n notification
	if err := json.Unmarshal(a.body, &n); err != nil {
		return notification{}, fmt.Errorf("GET /v1/notifications/%s: %w", orderID, err)
	}
	return n, nil
}

// waitForNotification polls the notifier until it reports the notification of orderID.
func waitForNotification(ctx context.Context, notifierURL, orderID string) (notification, error) {
	var n notification
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		var err error
		n, err = getNotification(ctx, notifierURL, orderID)
		return err == nil, err
	})
	if err != nil {
		return notification{}, fmt.Errorf("no notification for order %s: %w", orderID, err)
	}
	return n, nil
}

// waitForCount polls analytics until its order count exceeds before: the order just placed
// was counted (other orders placed meanwhile only make it sooner).
func waitForCount(ctx context.Context, statsURL string, before int64) (orderStats, error) {
	var s orderStats
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		var err error
		if s, err = getStats(ctx, statsURL); err != nil {
			return false, err
		}
		if s.Orders <= before {
			return false, fmt.Errorf("analytics still counts %d orders", s.Orders)
		}
		return true, nil
	})
	return s, err
}

// short cuts a response body down to what fits on a FAIL line.
func short(b []byte) string {
	const limit = 200
	b = bytes.TrimSpace(b)
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
