package bench

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// frontResult is one front at one concurrency, over every round.
type frontResult struct {
	front   string
	clients int
	rounds  []attackResult
	cpu     cpuSeconds // over every round, by watched process
	lat     latencies
	rss     map[string]int // after the load at the highest concurrency, bytes
	anon    map[string]int // the anonymous part of rss
}

func (r frontResult) accepted() int {
	n := 0
	for _, a := range r.rounds {
		n += a.accepted
	}
	return n
}

// perSecond is the mean of the rounds' throughputs: each round is timed on its own, so the time
// the other configurations spent between them does not count.
func (r frontResult) perSecond() float64 {
	if len(r.rounds) == 0 {
		return 0
	}
	sum := 0.0
	for _, a := range r.rounds {
		sum += a.perSecond()
	}
	return sum / float64(len(r.rounds))
}

// spread is the lowest and highest round throughput.
func (r frontResult) spread() (float64, float64) {
	lo, hi := r.rounds[0].perSecond(), r.rounds[0].perSecond()
	for _, a := range r.rounds[1:] {
		lo, hi = min(lo, a.perSecond()), max(hi, a.perSecond())
	}
	return lo, hi
}

func (r frontResult) failures() map[string]int {
	out := map[string]int{}
	for _, a := range r.rounds {
		for k, v := range a.failed {
			out[k] += v
		}
	}
	return out
}

// cpuPerOrder is the CPU time process spent per accepted order, in µs; -1 when unknown.
func (r frontResult) cpuPerOrder(process string) float64 {
	v, ok := r.cpu[process]
	if !ok || r.accepted() == 0 {
		return -1
	}
	return v * 1e6 / float64(r.accepted())
}

// runFronts loads every front at every concurrency. Within a round the fronts take turns
// (A B C A B C), so that drift of the box — a broker compacting, the page cache, a neighbour —
// falls on all of them alike; each front gets a warm-up before its first measured round.
//
// CPU per order counts what an order costs, not what the processes spend anyway: each round is
// charged the CPU its processes spent from its start until the consumers caught up with its
// orders, minus what they spend idle over the same time (measured once, before the rounds).
func runFronts(b *testing.B, cfg settings, sys *system) []frontResult {
	b.Helper()
	idle := sys.idleRates(cfg.warmUp + time.Second)
	var out []frontResult
	top := maxClients(cfg)
	for _, clients := range cfg.clients {
		results := make([]frontResult, len(sys.fronts))
		for i, f := range sys.fronts {
			results[i] = frontResult{front: f.name, clients: clients, cpu: cpuSeconds{}}
		}
		for round := range cfg.rounds {
			for i, f := range sys.fronts {
				if round == 0 && cfg.warmUp > 0 {
					attack(f.addr, clients, cfg.warmUp, 0)
					sys.waitConsumersIdle()
				}
				ps := sys.watch(f)
				start, before := time.Now(), sample(ps)
				a := attack(f.addr, clients, cfg.round, 0)
				if clients == top && round == cfg.rounds-1 {
					results[i].rss, results[i].anon = sys.rssAfterLoad(f)
				}
				sys.waitConsumersIdle()
				spent := sample(ps).since(before)
				idle.subtract(spent, f, time.Since(start))
				results[i].cpu.add(spent)
				if f.proc != nil && !f.proc.Running() {
					b.Fatalf("%s exited under load:\n%s", f.name, f.proc.Tail(30))
				}
				if a.accepted == 0 {
					b.Fatalf("%s accepted no order in %s at %d clients: %v", f.name, cfg.round, clients, a.failed)
				}
				progress("%d client(s), round %d/%d, %-28s %7.0f orders/s, %d failed", clients, round+1, cfg.rounds, f.name, a.perSecond(), a.failures())
				results[i].rounds = append(results[i].rounds, a)
			}
		}
		for i := range results {
			results[i].lat = percentiles(results[i].rounds)
			for j := range results[i].rounds {
				results[i].rounds[j].results = nil // keep the memory of the bench small
			}
		}
		out = append(out, results...)
	}
	printFronts(cfg, out)
	return out
}

// idleCPU is the CPU each watched process spends per second of wall time with no load: the
// fronts' own by front name, the shared processes' by their name.
type idleCPU struct {
	front  map[string]float64
	shared map[string]float64
}

// idleRates measures idleCPU over window, every process at once.
func (sys *system) idleRates(window time.Duration) idleCPU {
	sys.waitConsumersIdle()
	var ps []watched
	for _, f := range sys.fronts {
		for _, p := range sys.watch(f) {
			if p.name == "front" {
				p.name = "front " + f.name
			}
			ps = append(ps, p)
		}
	}
	start, before := time.Now(), sample(ps)
	time.Sleep(window)
	spent, secs := sample(ps).since(before), time.Since(start).Seconds()
	out := idleCPU{front: map[string]float64{}, shared: map[string]float64{}}
	for name, v := range spent {
		if f, ok := strings.CutPrefix(name, "front "); ok {
			out.front[f] = v / secs
		} else {
			out.shared[name] = v / secs
		}
	}
	return out
}

// subtract takes from spent, the CPU of a round on f lasting d, what its processes would have
// spent idle; never below zero.
func (idle idleCPU) subtract(spent cpuSeconds, f *front, d time.Duration) {
	for name, v := range spent {
		rate := idle.shared[name]
		if name == "front" {
			rate = idle.front[f.name]
		}
		spent[name] = max(0, v-rate*d.Seconds())
	}
}

// waitConsumersIdle waits, at most 30 s, until the notifier and analytics have stopped handling
// messages: the orders of a round cost them CPU after the round's last answer, which belongs to
// that round and not to the next front's.
func (sys *system) waitConsumersIdle() {
	handled := func() (float64, bool) {
		n, err := handledByNotifier(sys.admin["notifier"])
		if err != nil {
			return 0, false
		}
		fams, err := metrics(sys.admin["analytics"])
		if err != nil {
			return 0, false
		}
		return n + counter(fams, "analytics_events_processed_total"), true
	}
	deadline := time.Now().Add(30 * time.Second)
	last, ok := handled()
	for ok && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		n, ok2 := handled()
		if !ok2 || n == last {
			return
		}
		last = n
	}
}

// rssAfterLoad is the resident memory of f and of the services, read right after the load, and
// its anonymous part.
func (sys *system) rssAfterLoad(f *front) (map[string]int, map[string]int) {
	all, anon := map[string]int{}, map[string]int{}
	for _, p := range sys.watch(f) {
		if p.name == "load" {
			continue
		}
		if v, a, err := memory(p); err == nil {
			all[p.name], anon[p.name] = v, a
		}
	}
	return all, anon
}

func printFronts(cfg settings, rs []frontResult) {
	fmt.Printf("\n== POST /v1/orders: %d×%s per front and concurrency, fronts alternating\n", cfg.rounds, cfg.round)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "front\tclients\torders/s\t(min–max)\tvs reference\tp50\tp95\tp99\tfailed\t")
	ref := map[int]frontResult{}
	for _, r := range rs {
		if r.front == "reference" {
			ref[r.clients] = r
		}
	}
	for _, r := range rs {
		lo, hi := r.spread()
		vs := "–"
		if rr, ok := ref[r.clients]; ok && rr.perSecond() > 0 {
			vs = fmt.Sprintf("%.2f", r.perSecond()/rr.perSecond())
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t(%.0f–%.0f)\t%s\t%s\t%s\t%s\t%d\t\n", r.front, r.clients, r.perSecond(), lo, hi, vs,
			ms(r.lat.p50), ms(r.lat.p95), ms(r.lat.p99), total(r.failures()))
	}
	_ = w.Flush()
	for _, r := range rs {
		if f := r.failures(); len(f) > 0 {
			keys := slices.Sorted(maps.Keys(f))
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%d× %s", f[k], k))
			}
			fmt.Printf("  %s at %d clients failed: %s\n", r.front, r.clients, strings.Join(parts, "; "))
		}
	}

	fmt.Printf("\n== CPU per accepted order, µs, by process: user+system time of each round until the consumers\n" +
		"   caught up, less what the process spends idle in that time, ÷ orders (from /proc, 10 ms ticks)\n")
	cols := []string{"front", "validator", "rabbitmq", "kafka", "notifier", "analytics", "load"}
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "front\tclients\t"+strings.Join(cols, "\t")+"\tall but load\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t", r.front, r.clients)
		sum := 0.0
		for _, c := range cols {
			v := r.cpuPerOrder(c)
			if v < 0 {
				fmt.Fprint(w, "–\t")
				continue
			}
			if c != "load" {
				sum += v
			}
			fmt.Fprintf(w, "%.0f\t", v)
		}
		fmt.Fprintf(w, "%.0f\t\n", sum)
	}
	_ = w.Flush()

	fmt.Printf("\n== Resident memory right after the load at %d clients (in brackets: anonymous, i.e. not the executable's pages)\n", maxClients(cfg))
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "while loading\tfront\tvalidator\tnotifier\tanalytics\t")
	for _, r := range rs {
		if r.rss == nil {
			continue
		}
		fmt.Fprintf(w, "%s\t", r.front)
		for _, c := range []string{"front", "validator", "notifier", "analytics"} {
			if v, ok := r.rss[c]; ok {
				if a := r.anon[c]; a > 0 {
					fmt.Fprintf(w, "%s (%s)\t", mib(v), mib(a))
				} else {
					fmt.Fprintf(w, "%s\t", mib(v))
				}
			} else {
				fmt.Fprint(w, "–\t")
			}
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
