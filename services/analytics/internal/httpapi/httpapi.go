// Package httpapi is the analytics HTTP API: GET /v1/stats answers with the totals of the
// distinct orders in the partitions this replica owns, or 503 while those totals are not the
// right answer yet.
package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/analytics/internal/stats"
)

// Module serves the stats API on the platform's HTTP server.
var Module = fx.Module("httpapi",
	fx.Provide(httpserver.AsRoutes(NewHandler)),
)

// Handler serves GET /v1/stats.
type Handler struct {
	stats *stats.Stats
}

// NewHandler returns a handler answering from s.
func NewHandler(s *stats.Stats) *Handler { return &Handler{stats: s} }

// Register adds GET /v1/stats to e.
func (h *Handler) Register(e *echo.Echo) {
	e.GET("/v1/stats", h.getStats)
}

// Response is the body of GET /v1/stats. Every field is always present: by_sku is {} and
// partitions is [] when there is nothing to report, never null.
type Response struct {
	Orders       int64                  `json:"orders"`
	RevenueCents int64                  `json:"revenue_cents"`
	BySKU        map[string]SKUResponse `json:"by_sku"`
	Partitions   []int32                `json:"partitions"`
	UpdatedAt    string                 `json:"updated_at"` // RFC 3339, UTC
}

// SKUResponse is what was sold of one SKU.
type SKUResponse struct {
	Quantity     int64 `json:"quantity"`
	RevenueCents int64 `json:"revenue_cents"`
}

// RetryAfter is what a 503 asks clients to wait: a rebuild of a few hundred thousand records, or
// a group join, takes seconds.
const RetryAfter = 2 * time.Second

func (h *Handler) getStats(c echo.Context) error {
	snap := h.stats.Snapshot()
	// The totals change with every order: a cached copy is a wrong answer.
	c.Response().Header().Set("Cache-Control", "no-store")
	if err := snap.Complete(); err != nil {
		return unavailable(c, err)
	}
	body := Response{
		Orders:       snap.Orders,
		RevenueCents: snap.RevenueCents,
		BySKU:        make(map[string]SKUResponse, len(snap.BySKU)),
		Partitions:   append([]int32{}, snap.Partitions...),
		UpdatedAt:    snap.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
	for sku, t := range snap.BySKU {
		body.BySKU[sku] = SKUResponse{Quantity: t.Quantity, RevenueCents: t.RevenueCents}
	}
	return c.JSON(http.StatusOK, body)
}

// Problem types of GET /v1/stats, relative references resolved against the request's URL.
const (
	// ProblemJoining: the replica is not in its consumer group yet, so it does not know which
	// partitions are its own. After a crash that lasts until the group gives up on the dead
	// member (KAFKA_SESSION_TIMEOUT).
	ProblemJoining = "/problems/joining-group"
	// ProblemRebuilding: partitions the replica owns are being replayed from the beginning of
	// the log; their totals are partial.
	ProblemRebuilding = "/problems/rebuilding"
)

// UnavailableProblem is the body of a 503: an RFC 9457 problem with the partitions still being
// rebuilt as an extension member.
type UnavailableProblem struct {
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Status     int     `json:"status"`
	Detail     string  `json:"detail"`
	Rebuilding []int32 `json:"rebuilding"`
}

// unavailable answers 503 rather than totals that are not the right answer yet: partial numbers
// served as a 200 look exactly like right ones.
func unavailable(c echo.Context, err error) error {
	p := UnavailableProblem{
		Type: ProblemRebuilding, Title: "Rebuilding the stats from the log",
		Status: http.StatusServiceUnavailable, Detail: err.Error(), Rebuilding: []int32{},
	}
	var inc *stats.IncompleteError
	if errors.As(err, &inc) {
		p.Rebuilding = append(p.Rebuilding, inc.Rebuilding...)
		switch {
		case inc.Leaving:
			p.Type, p.Title = ProblemJoining, "Leaving the consumer group"
		case inc.Joining:
			p.Type, p.Title = ProblemJoining, "Joining the consumer group"
		}
	}
	body, merr := json.Marshal(p)
	if merr != nil {
		return merr
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	return c.Blob(http.StatusServiceUnavailable, httpserver.ProblemContentType, body)
}
