package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/httpapi"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// at is the clock of the tests, in a zone other than UTC to show that the API answers in UTC.
var at = time.Date(2025, 3, 1, 13, 4, 5, 0, time.FixedZone("CET", 3600))

// get serves GET path from the platform's echo with the stats API registered.
func get(t *testing.T, s *stats.Stats, path string) *httptest.ResponseRecorder {
	t.Helper()
	e, err := httpserver.New(zaptest.NewLogger(t), prometheus.NewRegistry())
	require.NoError(t, err)
	httpapi.NewHandler(s).Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func line(sku string, quantity, totalCents int64) stats.Line {
	return stats.Line{SKU: sku, Quantity: quantity, TotalCents: totalCents}
}

func TestGetStats(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *stats.Stats)
		body  string // exactly, byte for byte after trimming the final newline
	}{
		{
			name:  "in the group, nothing owned (more replicas than partitions): zeros, an empty object and an empty list",
			setup: func(_ *testing.T, s *stats.Stats) { s.Join() },
			body:  `{"orders":0,"revenue_cents":0,"by_sku":{},"partitions":[],"updated_at":"2025-03-01T12:04:05Z"}`,
		},
		{
			name:  "owned partitions without orders",
			setup: func(_ *testing.T, s *stats.Stats) { owned(s, 2, 0) },
			body:  `{"orders":0,"revenue_cents":0,"by_sku":{},"partitions":[0,2],"updated_at":"2025-03-01T12:04:05Z"}`,
		},
		{
			name: "distinct orders over the partitions owned, integers as numbers",
			setup: func(t *testing.T, s *stats.Stats) {
				owned(s, 0, 2)
				for _, a := range []struct {
					partition int32
					order     stats.Order
				}{
					{0, stats.Order{ID: "o-1", TotalCents: 3998, Lines: []stats.Line{line("BOOK-001", 2, 3998)}}},
					{2, stats.Order{ID: "o-2", TotalCents: 2898, Lines: []stats.Line{line("MUG-002", 1, 899), line("BOOK-001", 1, 1999)}}},
					{2, stats.Order{ID: "o-2", TotalCents: 2898, Lines: []stats.Line{line("MUG-002", 1, 899), line("BOOK-001", 1, 1999)}}},
					{0, stats.Order{ID: "o-3", TotalCents: 9_000_000_000_000, Lines: []stats.Line{line("TV-004", 1000, 9_000_000_000_000)}}},
				} {
					_, err := s.Add(a.partition, a.order)
					require.NoError(t, err)
				}
			},
			body: `{"orders":3,"revenue_cents":9000000006896,` +
				`"by_sku":{"BOOK-001":{"quantity":3,"revenue_cents":5997},"MUG-002":{"quantity":1,"revenue_cents":899},` +
				`"TV-004":{"quantity":1000,"revenue_cents":9000000000000}},` +
				`"partitions":[0,2],"updated_at":"2025-03-01T12:04:05Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stats.New(func() time.Time { return at })
			tt.setup(t, s)

			rec := get(t, s, "/v1/stats")

			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			assert.Equal(t, tt.body, trimNewline(rec.Body.String()))
		})
	}
}

// owned makes s a group member that owns partitions, rebuilt (replayed up to the end of the log).
func owned(s *stats.Stats, partitions ...int32) {
	s.Join()
	for _, p := range partitions {
		s.Reset(p)
		s.Rebuilt(p)
	}
}

func TestGetStats_UnavailableUntilTheTotalsAreRight(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *stats.Stats)
		body  string
	}{
		{
			name:  "not in the group yet: which partitions are its own is unknown",
			setup: func(*stats.Stats) {},
			body: `{"type":"/problems/joining-group","title":"Joining the consumer group","status":503,` +
				`"detail":"joining the consumer group: no partition assignment yet","rebuilding":[]}`,
		},
		{
			name: "partitions still being replayed",
			setup: func(s *stats.Stats) {
				owned(s, 1)
				s.Reset(2)
				s.Reset(0)
			},
			body: `{"type":"/problems/rebuilding","title":"Rebuilding the stats from the log","status":503,` +
				`"detail":"rebuilding partitions [0 2] from the beginning of the log","rebuilding":[0,2]}`,
		},
		{
			name: "out of the group again after losing its partitions",
			setup: func(s *stats.Stats) {
				owned(s, 0)
				s.Drop(0)
				s.Leave()
			},
			body: `{"type":"/problems/joining-group","title":"Joining the consumer group","status":503,` +
				`"detail":"joining the consumer group: no partition assignment yet","rebuilding":[]}`,
		},
		{
			name: "stopping: giving its partitions back",
			setup: func(s *stats.Stats) {
				owned(s, 0, 1)
				s.Stop()
				s.Drop(0)
			},
			body: `{"type":"/problems/joining-group","title":"Leaving the consumer group","status":503,` +
				`"detail":"leaving the consumer group: the service is stopping","rebuilding":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stats.New(func() time.Time { return at })
			tt.setup(s)

			rec := get(t, s, "/v1/stats")

			require.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, httpserver.ProblemContentType, rec.Header().Get("Content-Type"))
			assert.Equal(t, "2", rec.Header().Get("Retry-After"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			assert.Equal(t, tt.body, trimNewline(rec.Body.String()))
		})
	}
}

func TestGetStats_UpdatedAtKeepsSubsecondPrecision(t *testing.T) {
	s := stats.New(func() time.Time { return at.Add(250 * time.Millisecond) })
	s.Join()
	rec := get(t, s, "/v1/stats")
	assert.Contains(t, rec.Body.String(), `"updated_at":"2025-03-01T12:04:05.25Z"`)
}

func TestGetStats_OtherMethodsAreProblems(t *testing.T) {
	e, err := httpserver.New(zaptest.NewLogger(t), prometheus.NewRegistry())
	require.NoError(t, err)
	httpapi.NewHandler(stats.New(time.Now)).Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/stats", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, httpserver.ProblemContentType, rec.Header().Get("Content-Type"))
}

func trimNewline(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}
