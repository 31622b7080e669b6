package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// watched is a process whose CPU time and memory the bench reads: from /proc when it runs here
// (pid), else from the process_* metrics of its /metrics (admin), as for a pod.
type watched struct {
	name  string
	pid   int
	admin string
}

// cpuSeconds is the user+system CPU time of each watched process, by name.
type cpuSeconds map[string]float64

// sample reads the CPU time of every process in ps; a process that is gone reads as missing.
func sample(ps []watched) cpuSeconds {
	out := cpuSeconds{}
	for _, p := range ps {
		switch {
		case p.pid > 0:
			if st, err := stat(p.pid); err == nil {
				out[p.name] = st.CPUTime()
			}
		case p.admin != "":
			if fams, err := metrics(p.admin); err == nil {
				if _, ok := fams["process_cpu_seconds_total"]; ok {
					out[p.name] = counter(fams, "process_cpu_seconds_total")
				}
			}
		}
	}
	return out
}

// memory is a watched process's resident memory and its anonymous part, in bytes; anon is 0 when
// only the total is known (from /metrics).
func memory(p watched) (all, anon int, err error) {
	if p.pid > 0 {
		if all, err = rss(p.pid); err != nil {
			return 0, 0, err
		}
		anon, err = rssAnon(p.pid)
		return all, anon, err
	}
	fams, err := metrics(p.admin)
	if err != nil {
		return 0, 0, err
	}
	f, ok := fams["process_resident_memory_bytes"]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, 0, fmt.Errorf("%s: no process_resident_memory_bytes", p.admin)
	}
	return int(f.GetMetric()[0].GetGauge().GetValue()), 0, nil
}

// since is the CPU time each process spent between before and c (read later).
func (c cpuSeconds) since(before cpuSeconds) cpuSeconds {
	out := cpuSeconds{}
	for name, v := range c {
		if b, ok := before[name]; ok {
			out[name] = v - b
		}
	}
	return out
}

func (c cpuSeconds) add(o cpuSeconds) {
	for name, v := range o {
		c[name] += v
	}
}

// rss is the resident set size of a process in bytes.
func rss(pid int) (int, error) {
	st, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return st.ResidentMemory(), nil
}

// rssAnon is the part of a process's resident memory that is its own (heap, stacks, buffers),
// not pages of files it maps (its executable's code among them), in bytes.
func rssAnon(pid int) (int, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int(st.RssAnon), nil //nolint:gosec // a process's memory fits an int on 64-bit Linux
}

func stat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// brokerPIDs are the RabbitMQ and Kafka processes of `make brokers` (scripts/brokers keeps their
// pid files in BROKERS_STATE_DIR, which `scripts/brokers env` exports). Brokers of another kind
// (a container, a remote host) are not watched: their columns stay empty.
func brokerPIDs() []watched {
	dir := os.Getenv("BROKERS_STATE_DIR")
	if dir == "" {
		return nil
	}
	var out []watched
	for _, name := range []string{"rabbitmq", "kafka"} {
		file := map[string]string{"rabbitmq": "rabbitmq/beam.pid", "kafka": "kafka/server.pid"}[name]
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if _, err := stat(pid); err == nil {
			out = append(out, watched{name: name, pid: pid})
		}
	}
	return out
}

// mib formats bytes as MiB.
func mib(b int) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
