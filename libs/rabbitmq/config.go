package rabbitmq

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker of `make brokers` (scripts/brokers) with its administrator, guest,
// which RabbitMQ lets in from the loopback interface only.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// Config is the broker configuration a service embeds in its own config. The env tags follow
// github.com/caarlos0/env: the service parses its config once and calls Validate.
type Config struct {
	// URL is the AMQP URI, credentials included (percent-encode reserved characters). Several
	// URIs, separated by commas, name the nodes of one cluster: the connection dials them in
	// turn until one answers, and after losing a node it tries the others first. A cluster
	// behind one address (a Kubernetes Service) needs only that one.
	URL string `env:"RABBITMQ_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	// URLFile names a file that holds the AMQP URI instead of URL: the common *_FILE
	// convention, for a Kubernetes Secret mounted as a file, so that the password is in no
	// environment variable (which `kubectl describe`, /proc/<pid>/environ and crash reports
	// show). A regular file: Validate and each NewConnection read it (white space trimmed), so
	// a pipe would be empty the second time. Setting it together with a RABBITMQ_URL other than
	// the default is an error: one of them would be ignored.
	URLFile string `env:"RABBITMQ_URL_FILE"`
	// ConnectionName is shown for this client in the management UI and `rabbitmqctl
	// list_connections`; services set it to their own name.
	ConnectionName string `env:"RABBITMQ_CONNECTION_NAME"`
	// DialTimeout bounds one connection attempt: TCP connect, AMQP handshake and the
	// re-declaration of the topology.
	DialTimeout time.Duration `env:"RABBITMQ_DIAL_TIMEOUT" envDefault:"5s"`
	// Heartbeat is the AMQP heartbeat interval proposed to the broker; a peer that stays silent
	// for about three intervals is considered gone.
	Heartbeat time.Duration `env:"RABBITMQ_HEARTBEAT" envDefault:"10s"`
	// OperationTimeout bounds every synchronous AMQP method (channel open, declare, qos,
	// consume, cancel). amqp091-go takes no context for those, so a broker that does not answer
	// in time gets its connection dropped and re-dialled.
	OperationTimeout time.Duration `env:"RABBITMQ_OPERATION_TIMEOUT" envDefault:"5s"`
	// ReconnectMin is the first delay before re-dialling a lost connection; it grows
	// exponentially (with jitter) up to ReconnectMax.
	ReconnectMin time.Duration `env:"RABBITMQ_RECONNECT_MIN" envDefault:"200ms"`
	// ReconnectMax caps the delay between two connection attempts.
	ReconnectMax time.Duration `env:"RABBITMQ_RECONNECT_MAX" envDefault:"5s"`
	// PublishTimeout bounds a Publish whose context has no deadline of its own.
	PublishTimeout time.Duration `env:"RABBITMQ_PUBLISH_TIMEOUT" envDefault:"5s"`
	// PublisherChannels is the size of the publisher's pool of confirm-mode channels, i.e. how
	// many publishes can wait for their confirm at the same time.
	PublisherChannels int `env:"RABBITMQ_PUBLISHER_CHANNELS" envDefault:"32"`
	// Prefetch is the default number of unacknowledged deliveries a consumer may hold.
	Prefetch int `env:"RABBITMQ_PREFETCH" envDefault:"16"`
}

// Validate reports the first invalid setting, naming its environment variable. With URLFile
// set, it reads the file to check the URI in it.
func (c Config) Validate() error {
	_, err := c.resolved()
	return err
}

// resolved is what NewConnection connects with: c validated, its URL read from URLFile when
// that is set.
func (c Config) resolved() (Config, error) {
	c, err := c.resolve()
	if err != nil {
		return c, err
	}
	return c, c.validateRest()
}

// resolve returns c with URL taken from URLFile when that is set, and checks the URL. Errors
// never contain the URL or the file's content: both hold a password.
func (c Config) resolve() (Config, error) {
	name := "RABBITMQ_URL"
	if c.URLFile != "" {
		if c.URL != "" && c.URL != DefaultURL {
			return c, errors.New("RABBITMQ_URL, RABBITMQ_URL_FILE: set one of them, not both")
		}
		name = "RABBITMQ_URL_FILE"
		b, err := os.ReadFile(c.URLFile)
		if err != nil {
			// The *fs.PathError names the file, not its content.
			return c, fmt.Errorf("%s: %w", name, err)
		}
		c.URL = strings.TrimSpace(string(b))
		if c.URL == "" {
			return c, fmt.Errorf("%s: %s is empty", name, c.URLFile)
		}
	}
	if c.URL == "" {
		return c, fmt.Errorf("%s: must not be empty", name)
	}
	uris := c.URIs()
	for i, uri := range uris {
		where := ""
		if len(uris) > 1 {
			where = fmt.Sprintf(" (URI %d of %d)", i+1, len(uris))
		}
		if uri == "" {
			return c, fmt.Errorf("%s: empty AMQP URI%s", name, where)
		}
		if _, err := amqp.ParseURI(uri); err != nil {
			// A *url.Error repeats the URL, password included: keep only its cause.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err
			}
			return c, fmt.Errorf("%s: invalid AMQP URI%s: %w", name, where, err)
		}
	}
	return c, nil
}

// URIs returns the AMQP URIs that URL lists, white space around each trimmed.
func (c Config) URIs() []string {
	uris := strings.Split(c.URL, ",")
	for i, uri := range uris {
		uris[i] = strings.TrimSpace(uri)
	}
	return uris
}

// validateRest checks every setting but the URL.
func (c Config) validateRest() error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"RABBITMQ_DIAL_TIMEOUT", c.DialTimeout},
		{"RABBITMQ_HEARTBEAT", c.Heartbeat},
		{"RABBITMQ_OPERATION_TIMEOUT", c.OperationTimeout},
		{"RABBITMQ_RECONNECT_MIN", c.ReconnectMin},
		{"RABBITMQ_RECONNECT_MAX", c.ReconnectMax},
		{"RABBITMQ_PUBLISH_TIMEOUT", c.PublishTimeout},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", d.name, d.value)
		}
	}
	if c.Heartbeat < time.Second {
		return fmt.Errorf("RABBITMQ_HEARTBEAT: AMQP counts heartbeats in whole seconds, got %s", c.Heartbeat)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return fmt.Errorf("RABBITMQ_RECONNECT_MAX: must not be below RABBITMQ_RECONNECT_MIN (%s), got %s",
			c.ReconnectMin, c.ReconnectMax)
	}
	if c.PublisherChannels < 1 {
		return fmt.Errorf("RABBITMQ_PUBLISHER_CHANNELS: must be at least 1, got %d", c.PublisherChannels)
	}
	if c.Prefetch < 1 {
		return fmt.Errorf("RABBITMQ_PREFETCH: must be at least 1, got %d", c.Prefetch)
	}
	return nil
}

// brokerAddress names the broker in logs and errors without the credentials.
func brokerAddress(rawURL string) string {
	u, err := amqp.ParseURI(rawURL)
	if err != nil {
		return "invalid URI"
	}
	vhost := u.Vhost
	if vhost != "/" {
		vhost = "/" + vhost
	}
	return fmt.Sprintf("%s://%s:%d%s", u.Scheme, u.Host, u.Port, vhost)
}
