package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load: a few clients placing orders the way order-api's README asks clients to: every
// order carries an Idempotency-Key, and a 503 (or no answer at all) is retried with the same
// key after Retry-After until it is accepted. So the orders that exist at the end are exactly
// those answered 202, and analytics and the notifier must count each of them once.

// clients is the load's concurrency: enough to keep order-api busy on a 2-core machine while
// the brokers recover, not so much that the box, not the fault, decides the figures.
const clients = 8

// orderDeadline bounds how long one order may be retried before the suite calls it lost.
const orderDeadline = 90 * time.Second

var skus = []string{"BOOK-001", "BOOK-002", "ELEC-001", "KTCH-001"}

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type order struct {
	CustomerID string `json:"customer_id"`
	Items      []item `json:"items"`
}

type acceptedItem struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	LineTotalCents int64  `json:"line_total_cents"`
}

type accepted struct {
	OrderID    string         `json:"order_id"`
	TotalCents int64          `json:"total_cents"`
	Items      []acceptedItem `json:"items"`
}

// answer is one response (or transport failure) the load saw.
type answer struct {
	at     time.Time // when the request was sent
	took   time.Duration
	status int // 0: no HTTP answer (connection refused, reset, timeout)
}

// ledger is what the clients saw, across every fault of the suite.
type ledger struct {
	mu       sync.Mutex
	orders   map[string]accepted // by order_id: every order answered 202
	answers  []answer
	problems []string // what a client must never see
	seq      atomic.Int64
}

func newLedger() *ledger { return &ledger{orders: map[string]accepted{}} }

func (l *ledger) record(a answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, a)
}

func (l *ledger) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// since returns the answers sent at or after t.
func (l *ledger) since(t time.Time) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if !a.at.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// answeredSince returns the answers that came (or failed) at or after t, including those to
// requests sent before it: the ones a fault at t caught in flight.
func (l *ledger) answeredSince(t time.Time) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if !a.at.Add(a.took).Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func (l *ledger) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.orders)
}

// load runs the clients until stop is called.
type load struct {
	api    string
	ledger *ledger
	run    string // makes this suite run's Idempotency-Keys unique
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startLoad(api string, l *ledger, run string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{api: api, ledger: l, run: run, cancel: cancel}
	for range clients {
		ld.wg.Go(func() {
			for ctx.Err() == nil {
				ld.place(l.seq.Add(1))
			}
		})
	}
	return ld
}

// stop lets every client finish the order it is placing (retrying it until it is accepted or
// orderDeadline passes), then returns.
func (ld *load) stop() {
	ld.cancel()
	ld.wg.Wait()
}

// place places order n, retrying with the same key until a 202.
func (ld *load) place(n int64) {
	o := order{
		CustomerID: "c-" + strconv.FormatInt(n%13, 10),
		Items: []item{
			{SKU: skus[n%int64(len(skus))], Quantity: 1 + int(n%5)},
			{SKU: skus[(n+1)%int64(len(skus))], Quantity: 1},
		},
	}
	body, err := json.Marshal(o)
	if err != nil {
		panic(err) // strings and ints only
	}
	key := fmt.Sprintf("chaos-%s-%d", ld.run, n)
	give := time.Now().Add(orderDeadline)
	for time.Now().Before(give) {
		a, header, raw := ld.post(body, key)
		ld.ledger.record(a)
		switch a.status {
		case 0:
			time.Sleep(100 * time.Millisecond) // order-api is restarting: try again shortly
		case http.StatusAccepted:
			var acc accepted
			if err := json.Unmarshal(raw, &acc); err != nil || acc.OrderID == "" {
				ld.ledger.problem("order %s: 202 with an unreadable body %q", key, raw)
				return
			}
			ld.ledger.mu.Lock()
			ld.ledger.orders[acc.OrderID] = acc
			ld.ledger.mu.Unlock()
			return
		case http.StatusServiceUnavailable:
			wait, err := strconv.Atoi(header.Get("Retry-After"))
			if err != nil || wait < 0 {
				ld.ledger.problem("order %s: 503 without a usable Retry-After (%q)", key, header.Get("Retry-After"))
				wait = 1
			}
			if ct := header.Get("Content-Type"); ct != "application/problem+json" {
				ld.ledger.problem("order %s: 503 with Content-Type %q, not a problem", key, ct)
			}
			time.Sleep(min(time.Duration(wait)*time.Second, time.Second))
		default:
			ld.ledger.problem("order %s: status %d %s", key, a.status, bytes.TrimSpace(raw))
			return
		}
	}
	ld.ledger.problem("order %s: not accepted within %s of retries", key, orderDeadline)
}

var client = &http.Client{Timeout: 15 * time.Second}

func (ld *load) post(body []byte, key string) (answer, http.Header, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ld.api+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		panic(err) // a constant method and a valid URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	a := answer{at: time.Now()}
	res, err := client.Do(req)
	if err != nil {
		a.took = time.Since(a.at)
		return a, nil, nil
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a.took, a.status = time.Since(a.at), res.StatusCode
	return a, res.Header, raw
}

// summary of a set of answers, for the report.
type summary struct {
	total, accepted, unavailable, noAnswer int
	p50, max                               time.Duration // of the 503s
}

func summarize(as []answer) summary {
	var s summary
	var lat []time.Duration
	for _, a := range as {
		s.total++
		switch a.status {
		case http.StatusAccepted:
			s.accepted++
		case http.StatusServiceUnavailable:
			s.unavailable++
			lat = append(lat, a.took)
		case 0:
			s.noAnswer++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		s.p50, s.max = lat[len(lat)/2], lat[len(lat)-1]
	}
	return s
}
