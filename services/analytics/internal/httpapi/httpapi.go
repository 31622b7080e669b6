// Package httpapi is the analytics HTTP API: GET /v1/stats answers with the totals of the
// distinct orders in the partitions this replica owns.
package httpapi

import (
	"net/http"
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

func (h *Handler) getStats(c echo.Context) error {
	snap := h.stats.Snapshot()
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
	// The totals change with every order: a cached copy is a wrong answer.
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, body)
}
