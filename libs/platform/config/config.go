// Package config loads a service's typed configuration from environment variables, once, at
// start-up.
//
// A service declares one struct that embeds Base and tags its own fields with `env:"NAME"` and
// `envDefault:"value"` (github.com/caarlos0/env). Load parses it, checks Base, then calls the
// struct's Validate method when it has one. Every error names the environment variable, so a bad
// deployment says which knob to turn:
//
//	config: SHUTDOWN_TIMEOUT: time: invalid duration "abc"
//
// Nothing else in a service reads the environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap/zapcore"
)

// MaxShutdownTimeout bounds SHUTDOWN_TIMEOUT. A stop that needs longer than this is a bug to fix,
// not a timeout to raise; Kubernetes' default grace period (30s) must also stay above the value.
const MaxShutdownTimeout = time.Minute

// Base is the configuration every service shares. Embed it in the service's Config struct.
type Base struct {
	// LogLevel is the minimum level logged: debug, info, warn or error.
	LogLevel zapcore.Level `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is json (one object per line, for machines) or console (for humans).
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
	// AdminAddr is where /livez, /readyz and /metrics are served.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:":9090"`
	// ShutdownTimeout bounds the whole graceful stop; it must be positive, at most
	// MaxShutdownTimeout, and shorter than the pod's termination grace period.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
	// Tracing says whether and where spans are exported, in OpenTelemetry's own variables.
	Tracing Tracing
}

// Tracing is the part of OpenTelemetry's standard configuration that the platform acts on
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Tracing
// is on only when an OTLP endpoint is set: without one, spans cost nothing. The exporter reads
// the rest of its variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _INSECURE…), and
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES rename or label the service.
type Tracing struct {
	// Endpoint is the OTLP receiver of every signal, e.g. http://localhost:4318.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// TracesEndpoint, when set, is used for traces instead of Endpoint.
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	// Protocol is http/protobuf (port 4318) or grpc (port 4317).
	Protocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf"`
	// TracesProtocol, when set, is used for traces instead of Protocol.
	TracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	// Sampler decides which traces are recorded; the default records every trace that its
	// caller did not decide against.
	Sampler string `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on"`
	// SamplerArg is the ratio (0 to 1) of the traceidratio samplers.
	SamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
	// Disabled turns tracing off whatever else is set.
	Disabled bool `env:"OTEL_SDK_DISABLED"`
}

// Samplers are the values OTEL_TRACES_SAMPLER takes.
var Samplers = []string{
	"always_on", "always_off", "traceidratio",
	"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return !t.Disabled && t.TracesURL() != "" }

// TracesURL is the endpoint traces go to: TracesEndpoint, else Endpoint.
func (t Tracing) TracesURL() string {
	if t.TracesEndpoint != "" {
		return t.TracesEndpoint
	}
	return t.Endpoint
}

// TracesProtocolName is the protocol traces are sent with: TracesProtocol, else Protocol.
func (t Tracing) TracesProtocolName() string {
	if t.TracesProtocol != "" {
		return t.TracesProtocol
	}
	return t.Protocol
}

// Ratio is the sampling ratio of the traceidratio samplers: SamplerArg, 1 when unset.
func (t Tracing) Ratio() (float64, error) {
	if strings.TrimSpace(t.SamplerArg) == "" {
		return 1, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(t.SamplerArg), 64)
	if err != nil || r < 0 || r > 1 {
		return 0, &VarError{"OTEL_TRACES_SAMPLER_ARG", fmt.Errorf("%q is not a ratio from 0 to 1", t.SamplerArg)}
	}
	return r, nil
}

func (t Tracing) validate() []error {
	var errs []error
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", t.Endpoint},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", t.TracesEndpoint},
	} {
		if v.value == "" {
			continue
		}
		u, err := url.Parse(v.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, &VarError{v.name, fmt.Errorf("%q is not an http:// or https:// URL", v.value)})
		}
	}
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", t.Protocol},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", t.TracesProtocol},
	} {
		if v.value != "" && v.value != "http/protobuf" && v.value != "grpc" {
			errs = append(errs, &VarError{v.name, fmt.Errorf("%q is not one of http/protobuf, grpc", v.value)})
		}
	}
	if !slices.Contains(Samplers, t.Sampler) {
		errs = append(errs, &VarError{"OTEL_TRACES_SAMPLER", fmt.Errorf("%q is not one of %s", t.Sampler, strings.Join(Samplers, ", "))})
	}
	if _, err := t.Ratio(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// BaseConfig returns the shared part of a service configuration. Structs embedding Base get it
// for free, which is what makes them satisfy Service.
func (b Base) BaseConfig() Base { return b }

// Service is satisfied by every service configuration struct that embeds Base.
type Service interface {
	BaseConfig() Base
}

// Validator is implemented by configurations that check their values after parsing. Validate
// should return *VarError (see CheckAddr) so the message names the variable; several may be
// combined with errors.Join and are then reported on one line.
type Validator interface {
	Validate() error
}

// VarError reports a bad value of one environment variable.
type VarError struct {
	Var string // the environment variable, e.g. "ADMIN_ADDR"
	Err error
}

func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *VarError) Unwrap() error { return e.Err }

// Load parses T, a struct type, from the environment, then validates it: Base first (when T
// embeds it), then T.Validate when T implements Validator.
func Load[T any]() (T, error) {
	var cfg T
	if reflect.TypeOf(cfg) == nil || reflect.TypeOf(cfg).Kind() != reflect.Struct {
		return cfg, fmt.Errorf("config: %T is not a struct type", cfg)
	}
	if err := env.Parse(&cfg); err != nil {
		return cfg, fmt.Errorf("config: %w", namedErrors(&cfg, err))
	}
	if s, ok := any(cfg).(Service); ok {
		if err := s.BaseConfig().validate(); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	if v, ok := validator(&cfg); ok {
		if err := v.Validate(); err != nil {
			if joined, ok := err.(interface{ Unwrap() []error }); ok {
				err = varErrors(joined.Unwrap()) // errors.Join would put each on its own line
			}
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}

// validator finds Validate whether it was declared on the value or on the pointer receiver.
func validator[T any](cfg *T) (Validator, bool) {
	if v, ok := any(*cfg).(Validator); ok {
		return v, true
	}
	v, ok := any(cfg).(Validator)
	return v, ok
}

func (b Base) validate() error {
	var errs []error
	switch b.LogLevel {
	case zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel:
	default:
		errs = append(errs, &VarError{"LOG_LEVEL", fmt.Errorf("%q is not one of debug, info, warn, error", b.LogLevel)})
	}
	if b.LogFormat != "json" && b.LogFormat != "console" {
		errs = append(errs, &VarError{"LOG_FORMAT", fmt.Errorf("%q is not one of json, console", b.LogFormat)})
	}
	if err := CheckAddr("ADMIN_ADDR", b.AdminAddr); err != nil {
		errs = append(errs, err)
	}
	if b.ShutdownTimeout <= 0 || b.ShutdownTimeout > MaxShutdownTimeout {
		errs = append(errs, &VarError{"SHUTDOWN_TIMEOUT", fmt.Errorf("%s is outside (0, %s]", b.ShutdownTimeout, MaxShutdownTimeout)})
	}
	errs = append(errs, b.Tracing.validate()...)
	return join(errs)
}

// CheckAddr reports whether addr is a listen or dial address of the form host:port, with host
// optional and a numeric port (0 picks a free port when listening). The error names variable.
func CheckAddr(variable, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err != nil {
		return &VarError{variable, fmt.Errorf("invalid address %q: %w", addr, err)}
	}
	return nil
}

// varErrors keeps several problems on one line, so a start-up failure is a single log line.
type varErrors []error

func (e varErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e varErrors) Unwrap() []error { return e }

func join(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return varErrors(errs)
	}
}

// namedErrors rewrites the env library's errors, which name Go fields, into VarErrors, which name
// the environment variables an operator actually sets.
func namedErrors(cfg any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	cfgType := reflect.TypeOf(cfg).Elem()
	fields := taggedFields(cfgType, "")
	used := make([]bool, len(fields))
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var (
			parseErr env.ParseError
			notSet   env.VarIsNotSetError
			empty    env.EmptyVarError
		)
		switch {
		case errors.As(e, &parseErr):
			out = append(out, parseVarError(cfgType, fields, used, parseErr))
		case errors.As(e, &notSet):
			out = append(out, &VarError{notSet.Key, errors.New("required but not set")})
		case errors.As(e, &empty):
			out = append(out, &VarError{empty.Key, errors.New("must not be empty")})
		default:
			out = append(out, e)
		}
	}
	return join(out)
}

func parseVarError(cfgType reflect.Type, fields []taggedField, used []bool, pe env.ParseError) error {
	cause := pe.Err
	var pve env.ParseValueError
	if errors.As(cause, &pve) && pve.Err != nil {
		cause = pve.Err // drop the library's "unable to parse duration:" prefix
	}
	var candidates []int
	for i, f := range fields {
		if !used[i] && f.name == pe.Name && f.typ == pe.Type {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		return &VarError{pe.Name, cause}
	}
	pick := candidates[0]
	if len(candidates) > 1 {
		// The same Go field appears under several prefixes; find the variable that fails alone.
		for _, i := range candidates {
			if failsAlone(cfgType, fields[i]) {
				pick = i
				break
			}
		}
	}
	used[pick] = true
	return &VarError{fields[pick].key, cause}
}

// failsAlone reports whether parsing cfgType with only f's variable set yields f's parse error.
func failsAlone(cfgType reflect.Type, f taggedField) bool {
	value, ok := os.LookupEnv(f.key)
	if !ok {
		return false
	}
	err := env.ParseWithOptions(reflect.New(cfgType).Interface(), env.Options{
		Environment: map[string]string{f.key: value},
	})
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return false
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && pe.Name == f.name && pe.Type == f.typ {
			return true
		}
	}
	return false
}

type taggedField struct {
	name string
	typ  reflect.Type
	key  string
}

// taggedFields lists the environment-bound fields of t in the order the env library visits them,
// which is also the order its errors come in.
func taggedFields(t reflect.Type, prefix string) []taggedField {
	var out []taggedField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if key == "-" {
			continue
		}
		if key != "" {
			out = append(out, taggedField{f.Name, f.Type, prefix + key})
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, taggedFields(ft, prefix+f.Tag.Get("envPrefix"))...)
		}
	}
	return out
}
