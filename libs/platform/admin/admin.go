// Package admin serves a service's operational endpoints on their own port (ADMIN_ADDR), apart
// from the product API:
//
//   - GET /livez   — 200 while the process runs; a failing liveness probe restarts the pod.
//   - GET /readyz  — 200 when every readiness check passes, else 503 with a JSON body naming the
//     failing checks; Kubernetes sends traffic only to ready pods.
//   - GET /metrics — Prometheus metrics from the service's own registry (Go runtime, process,
//     and whatever other modules register on the prometheus.Registerer this package provides).
//   - GET /debug/pprof/ — Go's profiles (net/http/pprof): CPU (profile?seconds=N, at most
//     MaxProfileDuration), heap, goroutine, allocs, the execution trace. Only here, never on
//     the product port: a profile shows the program's insides and costs CPU while it runs.
//
// Other modules contribute through fx value groups: readiness checks with AsCheck, extra
// handlers (for example the notifier's GET /v1/notifications/{order_id}) with AsRoute.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/internal/drain"
	"github.com/backend-prep/backend-prep/libs/platform/internal/serve"
)

// MaxProfileDuration bounds a CPU profile or execution trace asked of /debug/pprof/: the admin
// server's write timeout is this plus a margin, and net/http/pprof refuses longer ones.
const MaxProfileDuration = time.Minute

// DefaultCheckTimeout is how long /readyz waits for its checks, which run concurrently. It stays
// below a typical probe timeout (timeoutSeconds: 3) so the probe gets an answer, not a timeout.
const DefaultCheckTimeout = 2 * time.Second

// Check is one readiness condition, such as "the broker connection is open". Check must return
// promptly once ctx is done; a nil error means ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Route is an extra handler on the admin port. Pattern uses http.ServeMux syntax, for example
// "GET /v1/notifications/{order_id}".
type Route struct {
	Pattern string
	Handler http.Handler
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors. Each
// service has its own registry rather than the global one, so tests can build many side by side.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Options configures a Server.
type Options struct {
	// Addr is the listen address, host:port; port 0 picks a free port (see Server.Addr).
	Addr string
	// Gatherer is what /metrics serves.
	Gatherer prometheus.Gatherer
	// Checks decide /readyz.
	Checks []Check
	// Routes are served besides the built-in endpoints.
	Routes []Route
	// CheckTimeout bounds /readyz; zero means DefaultCheckTimeout.
	CheckTimeout time.Duration
}

// Server is the admin HTTP server.
type Server struct {
	log          *zap.Logger
	addr         string
	checks       []Check
	checkTimeout time.Duration
	http         *http.Server

	loop serve.Loop
}

// NewServer builds the server and its routes; it does not listen yet.
func NewServer(log *zap.Logger, opts Options) (*Server, error) {
	if opts.Gatherer == nil {
		return nil, errors.New("admin: no metrics gatherer")
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	seen := make(map[string]bool, len(opts.Checks))
	for _, c := range opts.Checks {
		if c.Name == "" || c.Check == nil {
			return nil, fmt.Errorf("admin: readiness check %q needs a name and a function", c.Name)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("admin: two readiness checks named %q", c.Name)
		}
		seen[c.Name] = true
	}

	s := &Server{
		log:          log.Named("admin"),
		addr:         opts.Addr,
		checks:       opts.Checks,
		checkTimeout: opts.CheckTimeout,
	}
	mux := http.NewServeMux()
	routes := append([]Route{
		{"GET /livez", http.HandlerFunc(s.livez)},
		{"GET /readyz", http.HandlerFunc(s.readyz)},
		{"GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})},
		// Index also serves the named profiles: /debug/pprof/heap, /goroutine, /allocs….
		{"GET /debug/pprof/", http.HandlerFunc(pprof.Index)},
		{"GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline)},
		{"GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile)},
		{"GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol)},
		{"POST /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol)},
		{"GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace)},
	}, opts.Routes...)
	for _, r := range routes {
		if err := handle(mux, r); err != nil {
			return nil, err
		}
	}
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      max(opts.CheckTimeout, MaxProfileDuration) + 10*time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	return s, nil
}

// handle registers r, turning ServeMux's panic on a bad or conflicting pattern into an error.
func handle(mux *http.ServeMux, r Route) (err error) {
	if r.Handler == nil {
		return fmt.Errorf("admin: route %q has no handler", r.Pattern)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("admin: route %q: %v", r.Pattern, p)
		}
	}()
	mux.Handle(r.Pattern, r.Handler)
	return nil
}

// Handler returns the server's handler, for tests that do not need a listener.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Start listens before returning, so a taken port fails start-up, then serves in the background.
func (s *Server) Start(ctx context.Context) error {
	err := s.loop.Start(ctx, "admin server", s.addr, s.log, func(ln net.Listener) error {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// Stop lets in-flight requests finish within a share of ctx's time, then closes what is left.
func (s *Server) Stop(ctx context.Context) error {
	return s.loop.Stop(func() error {
		drainCtx, cancel := drain.Context(ctx)
		defer cancel()
		if err := s.http.Shutdown(drainCtx); err != nil {
			return errors.Join(fmt.Errorf("admin: shutdown: %w", err), s.http.Close())
		}
		return nil
	})
}

// Addr is the address the server listens on, nil before Start. Tests listen on port 0 and ask.
func (s *Server) Addr() net.Addr { return s.loop.Addr() }

func (s *Server) livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readiness is the /readyz body: status, and for each check "ok" or what is wrong.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failures := s.runChecks(r.Context())
	body := readiness{Status: "ready", Checks: make(map[string]string, len(s.checks))}
	code := http.StatusOK
	for i, c := range s.checks {
		body.Checks[c.Name] = "ok"
		if failures[i] != nil {
			body.Checks[c.Name] = failures[i].Error()
			body.Status = "not ready"
			code = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// runChecks runs every check concurrently under one deadline and returns their errors by index.
// A check that ignores its context is reported as failing at the deadline and left to finish on
// its own; the results channel is buffered so it never blocks.
func (s *Server) runChecks(ctx context.Context) []error {
	ctx, cancel := context.WithTimeout(ctx, s.checkTimeout)
	defer cancel()

	type result struct {
		index int
		err   error
	}
	results := make(chan result, len(s.checks))
	for i, c := range s.checks {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					results <- result{i, fmt.Errorf("panic: %v", p)}
				}
			}()
			results <- result{i, c.Check(ctx)}
		}()
	}

	// Whether a slow check gave up at the deadline or never answered, it reads the same.
	timedOut := fmt.Errorf("no answer within %s", s.checkTimeout)
	errs := make([]error, len(s.checks))
	answered := make([]bool, len(s.checks))
	for range s.checks {
		select {
		case r := <-results:
			errs[r.index], answered[r.index] = r.err, true
			if errors.Is(r.err, context.DeadlineExceeded) {
				errs[r.index] = timedOut
			}
		case <-ctx.Done():
			for i := range errs {
				if !answered[i] {
					errs[i] = timedOut
				}
			}
			return errs
		}
	}
	return errs
}
