// Package httpserver runs a service's product HTTP API on echo v4, with the middleware every API
// needs: request IDs, panic recovery, a zap access log, Prometheus metrics and RFC 9457 problem
// responses for errors.
//
// A service contributes handlers as Routes through an fx value group and supplies the listen
// address as a Config:
//
//	fx.Provide(
//		func(c config.Config) httpserver.Config { return httpserver.Config{Addr: c.HTTPAddr} },
//		httpserver.AsRoutes(orders.NewHandler), // *orders.Handler has Register(*echo.Echo)
//	),
//	httpserver.Module,
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/internal/drain"
	"github.com/backend-prep/backend-prep/libs/platform/internal/serve"
)

// Config is what a service supplies to Module.
type Config struct {
	// Addr is the listen address, host:port (HTTP_ADDR); port 0 picks a free port (see Server.Addr).
	Addr string
}

// Routes registers a group of handlers. Handler types implement it, usually with a method per
// endpoint and Register wiring them: e.POST("/v1/orders", h.placeOrder).
type Routes interface {
	Register(e *echo.Echo)
}

// RoutesFunc adapts a function to Routes.
type RoutesFunc func(e *echo.Echo)

// Register calls f(e).
func (f RoutesFunc) Register(e *echo.Echo) { f(e) }

// Server timeouts. Slow clients must not hold connections forever; handlers bound their own
// work with context deadlines well inside WriteTimeout.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// MaxHeaderBytes bounds the head of a request — request line, header fields and the blank line
// that ends them — to 16 KiB. A bigger head is answered 431 Request Header Fields Too Large, by
// net/http itself (text/plain, and the connection is closed), before any handler or middleware
// runs. net/http's own default is 1 MiB.
const MaxHeaderBytes = 16 << 10

// headerReadSlack is what net/http adds to Server.MaxHeaderBytes before it refuses a request:
// it stops reading at MaxHeaderBytes + 4096 bytes ("bufio slop", Server.initialReadLimitSize in
// net/http/server.go). Taking it off makes MaxHeaderBytes the exact threshold.
const headerReadSlack = 4096

// Server is the HTTP server.
type Server struct {
	cfg  Config
	echo *echo.Echo
	log  *zap.Logger

	loop serve.Loop
}

// NewServer prepares e, built by New with routes registered, to serve on cfg.Addr.
func NewServer(cfg Config, e *echo.Echo, log *zap.Logger) *Server {
	log = log.Named("http")
	e.StdLogger = zap.NewStdLog(log)
	e.Server.ReadHeaderTimeout = ReadHeaderTimeout
	e.Server.ReadTimeout = ReadTimeout
	e.Server.WriteTimeout = WriteTimeout
	e.Server.IdleTimeout = IdleTimeout
	e.Server.MaxHeaderBytes = MaxHeaderBytes - headerReadSlack
	return &Server{cfg: cfg, echo: e, log: log}
}

// Start listens before returning, so a taken port fails start-up, then serves in the background.
func (s *Server) Start(ctx context.Context) error {
	err := s.loop.Start(ctx, "http server", s.cfg.Addr, s.log, func(ln net.Listener) error {
		s.echo.Listener = ln
		if err := s.echo.StartServer(s.echo.Server); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpserver: %w", err)
	}
	return nil
}

// Stop stops accepting connections and lets in-flight requests finish within a share of ctx's
// time (see package drain); requests still running then are cut off and Stop reports it.
func (s *Server) Stop(ctx context.Context) error {
	return s.loop.Stop(func() error {
		drainCtx, cancel := drain.Context(ctx)
		defer cancel()
		if err := s.echo.Shutdown(drainCtx); err != nil {
			return errors.Join(fmt.Errorf("httpserver: requests still running at the deadline were cut off: %w", err), s.echo.Close())
		}
		return nil
	})
}

// Addr is the address the server listens on, nil before Start. Tests listen on port 0 and ask.
func (s *Server) Addr() net.Addr { return s.loop.Addr() }

// ProblemContentType is the media type of RFC 9457 problem details.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details body. A handler may return a *Problem as its error to
// answer with it; a body with extension members (such as "violations") is written directly with
// ProblemContentType instead.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// problemFor maps a handler error to the response the client sees. Unexpected errors become a
// bare 500: their text is for the log, not for clients.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	status := http.StatusInternalServerError
	detail := ""
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		if msg, ok := he.Message.(string); ok && msg != http.StatusText(status) {
			detail = msg
		}
	}
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// handleError writes the error response. It does not log: the access log records every request
// once, with its error.
func handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problemFor(err)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	body, merr := json.Marshal(p)
	if merr != nil {
		_ = c.NoContent(p.Status)
		return
	}
	_ = c.Blob(p.Status, ProblemContentType, body)
}

// statusOf is the status a request ended with, even if no error handler has written it yet.
func statusOf(c echo.Context, err error) int {
	if err == nil || c.Response().Committed {
		return c.Response().Status
	}
	return problemFor(err).Status
}

// register adds the metrics to reg; it fails, rather than panics, when two servers share one
// registry.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("httpserver: register metrics: %w", err)
		}
	}
	return nil
}
