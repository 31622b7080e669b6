package ceiling

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// GRPCOptions configure [GRPCUnary].
type GRPCOptions struct {
	// Concurrency is the number of calls in flight at any time (default 1).
	Concurrency int
	// Duration is how long new calls start (required).
	Duration time.Duration
}

// HealthCheck is the method [GRPCUnary] calls: the standard health service's Check, which does
// a map lookup under a lock, nothing else.
const HealthCheck = "grpc.health.v1.Health/Check"

// GRPCUnary measures the grpc-go unary ceiling: how many calls per second a grpc-go server that
// does nothing per call answers on this machine. It builds the server (./grpcserver of this
// package, with `go build` in the workspace, which needs the go command and the repository's
// sources), starts it on a free loopback port as a process of its own, loads its
// [HealthCheck] for o.Duration with o.Concurrency calls in flight on one connection, the way
// [GRPCLoad] loads any method, and stops it. Result.ServerPID is the server's pid (gone when
// this returns), Result.ServerCPU its CPU time during the load, from /proc.
func GRPCUnary(ctx context.Context, o GRPCOptions) (Result, error) {
	if o.Duration <= 0 {
		return Result{}, errors.New("ceiling: GRPCOptions.Duration must be positive")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	dir, err := os.MkdirTemp("", "ceiling-grpcserver-")
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := filepath.Join(dir, "grpcserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./tests/internal/ceiling/grpcserver")
	build.Dir = stack.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("ceiling: go build the gRPC server: %w\n%s", err, out)
	}
	srv, addr, err := startGRPCServer(ctx, bin)
	if err != nil {
		return Result{}, err
	}
	defer srv.stop()

	res, err := GRPCLoad(ctx, GRPCLoadOptions{
		Target: addr, Method: HealthCheck, Data: &healthpb.HealthCheckRequest{},
		Concurrency: o.Concurrency, Duration: o.Duration, MeasurePID: srv.cmd.Process.Pid,
	})
	res.Name = fmt.Sprintf("grpc-go unary, no-op server (%s) in its own process, %d concurrent calls on 1 connection, ghz",
		HealthCheck, o.Concurrency)
	res.ServerPID = srv.cmd.Process.Pid
	return res, err
}

type grpcServerProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startGRPCServer starts the server and waits until it prints the address it listens on.
func startGRPCServer(ctx context.Context, bin string) (*grpcServerProc, string, error) {
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("ceiling: start grpcserver: %w", err)
	}
	p := &grpcServerProc{cmd: cmd, exited: make(chan struct{})}
	addrC := make(chan string, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addrC <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addrC:
		return p, a, nil
	case <-p.exited:
		return nil, "", fmt.Errorf("ceiling: grpcserver exited before it listened: %v", cmd.ProcessState)
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, "", errors.New("ceiling: grpcserver did not listen within 30s")
	}
}

// stop ends the server with SIGTERM, or SIGKILL when it still runs 5 seconds later.
func (p *grpcServerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// ValidateOrder is the validator's method, GRPCLoad's default.
const ValidateOrder = "orders.v1.OrderValidation/ValidateOrder"

// GRPCLoadOptions configure [GRPCLoad].
type GRPCLoadOptions struct {
	// Target is the server's host:port, plaintext (required).
	Target string
	// Method is the unary method: "package.Service/Method" (or "package.Service.Method", or
	// with a leading "/"). Default: [ValidateOrder].
	Method string
	// Data is the request, the same for every call: a proto.Message, or its protobuf JSON as a
	// string or []byte, or a value that encoding/json turns into that JSON. Nil: for
	// ValidateOrder, a valid order (customer c-42, two BOOK-001); for another method, the empty
	// message.
	Data any
	// Concurrency is the number of calls in flight at any time, all on one connection (default 1).
	Concurrency int
	// Duration is how long new calls start (required).
	Duration time.Duration
	// MeasurePID, when set, is the server's process: its CPU time during the load is reported as
	// Result.ServerCPU, read from /proc.
	MeasurePID int
}

// GRPCLoad calls a unary method of the gRPC server at o.Target for o.Duration with
// o.Concurrency calls in flight on one connection, with ghz (github.com/bojand/ghz/runner) used
// as a library, and returns what ghz measured: Ops the calls answered OK, Errors the others,
// latencies from ghz's report (over at most its first 1,000,000 calls; ghz takes the sample at
// rank ⌊q·n⌋ as percentile q). Result.ClientCPU is this process's CPU time during the load, ghz's
// included.
//
// The method's descriptor comes from the Go types linked into the program
// (protoregistry.GlobalFiles: this package links orders/v1 and grpc.health.v1; for another
// service import its generated package) or, when they are not, from the server's reflection
// service.
func GRPCLoad(ctx context.Context, o GRPCLoadOptions) (Result, error) {
	if o.Method == "" {
		o.Method = ValidateOrder
	}
	o.Method = strings.TrimPrefix(o.Method, "/")
	if o.Data == nil && strings.ReplaceAll(o.Method, "/", ".") == strings.ReplaceAll(ValidateOrder, "/", ".") {
		o.Data = &ordersv1.ValidateOrderRequest{
			CustomerId: "c-42",
			Items:      []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 2}},
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	res := Result{Name: fmt.Sprintf("gRPC %s at %s, %d concurrent calls on 1 connection, ghz", o.Method, o.Target, o.Concurrency)}
	switch {
	case o.Target == "":
		return res, errors.New("ceiling: GRPCLoadOptions.Target is empty")
	case o.Duration <= 0:
		return res, errors.New("ceiling: GRPCLoadOptions.Duration must be positive")
	}
	opts := []runner.Option{
		runner.WithInsecure(true),
		runner.WithConcurrency(uint(o.Concurrency)),
		runner.WithConnections(1),
		runner.WithRunDuration(o.Duration),
		// A stop lets the calls in flight finish, rather than closing the connection under them
		// ("close", ghz's default, counts them as errors).
		runner.WithDurationStopAction("wait"),
		// The request is fixed: no template to execute per call.
		runner.WithDisableTemplateFuncs(true),
		runner.WithDisableTemplateData(true),
		runner.WithTimeout(20 * time.Second),
		runner.WithDialTimeout(10 * time.Second),
	}
	if set, ok := protosetFor(o.Method); ok {
		opts = append(opts, runner.WithProtosetBinary(set))
	}
	dataOpt, err := ghzData(o.Data)
	if err != nil {
		return res, err
	}
	opts = append(opts, dataOpt)

	cfg, err := runner.NewConfig(o.Method, o.Target, opts...)
	if err != nil {
		return res, fmt.Errorf("ceiling: ghz: %w", err)
	}
	// runner.NewRequester and Stop rather than runner.Run, which also takes SIGINT from the whole
	// process and changes GOMAXPROCS while it runs.
	req, err := runner.NewRequester(cfg)
	if err != nil {
		return res, fmt.Errorf("ceiling: ghz %s at %s: %w", o.Method, o.Target, err)
	}
	cpu := startCPU(o.MeasurePID)
	finished := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		select {
		case <-t.C:
			req.Stop(runner.ReasonTimeout)
		case <-ctx.Done():
			req.Stop(runner.ReasonCancel)
		case <-finished: // Run ended on its own: an error before any call
		}
	}()
	rep, err := req.Run()
	close(finished)
	<-stopped
	cpu.stop()
	res.ServerCPU, res.ClientCPU = cpu.server, cpu.selfCPU
	if rep != nil {
		fillFromGHZ(&res, rep)
	}
	if err != nil && res.Ops == 0 {
		return res, fmt.Errorf("ceiling: ghz %s at %s: %w", o.Method, o.Target, firstOf(err))
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("ceiling: gRPC load stopped early: %w", ctx.Err())
	}
	if res.Ops == 0 {
		return res, fmt.Errorf("ceiling: no call to %s at %s succeeded: %v", o.Method, o.Target, rep.ErrorDist)
	}
	return res, nil
}

// firstOf shortens an error that joins one error per failed call (ghz's) to its first one.
func firstOf(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 1 {
			return fmt.Errorf("%w (and %d more errors)", errs[0], len(errs)-1)
		}
	}
	return err
}

func fillFromGHZ(res *Result, rep *runner.Report) {
	var errs int64
	for _, n := range rep.ErrorDist {
		errs += int64(n)
	}
	res.Errors = errs
	res.Ops = int64(rep.Count) - errs //nolint:gosec // a count of calls
	res.Elapsed = rep.Total
	res.Avg, res.Max = rep.Average, rep.Slowest
	for _, l := range rep.LatencyDistribution {
		switch l.Percentage {
		case 50:
			res.P50 = l.Latency
		case 95:
			res.P95 = l.Latency
		case 99:
			res.P99 = l.Latency
		}
	}
}

// ghzData is the ghz option that sends data with every call.
func ghzData(data any) (runner.Option, error) {
	switch d := data.(type) {
	case nil:
		return runner.WithDataFromJSON("{}"), nil
	case proto.Message:
		b, err := proto.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("ceiling: marshal request: %w", err)
		}
		if len(b) == 0 { // ghz takes empty binary data for none at all
			return runner.WithDataFromJSON("{}"), nil
		}
		return runner.WithBinaryData(b), nil
	case string:
		return runner.WithDataFromJSON(d), nil
	case []byte:
		return runner.WithDataFromJSON(string(d)), nil
	default:
		return runner.WithData(d), nil
	}
}

// protosetFor is a serialized FileDescriptorSet holding the service of method and every file it
// imports, from the Go types linked into this program; ok is false when they are not.
func protosetFor(method string) ([]byte, bool) {
	svc := method
	if i := strings.LastIndexAny(method, "/."); i > 0 {
		svc = method[:i]
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, false
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(sd.ParentFile())
	b, err := proto.Marshal(set)
	if err != nil {
		return nil, false
	}
	return b, true
}
