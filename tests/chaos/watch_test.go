package chaos_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// probe is one answer of a polled endpoint.
type probe struct {
	at     time.Time // sent
	done   time.Time // answered, or given up on
	status int       // 0: no answer
	body   []byte
}

// watcher polls one endpoint every interval until stopped, keeping every answer.
type watcher struct {
	mu     sync.Mutex
	probes []probe
	cancel context.CancelFunc
	done   chan struct{}
}

func watch(addr, path string, every time.Duration) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			p := probe{at: time.Now()}
			if status, body, err := stack.Get(addr, path); err == nil {
				p.status, p.body = status, body
			}
			p.done = time.Now()
			w.mu.Lock()
			w.probes = append(w.probes, p)
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// between returns the probes taken in [from, to].
func (w *watcher) between(from, to time.Time) []probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []probe
	for _, p := range w.probes {
		if !p.at.Before(from) && !p.at.After(to) {
			out = append(out, p)
		}
	}
	return out
}

// firstNotOK returns when the endpoint first answered anything but 200 in [from, to].
func (w *watcher) firstNotOK(from, to time.Time) (time.Time, bool) {
	for _, p := range w.between(from, to) {
		if p.status != http.StatusOK {
			return p.at, true
		}
	}
	return time.Time{}, false
}

// stats is analytics' GET /v1/stats.
type stats struct {
	Orders       int64 `json:"orders"`
	RevenueCents int64 `json:"revenue_cents"`
	BySKU        map[string]struct {
		Quantity     int64 `json:"quantity"`
		RevenueCents int64 `json:"revenue_cents"`
	} `json:"by_sku"`
	Partitions []int `json:"partitions"`
}

func decodeStats(body []byte) (stats, error) {
	var s stats
	err := json.Unmarshal(body, &s)
	return s, err
}
