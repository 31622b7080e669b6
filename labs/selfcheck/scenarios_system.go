package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

var retryDuplicates = scenario{
	name:  "retry-duplicates",
	step:  6,
	needs: "make run or make up (order-api)",
	title: "customers are charged twice after a timeout",
	symptom: "Some customers find two orders for one checkout, placed a fraction of a second apart. " +
		"They happen when the network between the checkout (labs/_workspace/retry-duplicates/main.go) " +
		"and order-api drops an answer. `make lab ARGS='check retry-duplicates'` runs the checkout " +
		"through a proxy to order-api that loses the answer to the first attempt.",
	hints: []string{
		"When an answer is lost, did the order get placed? The checkout cannot know, and tries again. What does order-api see?",
		"Each attempt is a new order to order-api: nothing says that the second is the first one again.",
		"order-api accepts an Idempotency-Key header: the same key (from the same customer) with the same order gets the same answer, and places nothing new. Page 06 shows it.",
		"Create one key per checkout, before the loop (e.g. uuid.NewString() from github.com/google/uuid), and send it on every attempt: req.Header.Set(\"Idempotency-Key\", key).",
	},
	inject:  func(context.Context, config) error { return copyIncident("retry-duplicates") },
	restore: func(context.Context, config) error { return removeIncident("retry-duplicates") },
	checks: codeChecks("retry-duplicates",
		behaviour{"one checkout places one order when an answer is lost", checkoutOnce},
	),
}

// lossyProxy forwards POST /v1/orders to order-api and loses order-api's answer to the first
// request: the order is placed, the client sees 504. It records the order_id order-api
// returned to each request.
type lossyProxy struct {
	orderAPI string
	client   *http.Client

	mu       sync.Mutex
	requests int
	orderIDs []string
	keys     []string
}

func (p *lossyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.orderAPI+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Idempotency-Key"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	res, err := p.client.Do(req)
	if err != nil {
		http.Error(w, "order-api: "+err.Error(), http.StatusBadGateway)
		return
	}
	answer, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		http.Error(w, "order-api: "+err.Error(), http.StatusBadGateway)
		return
	}
	var order struct {
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal(answer, &order) // a problem answer has none

	p.mu.Lock()
	p.requests++
	first := p.requests == 1
	if order.OrderID != "" {
		p.orderIDs = append(p.orderIDs, order.OrderID)
	}
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
	p.mu.Unlock()

	if first {
		http.Error(w, "upstream request timeout", http.StatusGatewayTimeout)
		return
	}
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(answer)
}

func checkoutOnce(ctx context.Context, cfg config, bin string) (string, error) {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	proxy := &lossyProxy{orderAPI: cfg.orderAPI, client: &http.Client{Timeout: callTimeout}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: callTimeout}
	served := make(chan struct{})
	go func() { // owned here: Close below ends it
		defer close(served)
		_ = srv.Serve(lis) // ErrServerClosed once closed
	}()
	defer func() {
		_ = srv.Close()
		<-served
	}()

	runCtx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(runCtx, bin, "--api", "http://"+lis.Addr().String())
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	printed := strings.TrimSpace(out.String())

	proxy.mu.Lock()
	ids, keys, requests := slices.Clone(proxy.orderIDs), slices.Clone(proxy.keys), proxy.requests
	proxy.mu.Unlock()
	distinct := slices.Compact(slices.Sorted(slices.Values(ids)))
	switch {
	case runErr != nil:
		return "", fmt.Errorf("the checkout failed: %w: %s", runErr, printed)
	case requests < 2:
		return "", fmt.Errorf("the checkout did not try again after the lost answer (%d request): %s", requests, printed)
	case len(distinct) > 1:
		return "", fmt.Errorf("one checkout placed %d orders (%s): each attempt after the lost answer was a new order to order-api",
			len(distinct), strings.Join(distinct, ", "))
	case len(distinct) == 0:
		return "", fmt.Errorf("order-api placed no order: %s", printed)
	case printed != "placed "+distinct[0]:
		return "", fmt.Errorf("the checkout printed %q, but the order placed is %s", printed, distinct[0])
	}
	return fmt.Sprintf("%d attempts, one order %s, under Idempotency-Key %s", requests, distinct[0], keys[0]), nil
}
