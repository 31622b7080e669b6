// Package config is the validator's configuration: the platform's shared settings plus its own,
// read once from the environment at start-up.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// MaxDelay bounds VALIDATOR_DELAY. The delay exists to show what a client's deadline does; a
// longer one would only hold connections open and outlast any sensible deadline anyway.
const MaxDelay = time.Minute

// Config is the validator's configuration.
type Config struct {
	config.Base

	// GRPCAddr is where the OrderValidation API, health and reflection are served.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:":50051"`
	// CatalogPath is a JSON catalog file replacing the built-in catalog; empty keeps the built-in.
	CatalogPath string `env:"CATALOG_PATH"`
	// Delay is waited before every answer (each ValidateOrder, each ListProducts message), so
	// learners can watch a client's deadline expire. Zero in production.
	Delay time.Duration `env:"VALIDATOR_DELAY" envDefault:"0s"`
}

// Validate checks what the env tags cannot; every error names its variable.
func (c Config) Validate() error {
	var errs []error
	if err := config.CheckAddr("GRPC_ADDR", c.GRPCAddr); err != nil {
		errs = append(errs, err)
	}
	if c.Delay < 0 || c.Delay > MaxDelay {
		errs = append(errs, &config.VarError{Var: "VALIDATOR_DELAY", Err: fmt.Errorf("%s is outside [0s, %s]", c.Delay, MaxDelay)})
	}
	return errors.Join(errs...)
}
