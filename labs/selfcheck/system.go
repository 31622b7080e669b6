package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Step 6, the system: one order through everything, as a client sees it — order-api answers
// 202 only after the validator priced it and both brokers confirmed it; a retry with the same
// Idempotency-Key is the same order; a bad order is a 422 problem; analytics counts the order
// (Kafka) and the notifier notifies its customer (RabbitMQ).

// systemRun is what the checks of step 6 share: the order they placed, and the stats before.
type systemRun struct {
	cfg         config
	key         string
	order       *acceptedOrder // nil until accepted
	before      orderStats     // analytics' stats before the order was placed
	beforeError error          // why they could not be read
}

func systemChecks(cfg config) ([]check, func()) {
	s := &systemRun{cfg: cfg, key: newIdempotencyKey()}
	return []check{
		{
			name: "POST /v1/orders answers 202 Accepted with the priced order",
			run:  s.orderAccepted,
			hint: hintOrderAPI,
		},
		{
			name: "the same request with the same Idempotency-Key gets the same order_id",
			run:  s.replayIdempotent,
			hint: hintOrderAPI,
		},
		{
			name: "an invalid order gets 422 application/problem+json with violations",
			run:  s.invalidRejected,
			hint: hintOrderAPI,
		},
		{
			name: "the order reaches analytics (Kafka)",
			run:  s.reachesAnalytics,
			hint: hintAnalytics + "; with several analytics replicas, each counts only the partitions it owns: " +
				"scale analytics to 1 for this check",
		},
		{
			name: "the order reaches the notifier (RabbitMQ)",
			run:  s.reachesNotifier,
			hint: hintNotifier + "; with several notifier replicas, each knows only the notifications it sent " +
				"itself: scale the notifier to 1 for this check",
		},
	}, func() {}
}

// orderAccepted places the order and checks the 202 body against the contract.
func (s *systemRun) orderAccepted(ctx context.Context) (string, error) {
	s.before, s.beforeError = getStats(ctx, s.cfg.stats)

	a, err := postOrder(ctx, s.cfg.orderAPI, sampleOrder(), s.key)
	if err != nil {
		return "", err
	}
	if a.status == http.StatusServiceUnavailable {
		return "", withHint(fmt.Errorf("503: %s", short(a.body)),
			"order-api is up but cannot reach the validator or a broker: its `detail` says which; "+
				"`curl -s localhost:9101/readyz` shows what it is waiting for")
	}
	if a.status != http.StatusAccepted {
		return "", fmt.Errorf("status %d, want 202: %s", a.status, short(a.body))
	}
	if a.contentType != "application/json" {
		return "", fmt.Errorf("Content-Type %q, want application/json", a.contentType)
	}
	var o acceptedOrder
	if err := json.Unmarshal(a.body, &o); err != nil {
		return "", fmt.Errorf("the body is not an order: %w: %s", err, short(a.body))
	}
	if err := checkAccepted(o, sampleOrder()); err != nil {
		return "", fmt.Errorf("%w: %s", err, short(a.body))
	}
	s.order = &o
	return fmt.Sprintf("order %s, %d %s cents", o.OrderID, o.TotalCents, o.Currency), nil
}

// checkAccepted compares a 202 body with the order that was sent: every line priced in
// integer cents, the total their sum.
func checkAccepted(o acceptedOrder, sent orderRequest) error {
	switch {
	case o.OrderID == "":
		return errors.New("no order_id")
	case o.Status != "accepted":
		return fmt.Errorf("status %q, want \"accepted\"", o.Status)
	case o.Currency == "":
		return errors.New("no currency")
	case len(o.Items) != len(sent.Items):
		return fmt.Errorf("%d items for %d sent", len(o.Items), len(sent.Items))
	}
	var total int64
	for i, it := range o.Items {
		want := sent.Items[i]
		switch {
		case it.SKU != want.SKU || it.Quantity != want.Quantity:
			return fmt.Errorf("items[%d] is %d x %s, %d x %s was sent", i, it.Quantity, it.SKU, want.Quantity, want.SKU)
		case it.UnitPriceCents <= 0:
			return fmt.Errorf("items[%d].unit_price_cents is %d", i, it.UnitPriceCents)
		case it.LineTotalCents != it.UnitPriceCents*it.Quantity:
			return fmt.Errorf("items[%d].line_total_cents is %d, want %d x %d", i, it.LineTotalCents, it.Quantity, it.UnitPriceCents)
		}
		total += it.LineTotalCents
	}
	if o.TotalCents != total {
		return fmt.Errorf("total_cents is %d, the lines add up to %d", o.TotalCents, total)
	}
	return nil
}

// replayIdempotent sends the same request again, as a client that never saw the answer would.
func (s *systemRun) replayIdempotent(ctx context.Context) (string, error) {
	if s.order == nil {
		return "", blocked("an accepted order")
	}
	again, err := placeOrder(ctx, s.cfg.orderAPI, s.key)
	if err != nil {
		return "", err
	}
	if again.OrderID != s.order.OrderID {
		return "", fmt.Errorf("the replay got order %s, the first request order %s", again.OrderID, s.order.OrderID)
	}
	return "order " + again.OrderID + " again", nil
}

// invalidRejected sends an order of an unknown SKU: only the validator knows the catalog, so
// the 422 also shows that order-api asked it.
func (s *systemRun) invalidRejected(ctx context.Context) (string, error) {
	bad := orderRequest{CustomerID: "selfcheck", Items: []orderItem{{SKU: unknownSKU, Quantity: 1}}}
	a, err := postOrder(ctx, s.cfg.orderAPI, bad, "")
	if err != nil {
		return "", err
	}
	if a.status == http.StatusServiceUnavailable {
		return "", withHint(fmt.Errorf("503: %s", short(a.body)),
			"order-api asks the validator about every order and answers 503 when it cannot: "+hintValidator)
	}
	if a.status != http.StatusUnprocessableEntity {
		return "", fmt.Errorf("status %d, want 422: %s", a.status, short(a.body))
	}
	if a.contentType != "application/problem+json" {
		return "", fmt.Errorf("Content-Type %q, want application/problem+json", a.contentType)
	}
	var p problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		return "", fmt.Errorf("the body is not a problem: %w", err)
	}
	if p.Status != http.StatusUnprocessableEntity || p.Title == "" || p.Type == "" {
		return "", fmt.Errorf("the problem lacks type, title or status 422: %s", short(a.body))
	}
	i := slices.IndexFunc(p.Violations, func(v violation) bool { return v.Field == "items[0].sku" })
	if i < 0 {
		return "", fmt.Errorf("no violation names items[0].sku: %s", short(a.body))
	}
	return fmt.Sprintf("%s: %s", p.Violations[i].Field, p.Violations[i].Reason), nil
}

// reachesAnalytics waits until analytics counts more orders than before the order was placed.
func (s *systemRun) reachesAnalytics(ctx context.Context) (string, error) {
	if s.order == nil {
		return "", blocked("an accepted order")
	}
	if s.beforeError != nil {
		return "", fmt.Errorf("could not read the stats before placing the order: %w", s.beforeError)
	}
	after, err := waitForCount(ctx, s.cfg.stats, s.before.Orders)
	if err != nil {
		return "", fmt.Errorf("order %s was not counted: %w", s.order.OrderID, err)
	}
	return fmt.Sprintf("orders %d -> %d", s.before.Orders, after.Orders), nil
}

// reachesNotifier waits until the notifier reports the order's notification.
func (s *systemRun) reachesNotifier(ctx context.Context) (string, error) {
	if s.order == nil {
		return "", blocked("an accepted order")
	}
	n, err := waitForNotification(ctx, s.cfg.notifier, s.order.OrderID)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("notified at %s, in %d attempt(s)", n.SentAt.Format("15:04:05.000Z07:00"), n.Attempts), nil
}
