package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	tcrabbitmq "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
	"github.com/testcontainers/testcontainers-go/wait"
)

// startTimeout bounds a container's start, pulling its image included.
const startTimeout = 5 * time.Minute

var (
	startedMu sync.Mutex
	started   []testcontainers.Container
)

func track(c testcontainers.Container) {
	startedMu.Lock()
	defer startedMu.Unlock()
	started = append(started, c)
}

func terminateContainers() error {
	startedMu.Lock()
	defer startedMu.Unlock()
	var errs []error
	for _, c := range started {
		errs = append(errs, testcontainers.TerminateContainer(c))
	}
	started = nil
	return errors.Join(errs...)
}

const (
	kafkaPort = "9092/tcp"
	// kafkaListenersFile is what the Kafka container waits for before it starts the broker: the
	// listeners to advertise, which include the host port Docker maps, known only once it runs.
	kafkaListenersFile = "/tmp/advertised-listeners"
)

// startKafka runs the official image with its default single-node KRaft settings; its
// PLAINTEXT_HOST listener on 9092 is the one for clients outside the container.
func startKafka() (string, error) {
	image, err := kafkaImage()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts(kafkaPort),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NUM_PARTITIONS": "3",
			"KAFKA_HEAP_OPTS":      "-Xms256m -Xmx512m",
		}),
		// The image's run script takes settings as NAME=value arguments.
		testcontainers.WithEntrypoint("sh", "-c"),
		testcontainers.WithCmd(fmt.Sprintf(
			`while [ ! -f %[1]s ]; do sleep 0.1; done; exec /etc/kafka/docker/run "KAFKA_ADVERTISED_LISTENERS=$(cat %[1]s)"`,
			kafkaListenersFile)),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{advertiseKafka},
		}),
		testcontainers.WithWaitStrategy(wait.ForLog("Kafka Server started").WithStartupTimeout(2*time.Minute)),
	)
	if c != nil {
		track(c)
	}
	if err != nil {
		return "", err
	}
	return c.PortEndpoint(ctx, kafkaPort, "")
}

// advertiseKafka hands the waiting container its listeners: the image's defaults, with the
// client listener at the address Docker maps it to.
func advertiseKafka(ctx context.Context, c testcontainers.Container) error {
	if err := wait.ForMappedPort(kafkaPort).WaitUntilReady(ctx, c); err != nil {
		return fmt.Errorf("wait for the mapped Kafka port: %w", err)
	}
	endpoint, err := c.PortEndpoint(ctx, kafkaPort, "")
	if err != nil {
		return fmt.Errorf("mapped Kafka port: %w", err)
	}
	listeners := "PLAINTEXT://localhost:29092,PLAINTEXT_HOST://" + endpoint
	return c.CopyToContainer(ctx, []byte(listeners), kafkaListenersFile, 0o644)
}

// rabbitMQContainer is the RabbitMQ container of this test binary, started on first use.
var rabbitMQContainer = sync.OnceValues(func() (*tcrabbitmq.RabbitMQContainer, error) {
	image, err := rabbitMQImage()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := tcrabbitmq.Run(ctx, image)
	if c != nil {
		track(c)
	}
	return c, err
})

func startRabbitMQ() (string, error) {
	c, err := rabbitMQContainer()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.AmqpURL(ctx)
}

// restartRabbitMQContainer runs the restart steps with rabbitmqctl inside the container.
func restartRabbitMQContainer(t testing.TB) {
	t.Helper()
	c, err := rabbitMQContainer()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range restartSteps {
		cmd := append([]string{"rabbitmqctl"}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		code, out, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
		var output []byte
		if out != nil {
			output, _ = io.ReadAll(out)
		}
		cancel()
		if err != nil || code != 0 {
			t.Fatalf("rabbitmqctl %s in the RabbitMQ container: exit code %d, %v\n%s", args[0], code, err, output)
		}
	}
}

const postgresPort = "5432/tcp"

// startPostgres runs the image the cluster runs, with a throwaway password, and returns its URL.
// The image's entrypoint starts the server twice (once to run its init scripts, then for real),
// so the log line is awaited twice.
func startPostgres() (string, error) {
	image, err := postgresImage()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts(postgresPort),
		testcontainers.WithEnv(map[string]string{
			"POSTGRES_USER":     "backend_prep",
			"POSTGRES_PASSWORD": "backend_prep",
			"POSTGRES_DB":       "backend_prep",
		}),
		testcontainers.WithWaitStrategy(
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(2*time.Minute),
			wait.ForListeningPort(postgresPort),
		),
	)
	if c != nil {
		track(c)
	}
	if err != nil {
		return "", err
	}
	endpoint, err := c.PortEndpoint(ctx, postgresPort, "")
	if err != nil {
		return "", err
	}
	return "postgres://backend_prep:backend_prep@" + endpoint + "/backend_prep?sslmode=disable", nil
}
