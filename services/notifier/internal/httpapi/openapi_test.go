package httpapi_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi-validator/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/libs/platform/openapitest"
	"github.com/backend-prep/backend-prep/services/notifier/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// documentPath is the service's OpenAPI document, relative to this package.
const documentPath = "../../openapi.yaml"

// adminHandler is the admin server's handler with the notification route, as in production.
func adminHandler(t *testing.T, store *notify.Store) http.Handler {
	t.Helper()
	srv, err := admin.NewServer(zaptest.NewLogger(t), admin.Options{
		Addr:     "127.0.0.1:0",
		Gatherer: prometheus.NewRegistry(),
		Routes:   []admin.Route{httpapi.NewRoute(store)},
	})
	require.NoError(t, err)
	return srv.Handler()
}

// TestOpenAPIDocumentMatchesTheHandler keeps openapi.yaml true: every response the handler gives
// conforms to the document (status declared, media type, schema — which forbids undeclared
// members — and required headers), every status the document declares is one a scenario
// produced, and the document describes exactly the route the service adds to the admin port.
func TestOpenAPIDocumentMatchesTheHandler(t *testing.T) {
	doc := openapitest.Load(t, documentPath, config.WithFormatAssertions())
	require.Empty(t, doc.Defaults, "explicit statuses only, no default response")
	declared := doc.Statuses
	const op = "GET /v1/notifications/{order_id}"
	given := map[string][]int{}

	cet := time.FixedZone("CET", 3600)
	scenarios := []struct {
		name       string
		limit      int
		sent       []notify.Notification
		orderID    string
		wantStatus int
	}{
		{
			name:       "sent at the first attempt",
			limit:      10,
			sent:       []notify.Notification{{OrderID: "6fd14198-8280-5975-b4e4-3cb950292771", CustomerID: "c-42", Attempts: 1, SentAt: time.Date(2025, 3, 1, 12, 0, 5, 0, time.UTC)}},
			orderID:    "6fd14198-8280-5975-b4e4-3cb950292771",
			wantStatus: http.StatusOK,
		},
		{
			name:       "sent after retries, recorded in another zone, with a fraction of a second",
			limit:      10,
			sent:       []notify.Notification{{OrderID: "ord_7f3a", CustomerID: "c_9", Attempts: 5, SentAt: time.Date(2025, 3, 1, 13, 0, 5, 100_000_000, cet)}},
			orderID:    "ord_7f3a",
			wantStatus: http.StatusOK,
		},
		{
			name:       "not sent yet",
			limit:      10,
			orderID:    "6fd14198-8280-5975-b4e4-3cb950292771",
			wantStatus: http.StatusNotFound,
		},
		{
			name:  "forgotten by the bounded store",
			limit: 1,
			sent: []notify.Notification{
				{OrderID: "o-1", CustomerID: "c-1", Attempts: 1, SentAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)},
				{OrderID: "o-2", CustomerID: "c-1", Attempts: 1, SentAt: time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC)},
			},
			orderID:    "o-1",
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "an order_id that needs escaping",
			limit:      10,
			orderID:    `a "quoted" id`,
			wantStatus: http.StatusNotFound,
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			store, err := notify.NewStore(sc.limit)
			require.NoError(t, err)
			for _, n := range sc.sent {
				require.NoError(t, store.Add(n))
			}
			request := func() *http.Request {
				return httptest.NewRequest(http.MethodGet, "/v1/notifications/"+url.PathEscape(sc.orderID), nil)
			}

			rec := httptest.NewRecorder()
			adminHandler(t, store).ServeHTTP(rec, request())
			resp := rec.Result()
			defer resp.Body.Close()

			require.Equal(t, sc.wantStatus, resp.StatusCode)
			ok, errs := doc.ValidateHttpResponse(request(), resp)
			assert.True(t, ok, "the %d response conforms to the document:\n%s", resp.StatusCode, openapitest.Describe(errs))
			given[op] = append(given[op], resp.StatusCode)
		})
	}

	for op, statuses := range declared {
		for _, status := range statuses {
			assert.Contains(t, given[op], status, "the document declares %s → %d, which no scenario produced", op, status)
		}
	}
	assert.Equal(t, []string{httpapi.Pattern}, slices.Collect(maps.Keys(declared)),
		"the document describes exactly the route the notifier adds to the admin port")
}

// TestOpenAPIDocumentRejectsWhatTheContractForbids shows that the document is strict enough to
// catch a handler that drifts: each response here breaks the contract in one way, and the
// validator must refuse it. Without this, a document of `{}` schemas would pass the test above.
func TestOpenAPIDocumentRejectsWhatTheContractForbids(t *testing.T) {
	doc := openapitest.Load(t, documentPath, config.WithFormatAssertions())
	const (
		sent     = `{"order_id":"o-1","customer_id":"c-42","attempts":2,"sent_at":"2025-03-01T12:00:05.1Z"}`
		notFound = `{"type":"about:blank","title":"Not Found","status":404,"detail":"no notification was sent for order \"o-1\""}`
	)
	request := func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/notifications/o-1", nil) }

	sentResp := response(http.StatusOK, "application/json", "no-store", sent)
	defer sentResp.Body.Close()
	notFoundResp := response(http.StatusNotFound, "application/problem+json", "no-store", notFound)
	defer notFoundResp.Body.Close()
	for _, baseline := range []*http.Response{sentResp, notFoundResp} {
		ok, errs := doc.ValidateHttpResponse(request(), baseline)
		require.True(t, ok, "the %d baseline conforms:\n%s", baseline.StatusCode, openapitest.Describe(errs))
	}

	for _, tc := range []struct {
		name                      string
		status                    int
		contentType, cacheControl string
		body                      string
	}{
		{"sent_at not in UTC", 200, "application/json", "no-store", strings.Replace(sent, `12:00:05.1Z`, `13:00:05.1+01:00`, 1)},
		{"sent_at not a date-time", 200, "application/json", "no-store", strings.Replace(sent, `2025-03-01T12`, `2025-13-01T12`, 1)},
		{"no attempt", 200, "application/json", "no-store", strings.Replace(sent, `"attempts":2`, `"attempts":0`, 1)},
		{"customer_id missing", 200, "application/json", "no-store", strings.Replace(sent, `"customer_id":"c-42",`, ``, 1)},
		{"an undeclared member", 200, "application/json", "no-store", strings.Replace(sent, `{"order_id"`, `{"email":"a@b.c","order_id"`, 1)},
		{"cacheable", 200, "application/json", "max-age=60", sent},
		{"no Cache-Control", 200, "application/json", "", sent},
		{"not found as plain JSON", 404, "application/json", "no-store", notFound},
		{"not found as text, as ServeMux writes it", 404, "text/plain; charset=utf-8", "no-store", "404 page not found\n"},
		{"not found without detail", 404, "application/problem+json", "no-store", `{"type":"about:blank","title":"Not Found","status":404}`},
		{"not found with another status in the body", 404, "application/problem+json", "no-store", strings.Replace(notFound, `"status":404`, `"status":400`, 1)},
		{"an undeclared status", 500, "application/problem+json", "no-store", `{"type":"about:blank","title":"Internal Server Error","status":500}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := response(tc.status, tc.contentType, tc.cacheControl, tc.body)
			defer resp.Body.Close()
			ok, _ := doc.ValidateHttpResponse(request(), resp)
			assert.False(t, ok, "the document refuses it")
		})
	}
}

func response(status int, contentType, cacheControl, body string) *http.Response {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", contentType)
	if cacheControl != "" {
		rec.Header().Set("Cache-Control", cacheControl)
	}
	rec.WriteHeader(status)
	_, _ = rec.WriteString(body)
	return rec.Result()
}
