// Package logging is a fixture: a library config struct that services embed.
package logging

// Config is embedded by the fixture service config.
type Config struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info"`
	Format string `env:"LOG_FORMAT"`
}
