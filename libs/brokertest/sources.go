package brokertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// errNoBroker is the cause of a test failure for want of a broker.
var errNoBroker = errors.New("no broker")

// A broker is a kind of broker tests ask for, with what each source needs to provide it.
type broker struct {
	name   string                 // as messages call it
	envVar string                 // its address, as `make brokers` and CI export it
	image  func() (string, error) // what runs when Docker is the source
	// container starts the broker's container on first use and returns its address; later calls
	// return the same result, so a test binary runs one container per broker at most.
	container func() (string, error)
}

func newBroker(name, envVar string, image func() (string, error), start func() (string, error)) *broker {
	return &broker{name: name, envVar: envVar, image: image, container: sync.OnceValues(start)}
}

// imageName is b's image for messages, or what stood in the way of reading it.
func (b *broker) imageName() string {
	image, err := b.image()
	if err != nil {
		return fmt.Sprintf("(its image is unknown: %v)", err)
	}
	return image
}

var (
	kafka    = newBroker("Kafka", "KAFKA_BOOTSTRAP_SERVERS", kafkaImage, startKafka)
	rabbitmq = newBroker("RabbitMQ", "RABBITMQ_URL", rabbitMQImage, startRabbitMQ)
	postgres = newBroker("PostgreSQL", "POSTGRES_URL", postgresImage, startPostgres)
)

// sources decides where a broker comes from. Its fields are what the decision depends on, so
// that unit tests can stand in for the environment and for Docker.
type sources struct {
	getenv func(string) string
	// docker says why no Docker engine can run containers, or nil when one can.
	docker func() error
	// short reports whether the tests run with -short (unit tests only).
	short func() bool
}

// local is this machine: its environment and its Docker engine, asked once per test binary.
var local = sources{getenv: os.Getenv, docker: sync.OnceValue(dockerEngine), short: testing.Short}

// address returns where b is: the environment first, then a container, else errNoBroker.
func (s sources) address(b *broker) (string, error) {
	if addr := s.getenv(b.envVar); addr != "" {
		return addr, nil
	}
	if err := s.docker(); err != nil {
		return "", s.noBroker(b, err)
	}
	addr, err := b.container()
	if err != nil {
		return "", fmt.Errorf("start the %s container %s: %w", b.name, b.imageName(), err)
	}
	return addr, nil
}

func (s sources) noBroker(b *broker, dockerErr error) error {
	err := fmt.Errorf("%w for %s: %s is not set and no Docker engine answers (%v).\n"+
		"Either start real brokers on this machine and export their addresses:\n"+
		"\tmake brokers && eval \"$(scripts/brokers env)\"\n"+
		"or start Docker, and the tests run %s with testcontainers",
		errNoBroker, b.name, b.envVar, dockerErr, b.imageName())
	if s.getenv("CI") == "true" {
		err = fmt.Errorf("%w\n(CI=true: the CI script must start the brokers before the tests)", err)
	}
	return err
}

// dockerEngine says why testcontainers cannot reach a Docker engine, or nil when it can.
func dockerEngine() (err error) {
	// testcontainers panics when it finds no Docker host at all; here that is a plain answer.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	return provider.Health(ctx) // closes the provider
}
