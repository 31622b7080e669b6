package brokertest

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMachine stands in for the environment and the Docker engine, and counts container starts.
type fakeMachine struct {
	short     bool // go test -short
	env       map[string]string
	dockerErr error // nil: a Docker engine answers
	startErr  error
	starts    int
}

func (m *fakeMachine) sources() sources {
	return sources{
		getenv: func(name string) string { return m.env[name] },
		docker: func() error { return m.dockerErr },
		short:  func() bool { return m.short },
	}
}

func (m *fakeMachine) broker() *broker {
	return newBroker("Kafka", "KAFKA_BOOTSTRAP_SERVERS", func() (string, error) { return "apache/kafka:4.3.1", nil }, func() (string, error) {
		m.starts++
		if m.startErr != nil {
			return "", m.startErr
		}
		return "localhost:32768", nil
	})
}

var errNoEngine = errors.New("cannot connect to the Docker daemon")

func TestAddressSources(t *testing.T) {
	tests := []struct {
		name       string
		machine    fakeMachine
		want       string
		wantStarts int
		wantErr    error
		wantInErr  []string
	}{
		{
			name:    "the environment wins over Docker",
			machine: fakeMachine{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}},
			want:    "127.0.0.1:9092",
		},
		{
			name: "the environment is enough without Docker",
			machine: fakeMachine{
				env:       map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"},
				dockerErr: errNoEngine,
			},
			want: "127.0.0.1:9092",
		},
		{
			name:       "a container when the variable is unset and Docker answers",
			machine:    fakeMachine{},
			want:       "localhost:32768",
			wantStarts: 1,
		},
		{
			name:       "an empty variable counts as unset",
			machine:    fakeMachine{env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": ""}},
			want:       "localhost:32768",
			wantStarts: 1,
		},
		{
			name:    "neither: the error names both ways to get a broker",
			machine: fakeMachine{dockerErr: errNoEngine},
			wantErr: errNoBroker,
			wantInErr: []string{
				"KAFKA_BOOTSTRAP_SERVERS is not set", errNoEngine.Error(),
				"make brokers", `eval "$(scripts/brokers env)"`, "start Docker", "apache/kafka:4.3.1",
			},
		},
		{
			name:      "neither, in CI: the same failure, with a word for the CI script",
			machine:   fakeMachine{env: map[string]string{"CI": "true"}, dockerErr: errNoEngine},
			wantErr:   errNoBroker,
			wantInErr: []string{"make brokers", "start Docker", "CI=true"},
		},
		{
			name:       "Docker answers but the container does not start",
			machine:    fakeMachine{startErr: errors.New("pull access denied")},
			wantStarts: 1,
			wantInErr:  []string{"start the Kafka container apache/kafka:4.3.1", "pull access denied"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.machine.sources().address(tt.machine.broker())

			assert.Equal(t, tt.wantStarts, tt.machine.starts, "container starts")
			if tt.wantInErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			for _, part := range tt.wantInErr {
				assert.Contains(t, err.Error(), part)
			}
			if tt.machine.env["CI"] != "true" {
				assert.NotContains(t, err.Error(), "CI=true")
			}
		})
	}
}

func TestOneContainerPerBrokerAndTestBinary(t *testing.T) {
	m := &fakeMachine{}
	s, b := m.sources(), m.broker()

	for range 3 {
		got, err := s.address(b)
		require.NoError(t, err)
		assert.Equal(t, "localhost:32768", got)
	}
	assert.Equal(t, 1, m.starts)
}

func TestAFailedContainerStartIsNotRetried(t *testing.T) {
	m := &fakeMachine{startErr: errors.New("pull access denied")}
	s, b := m.sources(), m.broker()

	for range 2 {
		_, err := s.address(b)
		require.Error(t, err)
	}
	assert.Equal(t, 1, m.starts, "every test of the binary reports the first start's error")
}

// recordingTB records how a helper ended a test. Like testing.T, Fatal and Skip stop the calling
// goroutine; any other method of testing.TB is unexpected and panics on the nil embedded TB.
type recordingTB struct {
	testing.TB
	failed, skipped bool
	message         string
}

func (r *recordingTB) Helper()      {}
func (r *recordingTB) Name() string { return "TestRecorded" }

func (r *recordingTB) Fatal(args ...any) {
	r.failed, r.message = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func (r *recordingTB) Skip(args ...any) {
	r.skipped, r.message = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) { r.Skip(fmt.Sprintf(format, args...)) }
func (r *recordingTB) SkipNow()                         { r.Skip() }

// run calls helper as a test body would, on its own goroutine so that Fatal can end it.
func (r *recordingTB) run(helper func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		helper(r)
	}()
	<-done
}

// useMachine makes the package's helpers see m instead of this machine for the rest of the test.
func useMachine(t *testing.T, m *fakeMachine) {
	t.Helper()
	saved := local
	local = m.sources()
	t.Cleanup(func() { local = saved })
}

func TestMissingBrokerFailsNeverSkips(t *testing.T) {
	helpers := []struct {
		name   string
		envVar string
		call   func(testing.TB)
	}{
		{"KafkaBootstrap", "KAFKA_BOOTSTRAP_SERVERS", func(t testing.TB) { KafkaBootstrap(t) }},
		{"RabbitMQURL", "RABBITMQ_URL", func(t testing.TB) { RabbitMQURL(t) }},
		{"RestartRabbitMQ", "RABBITMQ_URL", RestartRabbitMQ},
	}
	for _, ci := range []string{"", "true"} {
		for _, h := range helpers {
			t.Run(h.name+" CI="+ci, func(t *testing.T) {
				useMachine(t, &fakeMachine{env: map[string]string{"CI": ci}, dockerErr: errNoEngine})
				rec := &recordingTB{}

				rec.run(h.call)

				assert.True(t, rec.failed, "the test must fail")
				assert.False(t, rec.skipped, "the test must not be skipped")
				assert.Contains(t, rec.message, h.envVar)
				assert.Contains(t, rec.message, "make brokers")
			})
		}
	}
}

func TestShortModeSkipsIntegrationTestsExceptInCI(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		wantSkipped bool
	}{
		{"on a laptop, -short skips", "", true},
		{"in CI, -short fails", "true", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useMachine(t, &fakeMachine{short: true, env: map[string]string{
				"CI": tt.ci, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
			}})
			rec := &recordingTB{}

			rec.run(func(t testing.TB) { KafkaBootstrap(t) })

			assert.Equal(t, tt.wantSkipped, rec.skipped, rec.message)
			assert.Equal(t, !tt.wantSkipped, rec.failed, rec.message)
			assert.Contains(t, rec.message, "-short")
		})
	}
}

func TestHelpersReturnTheEnvironmentsAddresses(t *testing.T) {
	useMachine(t, &fakeMachine{
		env: map[string]string{
			"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
			"RABBITMQ_URL":            "amqp://guest:guest@127.0.0.1:5672/",
		},
		dockerErr: errNoEngine,
	})
	rec := &recordingTB{}
	var kafkaAddr, rabbitURL string

	rec.run(func(t testing.TB) {
		kafkaAddr, rabbitURL = KafkaBootstrap(t), RabbitMQURL(t)
	})

	require.False(t, rec.failed, rec.message)
	assert.Equal(t, "127.0.0.1:9092", kafkaAddr)
	assert.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", rabbitURL)
}

func TestRabbitMQCtlCommand(t *testing.T) {
	tests := []struct {
		name        string
		rabbitmqctl string
		want        []string
	}{
		{"unset: rabbitmqctl from PATH", "", []string{"rabbitmqctl"}},
		{"a plain command", "/usr/sbin/rabbitmqctl", []string{"/usr/sbin/rabbitmqctl"}},
		{"a command with a subcommand, as scripts/brokers env sets it", "scripts/brokers rabbitmqctl", []string{"scripts/brokers", "rabbitmqctl"}},
		{"extra spaces do not make empty arguments", "  sudo   rabbitmqctl ", []string{"sudo", "rabbitmqctl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"RABBITMQCTL": tt.rabbitmqctl}
			assert.Equal(t, tt.want, rabbitmqctl(func(name string) string { return env[name] }))
		})
	}
}
