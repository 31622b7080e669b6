// Package config is a fixture shaped like a service's internal/config: it exercises
// embedded structs, nested structs with prefixes, pointers, defaults and required keys.
package config

import (
	"net/url"
	"time"

	"example.com/configmod/logging"
)

// Config is what the fixture service reads from its environment.
type Config struct {
	HTTPAddr string        `env:"HTTP_ADDR" envDefault:":8080"`
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"5s"`
	Upstream url.URL       `env:"UPSTREAM_URL"`
	Database Database      `envPrefix:"DB_"`
	Auth     *Credentials  `envPrefix:"APP_"`
	Skipped  string        `env:"-"`
	logging.Config

	internal string `env:"NOT_READ"`
}

// Database is a nested struct read under the DB_ prefix.
type Database struct {
	URL  string `env:"URL,required"`
	Pool int    `env:"POOL" envDefault:"4"`
}

// Credentials is reached through a pointer.
type Credentials struct {
	Token string `env:"TOKEN,notEmpty"`
}

var _ = Config{}.internal
