package bench

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// orderBody is the order every load sends: two lines, priced by the validator's catalog.
var orderBody = []byte(`{"customer_id":"c-bench","items":[{"sku":"BOOK-001","quantity":2},{"sku":"ELEC-001","quantity":1}]}`)

// attackResult is one closed-loop load against one front.
type attackResult struct {
	accepted int            // 201/202 answers
	failed   map[string]int // every other answer (status code or error), counted
	elapsed  time.Duration  // from the first request sent to the last answer received
	results  []*vegeta.Result
}

func (a attackResult) perSecond() float64 {
	if a.elapsed <= 0 {
		return 0
	}
	return float64(a.accepted) / a.elapsed.Seconds()
}

func (a attackResult) failures() int {
	n := 0
	for _, c := range a.failed {
		n += c
	}
	return n
}

// countPacer sends as fast as the workers are answered and stops after n requests: vegeta's
// closed loop (no rate) bounded by a count rather than a duration.
type countPacer struct{ n uint64 }

func (p countPacer) Pace(_ time.Duration, hits uint64) (time.Duration, bool) { return 0, hits >= p.n }
func (p countPacer) Rate(time.Duration) float64                              { return 0 }

// attack sends POST /v1/orders to addr from clients concurrent clients, each sending its next
// order as soon as the last was answered, for d (or, when d is 0, until n orders were sent).
// vegeta is the load tool: one keep-alive connection per client, every request bounded.
func attack(addr string, clients int, d time.Duration, n int) attackResult {
	target := vegeta.Target{
		Method: http.MethodPost,
		URL:    "http://" + addr + "/v1/orders",
		Body:   orderBody,
		Header: http.Header{"Content-Type": []string{"application/json"}},
	}
	attacker := vegeta.NewAttacker(
		vegeta.Workers(uint64(clients)), vegeta.MaxWorkers(uint64(clients)),
		vegeta.Connections(clients), vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true),
	)
	var pacer vegeta.Pacer = vegeta.Rate{}
	if d == 0 {
		pacer = countPacer{n: uint64(n)}
	}
	out := attackResult{failed: map[string]int{}}
	var first, last time.Time
	for r := range attacker.Attack(vegeta.NewStaticTargeter(target), pacer, d, "orders") {
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if end := r.End(); end.After(last) {
			last = end
		}
		switch {
		case r.Code == http.StatusAccepted || r.Code == http.StatusCreated:
			out.accepted++
		case r.Error != "":
			out.failed[r.Error]++
		default:
			out.failed[fmt.Sprint(r.Code)]++
		}
		out.results = append(out.results, r)
	}
	out.elapsed = last.Sub(first)
	return out
}

// latencies are the percentiles of the accepted orders of several loads together, the same
// requests the throughput counts.
type latencies struct{ p50, p95, p99 time.Duration }

func percentiles(loads []attackResult) latencies {
	var all []time.Duration
	for _, l := range loads {
		for _, r := range l.results {
			if r.Code == http.StatusAccepted || r.Code == http.StatusCreated {
				all = append(all, r.Latency)
			}
		}
	}
	if len(all) == 0 {
		return latencies{}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	// nearest rank: the smallest latency at least a fraction q of the requests did not exceed
	at := func(q float64) time.Duration { return all[max(0, int(math.Ceil(q*float64(len(all))))-1)] }
	return latencies{at(0.50), at(0.95), at(0.99)}
}
