// Package stack runs the system's four service binaries as processes on random local ports
// against real brokers, for the tests that look at the system from the outside, as a client
// would: tests/e2e and tests/labs.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Services are the four binaries of the system, in start order: the notifier before order-api,
// whose mandatory publishes need the notifier's queue to exist.
var Services = []string{"validator", "notifier", "analytics", "order-api"}

var (
	buildOnce sync.Once
	binDir    string
	errBuild  error
)

// Binaries builds the four services once per test binary and returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "backend-prep-bin-")
		if err != nil {
			errBuild = err
			return
		}
		binDir = dir
		for _, s := range Services {
			errBuild = Build(RepoRoot(), filepath.Join(dir, s), "./services/"+s)
			if errBuild != nil {
				return
			}
		}
	})
	require.NoError(t, errBuild)
	return binDir
}

// RemoveBinaries deletes what Binaries built. Call it from TestMain, after m.Run.
func RemoveBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// Build runs `go build -o out pkg` in dir, with the environment of the test plus env
// ("KEY=value" entries).
func Build(dir, out, pkg string, env ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// RepoRoot is the repository's root directory: the one holding go.work, above the test's
// package directory.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic("no go.work in " + dir + " or above")
		}
	}
}

// handedOut holds every address FreeAddr has returned in this test binary.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// FreeAddr returns a loopback address with a port nobody listens on right now, and one it has
// not returned before. The port is free only until someone binds it: the kernel may offer a
// port it just gave to a closed probe listener again, so without the record two services of
// one stack could be handed the same port and one of them would fail to start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
	t.Fatal("the kernel offered only loopback ports this test binary already uses")
	return ""
}

// UniqueSuffix returns a short random string for names no other run uses.
func UniqueSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Stack is one copy of the system: its processes, their addresses and their environment.
type Stack struct {
	t testing.TB
	// Env is the environment of each service, by name; set more before Start.
	Env map[string]map[string]string
	// Admin is the admin address (health, metrics, the notifier's notifications) of each service.
	Admin     map[string]string
	APIAddr   string // order-api HTTP
	StatsAddr string // analytics HTTP
	GRPCAddr  string // validator gRPC
	// Procs are the running (or stopped) processes, by service name.
	Procs map[string]*Proc
}

// New prepares a stack on the given brokers (Kafka bootstrap servers, AMQP URL) and PostgreSQL
// database (order-api's Idempotency-Keys), on free ports. Topic, exchange, queue and group
// names are the services' defaults unless the caller sets them in Env: shared with every
// other stack on the same brokers that keeps the defaults.
func New(t testing.TB, kafka, amqp, postgres string) *Stack {
	t.Helper()
	s := &Stack{
		t:         t,
		Admin:     map[string]string{},
		Procs:     map[string]*Proc{},
		APIAddr:   FreeAddr(t),
		StatsAddr: FreeAddr(t),
		GRPCAddr:  FreeAddr(t),
	}
	for _, name := range Services {
		s.Admin[name] = FreeAddr(t)
	}
	s.Env = map[string]map[string]string{
		"validator": {
			"GRPC_ADDR": s.GRPCAddr,
		},
		"order-api": {
			"HTTP_ADDR":               s.APIAddr,
			"VALIDATOR_ADDR":          s.GRPCAddr,
			"KAFKA_BOOTSTRAP_SERVERS": kafka,
			"RABBITMQ_URL":            amqp,
			"POSTGRES_URL":            postgres,
		},
		"notifier": {
			"RABBITMQ_URL": amqp,
		},
		"analytics": {
			"HTTP_ADDR":               s.StatsAddr,
			"KAFKA_BOOTSTRAP_SERVERS": kafka,
		},
	}
	for name, env := range s.Env {
		env["ADMIN_ADDR"] = s.Admin[name]
		env["SHUTDOWN_TIMEOUT"] = "10s"
	}
	return s
}

// Start starts one service and waits until its /readyz answers 200.
func (s *Stack) Start(name string) {
	s.t.Helper()
	p := Start(s.t, name, s.Env[name])
	s.Procs[name] = p
	WaitReady(s.t, p, s.Admin[name], 90*time.Second)
}

// StartAll starts the four services in their start order.
func (s *Stack) StartAll() {
	s.t.Helper()
	for _, name := range Services {
		s.Start(name)
	}
}

// Start runs a service binary with env, logging JSON at info level.
func Start(t testing.TB, name string, env map[string]string) *Proc {
	t.Helper()
	all := map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "info"}
	for k, v := range env {
		all[k] = v
	}
	return StartProcess(t, name, filepath.Join(Binaries(t), name), nil, all)
}

// Client is the HTTP client of the tests: every request is bounded.
var Client = &http.Client{Timeout: 10 * time.Second}

// WaitReady polls the admin /readyz of a service until it answers 200.
func WaitReady(t testing.TB, p *Proc, adminAddr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if !p.Running() {
			t.Fatalf("%s exited before it was ready:\n%s", p.name, p.Tail(30))
		}
		status, body, err := Get(adminAddr, "/readyz")
		if err == nil && status == http.StatusOK {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %s\n%s", p.name, timeout, last, p.Tail(30))
}

// Get sends GET http://addr+path with a deadline and returns the status and body.
func Get(addr, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}
