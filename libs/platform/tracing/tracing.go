// Package tracing records a service's spans with OpenTelemetry and exports them over OTLP, so that
// one order can be followed from the HTTP request through the validator and both brokers to the
// consumers, in a trace viewer such as Jaeger.
//
// The configuration is OpenTelemetry's own (config.Tracing): with OTEL_EXPORTER_OTLP_ENDPOINT
// set, spans are batched and exported; without it the tracer provider is a no-op and a span
// costs nothing but the call. Either way the W3C Trace Context propagator is installed, so a
// trace that a caller started passes through an untraced service on to the next one.
//
// New installs the provider and the propagator as OpenTelemetry's global ones: that is where
// the maintained instrumentation (otelhttp in httpserver, otelgrpc in grpcserver and in gRPC
// clients) and the broker libraries (libs/kafka, libs/rabbitmq) find them, without every
// constructor of every library taking a provider.
package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/config"
)

// Propagator is the propagator every service uses: W3C Trace Context (traceparent, tracestate)
// and W3C Baggage, on HTTP headers, gRPC metadata, Kafka record headers and AMQP headers alike.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{},
)

// Provider is a service's tracer provider.
type Provider struct {
	trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when tracing is off
}

// Enabled reports whether spans are recorded and exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Shutdown exports the spans still buffered, within ctx, and stops the exporter. It does nothing
// when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// New returns the tracer provider of service, as cfg asks: exporting over OTLP when an endpoint
// is set, a no-op otherwise. It does not connect: the exporter sends its first batch within
// seconds of the first span, and a receiver that is down costs dropped spans (reported through
// log), never a failed request. New installs the provider and Propagator as the global ones.
func New(ctx context.Context, service string, cfg config.Tracing, log *zap.Logger) (*Provider, error) {
	otel.SetTextMapPropagator(Propagator)
	if !cfg.Enabled() {
		p := &Provider{TracerProvider: noop.NewTracerProvider()}
		otel.SetTracerProvider(p)
		return p, nil
	}
	sampler, err := Sampler(cfg)
	if err != nil {
		return nil, err
	}
	exporter, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	detectors := []resource.Option{resource.WithTelemetrySDK()}
	if service != "" {
		detectors = append(detectors, resource.WithAttributes(semconv.ServiceName(service)))
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the above.
	res, err := resource.New(ctx, append(detectors, resource.WithFromEnv())...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter), // OTEL_BSP_* tune the batches
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	)
	// Export failures (the receiver down, say) reach OpenTelemetry's error handler, not a caller.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", zap.Error(err))
	}))
	p := &Provider{TracerProvider: sdk, sdk: sdk}
	otel.SetTracerProvider(p)
	log.Info("tracing on", zap.String("endpoint", cfg.TracesURL()),
		zap.String("protocol", cfg.TracesProtocolName()), zap.String("sampler", sampler.Description()))
	return p, nil
}

// Sampler is the sampler cfg names (OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG).
func Sampler(cfg config.Tracing) (sdktrace.Sampler, error) {
	ratio, err := cfg.Ratio()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	switch cfg.Sampler {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	default:
		return nil, fmt.Errorf("tracing: unknown sampler %q", cfg.Sampler)
	}
}

// newExporter returns the OTLP span exporter of cfg's protocol. The exporters read their
// endpoint, headers, timeout and TLS settings from the OTEL_EXPORTER_OTLP_* variables.
func newExporter(ctx context.Context, cfg config.Tracing) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch cfg.TracesProtocolName() {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return exp, nil
}
