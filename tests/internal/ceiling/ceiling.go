// Package ceiling measures the ceilings a system benchmark compares the order system to: what
// each building block can do on this machine with nothing of the system around it.
//
//   - [RabbitMQConfirm]: publishers that each wait for the broker's confirm before publishing
//     again, as a request of order-api waits for its confirm;
//   - [KafkaProducerPerformance]: Apache Kafka's own producer benchmark
//     (org.apache.kafka.tools.ProducerPerformance) with acks=all and idempotence;
//   - [GRPCUnary]: grpc-go unary calls to a server that does nothing per call, in a process of
//     its own, loaded by ghz ([GRPCLoad] loads any unary method the same way).
//
// Every function runs against real brokers and servers and takes its time from its options, so
// it belongs in a benchmark or an integration test, never in a unit test.
package ceiling

import (
	"fmt"
	"math"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Result is one measured ceiling.
type Result struct {
	// Name says what was measured, e.g. "RabbitMQ publish+confirm, quorum queue, 64 publishers".
	Name string
	// Ops is the number of operations completed: messages confirmed, records acknowledged,
	// calls answered without error.
	Ops int64
	// Errors is the number of operations that failed (a nack, an RPC error); not in Ops.
	Errors int64
	// Elapsed is the time the operations took, from the first start to the last completion.
	Elapsed time.Duration
	// P50, P95, P99 are latency percentiles of one operation; zero when the tool does not give
	// them. Avg and Max likewise.
	P50, P95, P99 time.Duration
	Avg, Max      time.Duration
	// ServerPID is the process that served the load when this package started it (the gRPC
	// server of GRPCUnary), else 0. The process has exited when the function returns: its CPU
	// time over the run is in ServerCPU.
	ServerPID int
	// ServerCPU is the CPU time (user+system) the serving process used during the run: the
	// process of ServerPID, or the one the options' MeasurePID names. Zero when unknown. For
	// KafkaProducerPerformance "the run" is the tool's whole process life, longer than Elapsed
	// (the JVM starts and connects first): per operation (ServerCPUPerOp) it compares, per
	// second of Elapsed it does not.
	ServerCPU time.Duration
	// ClientCPU is the CPU time (user+system) of the load generator: the ProducerPerformance JVM
	// over its whole life (JVM start included), or, for the load generated in this process
	// (RabbitMQ publishers, ghz), this whole process during the run.
	ClientCPU time.Duration
}

// PerSecond is the throughput: Ops per second of Elapsed.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// ServerCPUPerOp is the server's CPU time per operation in microseconds, from ServerCPU; -1 when
// it is not known.
func (r Result) ServerCPUPerOp() float64 {
	if r.ServerCPU <= 0 || r.Ops <= 0 {
		return -1
	}
	return r.ServerCPU.Seconds() * 1e6 / float64(r.Ops)
}

// String is a one-line summary, e.g. for a benchmark's log.
func (r Result) String() string {
	s := fmt.Sprintf("%s: %d ops in %s = %.0f/s", r.Name, r.Ops, r.Elapsed.Round(time.Millisecond), r.PerSecond())
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors", r.Errors)
	}
	if r.P50 > 0 || r.P99 > 0 {
		s += fmt.Sprintf(", p50 %s p95 %s p99 %s", round(r.P50), round(r.P95), round(r.P99))
	}
	if r.ServerCPU > 0 {
		s += fmt.Sprintf(", server CPU %s (%.0f µs/op)", r.ServerCPU.Round(time.Millisecond), r.ServerCPUPerOp())
	}
	if r.ClientCPU > 0 {
		s += fmt.Sprintf(", client CPU %s", r.ClientCPU.Round(time.Millisecond))
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// latencies holds one sample per operation and gives exact percentiles.
type latencies []time.Duration

// fill sets r's percentiles, average and maximum from the samples.
func (l latencies) fill(r *Result) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	r.P50, r.P95, r.P99 = l.at(0.50), l.at(0.95), l.at(0.99)
	r.Avg = sum / time.Duration(len(l))
	r.Max = l[len(l)-1]
}

// at is the nearest-rank percentile q (0 < q <= 1) of sorted samples.
func (l latencies) at(q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(l)))) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// selfCPU is the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user+system) process pid used so far, from /proc/<pid>/stat; ok is
// false where there is no such file (another OS, a process that is gone).
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, false
	}
	st, err := p.Stat()
	if err != nil {
		return 0, false
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), true
}

// cpuMeter measures the CPU time a process and this process use between start and stop.
type cpuMeter struct {
	pid             int
	server0, self0  time.Duration
	serverOK        bool
	server, selfCPU time.Duration
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, self0: selfCPU()}
	m.server0, m.serverOK = procCPU(pid)
	return m
}

func (m *cpuMeter) stop() {
	m.selfCPU = selfCPU() - m.self0
	if m.serverOK {
		if s, ok := procCPU(m.pid); ok {
			m.server = s - m.server0
		}
	}
}
