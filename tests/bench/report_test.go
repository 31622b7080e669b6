package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what the sections measured, for the ratios and goals printed last.
type report struct {
	ceilings  []ceilingResult
	fronts    []frontResult
	drains    []drainResult
	analytics rebuildResult
	rebuild   rebuildResult
}

// Goals of the system on a 2-core box, with brokers, services and load sharing it.
const (
	goalThroughput = 0.90             // order-api's orders/s ÷ the reference's, at the highest concurrency
	goalP99        = 1.5              // order-api's p99 ÷ the reference's
	goalRSS        = 40 << 20         // every service's resident memory after the load
	goalRebuild    = 10 * time.Second // analytics rebuilding 1,000,000 orders
	goalDrain      = 10 * time.Second // the notifier draining 10,000 queued orders
	goalRebuildN   = 1000000
	goalDrainN     = 10000
)

func (r report) front(name string, clients int) (frontResult, bool) {
	for _, f := range r.fronts {
		if f.front == name && f.clients == clients {
			return f, true
		}
	}
	return frontResult{}, false
}

func (r report) printGoals(cfg settings) {
	c := maxClients(cfg)
	r.printRatios(c)

	fmt.Printf("\n== Goals\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	line := func(goal, measured string, ok bool, known bool) {
		verdict := "met"
		switch {
		case !known:
			verdict = "not measured"
		case !ok:
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", goal, measured, verdict)
	}
	api, okAPI := r.front("order-api", c)
	ref, okRef := r.front("reference", c)
	if okAPI && okRef && ref.perSecond() > 0 && ref.lat.p99 > 0 {
		ratio := api.perSecond() / ref.perSecond()
		measured := fmt.Sprintf("%.0f vs %.0f/s: %.0f%%", api.perSecond(), ref.perSecond(), ratio*100)
		// The goal's line inside the rounds' spread: more rounds, or a quieter machine, decide.
		aLo, aHi := api.spread()
		rLo, rHi := ref.spread()
		if aHi >= goalThroughput*rLo && aLo < goalThroughput*rHi {
			measured += " (the rounds' ranges straddle the goal: within noise)"
		}
		line(fmt.Sprintf("order-api ≥ %.0f%% of the reference's orders/s at %d clients", goalThroughput*100, c),
			measured, ratio >= goalThroughput, true)
		p := float64(api.lat.p99) / float64(ref.lat.p99)
		line(fmt.Sprintf("order-api p99 ≤ %.1f× the reference's at %d clients", goalP99, c),
			fmt.Sprintf("%s vs %s: %.2f×", ms(api.lat.p99), ms(ref.lat.p99), p), p <= goalP99, true)
	} else {
		line("order-api against the reference", "needs the fronts section, order-api as shipped (no -linger, -channels, -log-levels)", false, false)
	}
	if okAPI && api.rss != nil {
		var parts []string
		ok := true
		for _, s := range []string{"front", "validator", "notifier", "analytics"} {
			v, found := api.rss[s]
			if !found {
				continue
			}
			name := s
			if s == "front" {
				name = "order-api"
			}
			parts = append(parts, fmt.Sprintf("%s %s", name, mib(v)))
			ok = ok && v <= goalRSS
		}
		line("every service ≤ 40 MiB resident after the load", strings.Join(parts, ", "), ok, true)
	} else {
		line("every service ≤ 40 MiB resident after the load", "needs the fronts section, order-api as shipped", false, false)
	}
	if r.rebuild.answered > 0 && r.rebuild.orders >= goalRebuildN {
		line("analytics rebuilds 1,000,000 orders ≤ 10 s", r.rebuild.answered.Round(time.Millisecond).String(), r.rebuild.answered <= goalRebuild, true)
	} else {
		line("analytics rebuilds 1,000,000 orders ≤ 10 s", fmt.Sprintf("needs -rebuild %d", goalRebuildN), false, false)
	}
	drainKnown := false
	for _, d := range r.drains {
		if d.messages >= goalDrainN && d.name == "notifier" {
			drainKnown = true
			line("the notifier drains 10,000 queued orders ≤ 10 s", d.drained.Round(time.Millisecond).String(), d.drained <= goalDrain, true)
		}
	}
	if !drainKnown {
		line("the notifier drains 10,000 queued orders ≤ 10 s", fmt.Sprintf("needs the consumers section, -backlog ≥ %d", goalDrainN), false, false)
	}
	_ = w.Flush()
}

// printRatios sets each system figure against the ceiling that bounds it.
func (r report) printRatios(clients int) {
	if len(r.ceilings) == 0 || len(r.fronts) == 0 {
		return
	}
	fmt.Printf("\n== Against the ceilings\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "figure\tper second\tceiling\tper second\tratio\t")
	kafka, hasKafka := r.ceiling("kafka", 0)
	for _, c := range slices.Compact([]int{min(1, clients), clients}) {
		for _, f := range r.fronts {
			if f.clients != c {
				continue
			}
			if rabbit, ok := r.ceiling("rabbitmq", c); ok {
				fmt.Fprintf(w, "%s, %d clients\t%.0f\t%s\t%.0f\t%.3f\t\n", f.front, c, f.perSecond(), rabbit.label, rabbit.PerSecond(), f.perSecond()/rabbit.PerSecond())
			}
			if hasKafka && c == clients {
				fmt.Fprintf(w, "%s, %d clients\t%.0f\t%s\t%.0f\t%.3f\t\n", f.front, c, f.perSecond(), kafka.label, kafka.PerSecond(), f.perSecond()/kafka.PerSecond())
			}
		}
		if v, ok := r.ceiling("validator", c); ok {
			if g, ok := r.ceiling("grpc", c); ok {
				fmt.Fprintf(w, "%s\t%.0f\t%s\t%.0f\t%.2f\t\n", v.label, v.PerSecond(), g.label, g.PerSecond(), v.PerSecond()/g.PerSecond())
			}
		}
	}
	_ = w.Flush()
}

func (r report) ceiling(kind string, clients int) (ceilingResult, bool) {
	for _, c := range r.ceilings {
		if c.kind == kind && c.clients == clients {
			return c, true
		}
	}
	return ceilingResult{}, false
}

func numCPU() int { return runtime.NumCPU() }

// metricName turns a front's name into a benchmark metric unit.
func metricName(front string) string {
	return strings.NewReplacer(" ", "_", "=", "").Replace(front)
}
