package catalog

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/services/validator/internal/config"
)

// Module provides the *Catalog named by CATALOG_PATH (the built-in one by default) and a "catalog"
// readiness check. A catalog that does not load stops start-up.
var Module = fx.Module("catalog",
	fx.Provide(
		load,
		admin.AsCheck(readiness),
	),
)

func load(cfg config.Config, log *zap.Logger) (*Catalog, error) {
	c, err := Load(cfg.CatalogPath)
	if err != nil {
		return nil, fmt.Errorf("CATALOG_PATH=%q: %w", cfg.CatalogPath, err)
	}
	source := cfg.CatalogPath
	if source == "" {
		source = "built-in"
	}
	log.Info("catalog loaded", zap.String("source", source), zap.Int("products", c.Len()), zap.String("currency", c.Currency()))
	return c, nil
}

func readiness(c *Catalog) admin.Check {
	return admin.Check{Name: "catalog", Check: func(context.Context) error {
		if c.Len() == 0 {
			return errors.New("no products loaded")
		}
		return nil
	}}
}
