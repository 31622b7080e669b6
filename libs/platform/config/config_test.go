package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// baseVars are cleared before each case so the machine's own environment cannot leak in; the env
// library treats an empty variable like an unset one and applies the default.
var baseVars = []string{
	"LOG_LEVEL", "LOG_FORMAT", "ADMIN_ADDR", "SHUTDOWN_TIMEOUT",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED",
}

func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, name := range baseVars {
		t.Setenv(name, "")
	}
	for name, value := range vars {
		t.Setenv(name, value)
	}
}

// unsetEnv removes a variable for the duration of the test; an empty one is not the same as unset.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	require.NoError(t, os.Unsetenv(name))
}

func TestLoadBase(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want config.Base
	}{
		{
			name: "defaults",
			want: config.Base{
				LogLevel:        zapcore.InfoLevel,
				LogFormat:       "json",
				AdminAddr:       ":9090",
				ShutdownTimeout: 15 * time.Second,
				Tracing:         config.Tracing{Protocol: "http/protobuf", Sampler: "parentbased_always_on"},
			},
		},
		{
			name: "overrides",
			env: map[string]string{
				"LOG_LEVEL":        "debug",
				"LOG_FORMAT":       "console",
				"ADMIN_ADDR":       "127.0.0.1:0",
				"SHUTDOWN_TIMEOUT": "1m",

				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
				"OTEL_TRACES_SAMPLER_ARG":     "0.1",
			},
			want: config.Base{
				LogLevel:        zapcore.DebugLevel,
				LogFormat:       "console",
				AdminAddr:       "127.0.0.1:0",
				ShutdownTimeout: time.Minute,
				Tracing: config.Tracing{
					Endpoint: "http://jaeger:4318", Protocol: "grpc",
					Sampler: "parentbased_traceidratio", SamplerArg: "0.1",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			got, err := config.Load[config.Base]()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadBaseRejectsBadValues(t *testing.T) {
	tests := []struct {
		name     string
		variable string
		value    string
		wantMsg  string
	}{
		{"unknown log level", "LOG_LEVEL", "loud", `config: LOG_LEVEL: unrecognized level: "loud"`},
		{"log level zap knows but we do not allow", "LOG_LEVEL", "fatal", `config: LOG_LEVEL: "fatal" is not one of debug, info, warn, error`},
		{"log format", "LOG_FORMAT", "xml", `config: LOG_FORMAT: "xml" is not one of json, console`},
		{"admin address without port", "ADMIN_ADDR", "x", `config: ADMIN_ADDR: invalid address "x": address x: missing port in address`},
		{"admin address with named port", "ADMIN_ADDR", ":http", `config: ADMIN_ADDR: invalid address ":http": port "http" is not a number from 0 to 65535`},
		{"admin address with port out of range", "ADMIN_ADDR", ":65536", `config: ADMIN_ADDR: invalid address ":65536"`},
		{"shutdown timeout not a duration", "SHUTDOWN_TIMEOUT", "abc", `config: SHUTDOWN_TIMEOUT: time: invalid duration "abc"`},
		{"shutdown timeout zero", "SHUTDOWN_TIMEOUT", "0s", `config: SHUTDOWN_TIMEOUT: 0s is outside (0, 1m0s]`},
		{"shutdown timeout negative", "SHUTDOWN_TIMEOUT", "-1s", `config: SHUTDOWN_TIMEOUT: -1s is outside (0, 1m0s]`},
		{"shutdown timeout beyond the bound", "SHUTDOWN_TIMEOUT", "2m", `config: SHUTDOWN_TIMEOUT: 2m0s is outside (0, 1m0s]`},
		{"OTLP endpoint without a scheme", "OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4318", `config: OTEL_EXPORTER_OTLP_ENDPOINT: "jaeger:4318" is not an http:// or https:// URL`},
		{"OTLP traces endpoint not a URL", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http//x", `config: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http//x" is not an http:// or https:// URL`},
		{"OTLP protocol unknown", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", `config: OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not one of http/protobuf, grpc`},
		{"sampler unknown", "OTEL_TRACES_SAMPLER", "jaeger_remote", `config: OTEL_TRACES_SAMPLER: "jaeger_remote" is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio`},
		{"sampler ratio above 1", "OTEL_TRACES_SAMPLER_ARG", "1.5", `config: OTEL_TRACES_SAMPLER_ARG: "1.5" is not a ratio from 0 to 1`},
		{"sampler ratio not a number", "OTEL_TRACES_SAMPLER_ARG", "half", `config: OTEL_TRACES_SAMPLER_ARG: "half" is not a ratio from 0 to 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, map[string]string{tt.variable: tt.value})
			_, err := config.Load[config.Base]()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantMsg)

			var varErr *config.VarError
			require.ErrorAs(t, err, &varErr)
			assert.Equal(t, tt.variable, varErr.Var)
		})
	}
}

func TestLoadReportsEveryBadVariableOnOneLine(t *testing.T) {
	setEnv(t, map[string]string{"LOG_LEVEL": "fatal", "LOG_FORMAT": "xml", "ADMIN_ADDR": "x"})

	_, err := config.Load[config.Base]()

	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n")
	for _, name := range []string{"LOG_LEVEL", "LOG_FORMAT", "ADMIN_ADDR"} {
		assert.Contains(t, err.Error(), name+": ")
	}
}

// serviceConfig is what a service declares: Base plus its own variables and rules.
type serviceConfig struct {
	config.Base
	HTTPAddr   string         `env:"HTTP_ADDR" envDefault:":8080"`
	BrokerURL  string         `env:"BROKER_URL,required"`
	MaxItems   int            `env:"MAX_ITEMS" envDefault:"50"`
	HTTPClient clientSettings `envPrefix:"HTTP_CLIENT_"`
	GRPCClient clientSettings `envPrefix:"GRPC_CLIENT_"`
}

// clientSettings appears twice above, so a parse error's Go field name alone is ambiguous.
type clientSettings struct {
	Timeout time.Duration `env:"TIMEOUT" envDefault:"2s"`
}

var errTooManyItems = errors.New("must be at most 1000")

func (c serviceConfig) Validate() error {
	var errs []error
	if err := config.CheckAddr("HTTP_ADDR", c.HTTPAddr); err != nil {
		errs = append(errs, err)
	}
	if c.MaxItems > 1000 {
		errs = append(errs, &config.VarError{Var: "MAX_ITEMS", Err: errTooManyItems})
	}
	return errors.Join(errs...)
}

func TestLoadServiceConfig(t *testing.T) {
	valid := map[string]string{"BROKER_URL": "amqp://broker"}
	with := func(extra map[string]string) map[string]string {
		vars := map[string]string{"HTTP_ADDR": "", "MAX_ITEMS": "", "HTTP_CLIENT_TIMEOUT": "", "GRPC_CLIENT_TIMEOUT": ""}
		for k, v := range valid {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		return vars
	}

	t.Run("defaults and required values", func(t *testing.T) {
		setEnv(t, with(nil))
		got, err := config.Load[serviceConfig]()
		require.NoError(t, err)
		assert.Equal(t, ":8080", got.HTTPAddr)
		assert.Equal(t, "amqp://broker", got.BrokerURL)
		assert.Equal(t, 50, got.MaxItems)
		assert.Equal(t, 2*time.Second, got.GRPCClient.Timeout)
		assert.Equal(t, ":9090", got.BaseConfig().AdminAddr)
	})

	t.Run("required variable missing", func(t *testing.T) {
		setEnv(t, with(nil))
		unsetEnv(t, "BROKER_URL")
		_, err := config.Load[serviceConfig]()
		require.EqualError(t, err, "config: BROKER_URL: required but not set")
	})

	errorCases := []struct {
		name     string
		env      map[string]string
		variable string
		wantMsg  string
	}{
		{"service field not parseable", map[string]string{"MAX_ITEMS": "many"}, "MAX_ITEMS", `config: MAX_ITEMS: strconv.ParseInt: parsing "many": invalid syntax`},
		{"nested field named by its prefixed variable", map[string]string{"GRPC_CLIENT_TIMEOUT": "soon"}, "GRPC_CLIENT_TIMEOUT", `config: GRPC_CLIENT_TIMEOUT: time: invalid duration "soon"`},
		{"service Validate is called", map[string]string{"MAX_ITEMS": "5000"}, "MAX_ITEMS", "config: MAX_ITEMS: must be at most 1000"},
		{"service Validate checks addresses", map[string]string{"HTTP_ADDR": "localhost"}, "HTTP_ADDR", `config: HTTP_ADDR: invalid address "localhost"`},
		{"Base is checked although the service has its own Validate", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, "SHUTDOWN_TIMEOUT", "config: SHUTDOWN_TIMEOUT: 0s is outside"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with(tt.env))
			_, err := config.Load[serviceConfig]()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantMsg)
			var varErr *config.VarError
			require.ErrorAs(t, err, &varErr)
			assert.Equal(t, tt.variable, varErr.Var)
		})
	}

	t.Run("each of two ambiguous fields is named by its own variable", func(t *testing.T) {
		setEnv(t, with(map[string]string{"HTTP_CLIENT_TIMEOUT": "later", "GRPC_CLIENT_TIMEOUT": "soon"}))
		_, err := config.Load[serviceConfig]()
		require.Error(t, err)
		assert.Contains(t, err.Error(), `HTTP_CLIENT_TIMEOUT: time: invalid duration "later"`)
		assert.Contains(t, err.Error(), `GRPC_CLIENT_TIMEOUT: time: invalid duration "soon"`)
	})

	t.Run("several errors from Validate on one line", func(t *testing.T) {
		setEnv(t, with(map[string]string{"HTTP_ADDR": "localhost", "MAX_ITEMS": "5000"}))
		_, err := config.Load[serviceConfig]()
		require.EqualError(t, err, `config: HTTP_ADDR: invalid address "localhost": address localhost: missing port in address; MAX_ITEMS: must be at most 1000`)
		assert.ErrorIs(t, err, errTooManyItems)
	})

	t.Run("errors from Validate stay inspectable", func(t *testing.T) {
		setEnv(t, with(map[string]string{"MAX_ITEMS": "5000"}))
		_, err := config.Load[serviceConfig]()
		assert.ErrorIs(t, err, errTooManyItems)
	})
}

type pointerValidated struct {
	Name string `env:"TEST_POINTER_NAME"`
}

func (c *pointerValidated) Validate() error {
	if !strings.HasPrefix(c.Name, "svc-") {
		return &config.VarError{Var: "TEST_POINTER_NAME", Err: errors.New(`must start with "svc-"`)}
	}
	return nil
}

func TestLoadCallsValidateDeclaredOnPointer(t *testing.T) {
	t.Setenv("TEST_POINTER_NAME", "orders")
	_, err := config.Load[pointerValidated]()
	require.EqualError(t, err, `config: TEST_POINTER_NAME: must start with "svc-"`)

	t.Setenv("TEST_POINTER_NAME", "svc-orders")
	got, err := config.Load[pointerValidated]()
	require.NoError(t, err)
	assert.Equal(t, "svc-orders", got.Name)
}

func TestLoadRejectsNonStructTypes(t *testing.T) {
	_, err := config.Load[*config.Base]()
	assert.ErrorContains(t, err, "is not a struct type")
}
