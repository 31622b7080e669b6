// Package httpapi serves the notifier's one query on the admin port: whether, when and after
// how many attempts an order was notified.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// Pattern is the route of a notification, in http.ServeMux syntax.
const Pattern = "GET /v1/notifications/{order_id}"

// Module serves Pattern on the admin port.
var Module = fx.Module("httpapi",
	fx.Provide(admin.AsRoute(NewRoute)),
)

// Notification is the response body of a sent notification.
type Notification struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Attempts   int       `json:"attempts"`
	SentAt     time.Time `json:"sent_at"`
}

// NewRoute answers GET /v1/notifications/{order_id}: 200 with the Notification when the order
// is among the last store.Limit() notified, 404 problem+json otherwise: not notified yet, or
// notified before those (the store keeps no more, so it cannot tell the two apart).
func NewRoute(store *notify.Store) admin.Route {
	return admin.Route{Pattern: Pattern, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orderID := r.PathValue("order_id")
		n, ok := store.Get(orderID)
		if !ok {
			writeJSON(w, httpserver.ProblemContentType, http.StatusNotFound, httpserver.Problem{
				Type:   "about:blank",
				Title:  http.StatusText(http.StatusNotFound),
				Status: http.StatusNotFound,
				Detail: fmt.Sprintf("order %q is not among the last %d notifications this notifier remembers: "+
					"not notified yet, or notified before them", orderID, store.Limit()),
			})
			return
		}
		writeJSON(w, "application/json", http.StatusOK, Notification{
			OrderID:    n.OrderID,
			CustomerID: n.CustomerID,
			Attempts:   n.Attempts,
			SentAt:     n.SentAt.UTC(),
		})
	})}
}

func writeJSON(w http.ResponseWriter, contentType string, status int, body any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status line is out; a client that went away is nothing to act on.
	_ = json.NewEncoder(w).Encode(body)
}
