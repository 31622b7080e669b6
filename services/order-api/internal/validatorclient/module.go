package validatorclient

import (
	"context"

	"go.uber.org/fx"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/services/order-api/internal/config"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// Module provides the *Client as the orders.Validator, closes it on stop, and makes the
// validator's health a readiness check: an order-api that cannot reach its validator answers
// every order with 503, so it should not receive traffic.
var Module = fx.Module("validatorclient",
	fx.Provide(
		newClient,
		func(c *Client) orders.Validator { return c },
		admin.AsCheck(func(c *Client) admin.Check {
			return admin.Check{Name: "validator", Check: c.Ready}
		}),
	),
)

func newClient(lc fx.Lifecycle, cfg config.Config) (*Client, error) {
	c, err := New(cfg.ValidatorAddr, cfg.ValidatorTimeout)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(func(context.Context) error { return c.Close() }))
	return c, nil
}
