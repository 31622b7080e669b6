package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// Module adds the Handler's routes to the platform's HTTP server (httpserver.Module).
var Module = fx.Module("httpapi",
	fx.Provide(httpserver.AsRoutes(newHandler)),
)

func newHandler(svc *orders.Service, keys *idempotency.Store, reg prometheus.Registerer, cfg config.Config) (*Handler, error) {
	return NewHandler(svc, keys, reg, Options{RetryAfter: cfg.RetryAfter})
}
