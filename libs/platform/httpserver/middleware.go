package httpserver

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/backend-prep/backend-prep/libs/platform/logging"
)

// New returns an echo instance with the platform middleware, outermost first:
//
//  0. tracing — a server span per request (otelhttp), a child of the caller's span when the
//     request carries a W3C traceparent, named after the route template once routed;
//  1. served by — the Served-By response header names the host that answered (see ServedByHeader);
//     request ID — X-Request-Id from the client or a new one, echoed in the response and put in
//     the request context (logging.RequestID, logging.FromContext);
//  2. metrics — http_requests_total and http_request_duration_seconds by method, route template
//     and status, registered on reg;
//  3. access log — one line per request; 5xx at error level with the error (and a panic's stack);
//  4. recover — a panicking handler becomes a 500 and the server keeps serving.
//
// Errors returned by handlers become RFC 9457 problem responses (see Problem).
func New(log *zap.Logger, reg prometheus.Registerer) (*echo.Echo, error) {
	metrics, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = handleError
	e.Use(
		echo.WrapMiddleware(otelhttp.NewMiddleware("http.server")),
		nameSpan,
		servedBy(),
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{
			RequestIDHandler: func(c echo.Context, id string) {
				c.SetRequest(c.Request().WithContext(logging.WithRequestID(c.Request().Context(), id)))
			},
		}),
		metrics,
		accessLog(log.Named("http")),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			// Hand the panic, with its stack, to the access log instead of logging it here.
			LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
				return &panicError{err: err, stack: stack}
			},
			DisableErrorHandler: true,
		}),
	)
	return e, nil
}

// nameSpan names the request's server span "<method> <route template>", as OpenTelemetry's HTTP
// conventions ask, once echo has routed the request: otelhttp starts the span before routing,
// and the raw path would make one span name per order.
func nameSpan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if route := c.Path(); route != "" {
			span := trace.SpanFromContext(c.Request().Context())
			span.SetName(c.Request().Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		return err
	}
}

// ServedByHeader is the response header that names the host that answered: os.Hostname, which
// in Kubernetes is the pod's name and under Docker the container's ID. Behind a Service or a
// Gateway with several replicas, it shows how the requests spread. (No "X-" prefix: RFC 6648.)
const ServedByHeader = "Served-By"

// servedBy sets ServedByHeader on every response, error responses included; without a host name
// it sets nothing.
func servedBy() echo.MiddlewareFunc {
	host, err := os.Hostname()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if err != nil || host == "" {
			return next
		}
		return func(c echo.Context) error {
			c.Response().Header().Set(ServedByHeader, host)
			return next(c)
		}
	}
}

type panicError struct {
	err   error
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.err) }
func (p *panicError) Unwrap() error { return p.err }

func accessLog(log *zap.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:     true, // write the error response first, so the logged status is final
		LogLatency:      true,
		LogMethod:       true,
		LogURIPath:      true,
		LogRoutePath:    true,
		LogStatus:       true,
		LogError:        true,
		LogResponseSize: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			fields := []zap.Field{
				zap.String("method", v.Method),
				zap.String("path", v.URIPath),
				zap.String("route", v.RoutePath),
				zap.Int("status", v.Status),
				zap.Duration("latency", v.Latency),
				zap.Int64("bytes", v.ResponseSize),
			}
			level := zapcore.InfoLevel
			if v.Status >= 500 {
				level = zapcore.ErrorLevel
			}
			if v.Error != nil {
				fields = append(fields, zap.Error(v.Error))
				var p *panicError
				if errors.As(v.Error, &p) {
					fields = append(fields, zap.ByteString("stack", p.stack))
				}
			}
			logging.FromContext(c.Request().Context(), log).Log(level, "request", fields...)
			return nil
		},
	})
}

func newMetrics(reg prometheus.Registerer) (echo.MiddlewareFunc, error) {
	labels := []string{"method", "route", "status"}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests handled, by method, route template and status code.",
	}, labels)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Time to handle an HTTP request, by method, route template and status code.",
		Buckets: prometheus.DefBuckets,
	}, labels)
	if err := register(reg, requests, duration); err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			// The route template, never the raw path: /v1/orders/:id is one series, not one per id.
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			values := []string{c.Request().Method, route, strconv.Itoa(statusOf(c, err))}
			requests.WithLabelValues(values...).Inc()
			duration.WithLabelValues(values...).Observe(time.Since(start).Seconds())
			return err
		}
	}, nil
}
