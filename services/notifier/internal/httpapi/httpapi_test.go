package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/notifier/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

func TestGetNotification(t *testing.T) {
	store, err := notify.NewStore(2)
	require.NoError(t, err)
	sentAt := time.Date(2025, 3, 1, 12, 30, 5, 123_000_000, time.UTC)
	// ord_old is notified first, then two more: the store of two forgets it.
	for _, id := range []string{"ord_old", "ord_7f3a", "ord_new"} {
		require.NoError(t, store.Add(notify.Notification{OrderID: id, CustomerID: "c-42", Attempts: 2, SentAt: sentAt}))
	}
	route := httpapi.NewRoute(store)
	mux := http.NewServeMux()
	mux.Handle(route.Pattern, route.Handler)

	tests := []struct {
		name            string
		path            string
		wantStatus      int
		wantContentType string
		wantBody        string
	}{
		{
			name:            "sent: the notification",
			path:            "/v1/notifications/ord_7f3a",
			wantStatus:      http.StatusOK,
			wantContentType: "application/json",
			wantBody:        `{"order_id":"ord_7f3a","customer_id":"c-42","attempts":2,"sent_at":"2025-03-01T12:30:05.123Z"}`,
		},
		{
			name:            "not sent: 404 problem",
			path:            "/v1/notifications/ord_unknown",
			wantStatus:      http.StatusNotFound,
			wantContentType: "application/problem+json",
			wantBody: `{"type":"about:blank","title":"Not Found","status":404,
				"detail":"order \"ord_unknown\" is not among the last 2 notifications this notifier remembers: not notified yet, or notified before them"}`,
		},
		{
			name:            "notified before the last ones remembered: 404 problem as well",
			path:            "/v1/notifications/ord_old",
			wantStatus:      http.StatusNotFound,
			wantContentType: "application/problem+json",
			wantBody: `{"type":"about:blank","title":"Not Found","status":404,
				"detail":"order \"ord_old\" is not among the last 2 notifications this notifier remembers: not notified yet, or notified before them"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()

			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))

			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantContentType, rec.Header().Get("Content-Type"))
			assert.JSONEq(t, tt.wantBody, rec.Body.String())
		})
	}
}

func TestGetNotificationSentAtIsRFC3339InUTC(t *testing.T) {
	store, err := notify.NewStore(10)
	require.NoError(t, err)
	cet := time.FixedZone("CET", 3600)
	require.NoError(t, store.Add(notify.Notification{OrderID: "o-1", CustomerID: "c-1", Attempts: 1, SentAt: time.Date(2025, 3, 1, 13, 0, 0, 0, cet)}))
	route := httpapi.NewRoute(store)
	mux := http.NewServeMux()
	mux.Handle(route.Pattern, route.Handler)
	rec := httptest.NewRecorder()

	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/notifications/o-1", nil))

	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "2025-03-01T12:00:00Z", body["sent_at"])
}
