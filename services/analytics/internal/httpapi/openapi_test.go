package httpapi_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/libs/platform/openapitest"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// documentPath is the service's OpenAPI document, relative to this package.
const documentPath = "../../openapi.yaml"

// serve answers req with the platform's echo, as in production, with the stats API registered.
func serve(t *testing.T, s *stats.Stats, req *http.Request) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	newEcho(t, s).ServeHTTP(rec, req)
	return rec.Result()
}

func newEcho(t *testing.T, s *stats.Stats) *echo.Echo {
	t.Helper()
	e, err := httpserver.New(zaptest.NewLogger(t), prometheus.NewRegistry())
	require.NoError(t, err)
	httpapi.NewHandler(s).Register(e)
	return e
}

// TestOpenAPIDocumentMatchesTheHandler keeps openapi.yaml true: every response the handler gives
// conforms to the document (status declared, media type, schema — which forbids undeclared
// members — and required headers), every status the document declares is one a scenario
// produced, and the document describes exactly the routes the handler registers.
func TestOpenAPIDocumentMatchesTheHandler(t *testing.T) {
	doc := openapitest.Load(t, documentPath, config.WithFormatAssertions())
	require.Empty(t, doc.Defaults, "explicit statuses only, no default response")
	declared := doc.Statuses
	given := map[string][]int{}

	scenarios := []struct {
		name  string
		clock time.Time
		setup func(t *testing.T, s *stats.Stats)
	}{
		{name: "not in the group yet", clock: at, setup: func(*testing.T, *stats.Stats) {}},
		{name: "rebuilding", clock: at, setup: func(_ *testing.T, s *stats.Stats) { owned(s, 1); s.Reset(0) }},
		{name: "in the group, nothing owned", clock: at, setup: func(_ *testing.T, s *stats.Stats) { s.Join() }},
		{name: "partitions without orders", clock: at, setup: func(_ *testing.T, s *stats.Stats) { owned(s, 2, 0) }},
		{
			name:  "orders, a duplicate and a huge total, updated_at with a fraction of a second",
			clock: at.Add(250 * time.Millisecond),
			setup: func(t *testing.T, s *stats.Stats) {
				owned(s, 0, 1)
				for _, a := range []struct {
					partition int32
					order     stats.Order
				}{
					{0, stats.Order{ID: "o-1", TotalCents: 2598, Lines: []stats.Line{line("BOOK-001", 2, 2598)}}},
					{1, stats.Order{ID: "o-2", TotalCents: 2198, Lines: []stats.Line{line("OFFC-002", 1, 899), line("BOOK-001", 1, 1299)}}},
					{1, stats.Order{ID: "o-2", TotalCents: 2198, Lines: []stats.Line{line("OFFC-002", 1, 899), line("BOOK-001", 1, 1299)}}},
					{0, stats.Order{ID: "o-3", TotalCents: 9_000_000_000_000, Lines: []stats.Line{line("TV-004", 1000, 9_000_000_000_000)}}},
				} {
					_, err := s.Add(a.partition, a.order)
					require.NoError(t, err)
				}
			},
		},
		{
			name:  "a partition dropped again",
			clock: at,
			setup: func(t *testing.T, s *stats.Stats) {
				owned(s, 0)
				_, err := s.Add(0, stats.Order{ID: "o-1", TotalCents: 1299, Lines: []stats.Line{line("BOOK-001", 1, 1299)}})
				require.NoError(t, err)
				s.Drop(0)
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := stats.New(func() time.Time { return sc.clock })
			sc.setup(t, s)
			request := func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/stats", nil) }

			resp := serve(t, s, request())
			defer resp.Body.Close()

			ok, errs := doc.ValidateHttpResponse(request(), resp)
			assert.True(t, ok, "the %d response conforms to the document:\n%s", resp.StatusCode, openapitest.Describe(errs))
			given["GET /v1/stats"] = append(given["GET /v1/stats"], resp.StatusCode)
		})
	}

	for op, statuses := range declared {
		for _, status := range statuses {
			assert.Contains(t, given[op], status, "the document declares %s → %d, which no scenario produced", op, status)
		}
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(declared)), routes(newEcho(t, stats.New(time.Now))),
		"the document describes exactly the routes the handler registers")
}

// routes returns "METHOD /path" of every route registered on e, in OpenAPI's path syntax.
func routes(e *echo.Echo) []string {
	param := regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	var out []string
	for _, r := range e.Routes() {
		out = append(out, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	return out
}

// TestOpenAPIDocumentRejectsWhatTheContractForbids shows that the document is strict enough to
// catch a handler that drifts: each response here breaks the contract in one way, and the
// validator must refuse it. Without this, a document of `{}` schemas would pass the test above.
func TestOpenAPIDocumentRejectsWhatTheContractForbids(t *testing.T) {
	doc := openapitest.Load(t, documentPath, config.WithFormatAssertions())
	const valid = `{"orders":1,"revenue_cents":1299,"by_sku":{"BOOK-001":{"quantity":1,"revenue_cents":1299}},"partitions":[0],"updated_at":"2025-03-01T12:04:05Z"}`
	request := func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/stats", nil) }

	baseline := response(http.StatusOK, "application/json", "no-store", valid)
	defer baseline.Body.Close()
	ok, errs := doc.ValidateHttpResponse(request(), baseline)
	require.True(t, ok, "the baseline conforms:\n%s", openapitest.Describe(errs))

	for _, tc := range []struct {
		name                      string
		status                    int
		contentType, cacheControl string
		body                      string
	}{
		{"partitions null rather than []", 200, "application/json", "no-store", strings.Replace(valid, `[0]`, `null`, 1)},
		{"by_sku null rather than {}", 200, "application/json", "no-store", strings.Replace(valid, `{"BOOK-001":{"quantity":1,"revenue_cents":1299}}`, `null`, 1)},
		{"updated_at not in UTC", 200, "application/json", "no-store", strings.Replace(valid, `12:04:05Z`, `13:04:05+01:00`, 1)},
		{"updated_at not a date-time", 200, "application/json", "no-store", strings.Replace(valid, `2025-03-01T12:04:05Z`, `2025-03-01T25:04:05Z`, 1)},
		{"updated_at missing", 200, "application/json", "no-store", strings.Replace(valid, `,"updated_at":"2025-03-01T12:04:05Z"`, ``, 1)},
		{"an undeclared member", 200, "application/json", "no-store", strings.Replace(valid, `{"orders":1`, `{"orders":1,"replica":"a"`, 1)},
		{"an amount as a string", 200, "application/json", "no-store", strings.Replace(valid, `"revenue_cents":1299,"by_sku"`, `"revenue_cents":"1299","by_sku"`, 1)},
		{"a SKU sold zero times", 200, "application/json", "no-store", strings.Replace(valid, `"quantity":1`, `"quantity":0`, 1)},
		{"a negative partition", 200, "application/json", "no-store", strings.Replace(valid, `[0]`, `[-1]`, 1)},
		{"cacheable", 200, "application/json", "max-age=60", valid},
		{"no Cache-Control", 200, "application/json", "", valid},
		{"not JSON", 200, "text/plain", "no-store", valid},
		{"an undeclared status", 500, "application/problem+json", "no-store", `{"type":"about:blank","title":"Internal Server Error","status":500}`},
		{"a 503 of an undeclared problem type", 503, "application/problem+json", "no-store",
			`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"x","rebuilding":[]}`},
		{"a 503 as JSON rather than a problem", 503, "application/json", "no-store",
			`{"type":"/problems/rebuilding","title":"Rebuilding the stats from the log","status":503,"detail":"x","rebuilding":[0]}`},
		{"a 503 without rebuilding", 503, "application/problem+json", "no-store",
			`{"type":"/problems/rebuilding","title":"Rebuilding the stats from the log","status":503,"detail":"x"}`},
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
	if status == http.StatusServiceUnavailable {
		rec.Header().Set("Retry-After", "2")
	}
	rec.WriteHeader(status)
	_, _ = rec.WriteString(body)
	return rec.Result()
}
