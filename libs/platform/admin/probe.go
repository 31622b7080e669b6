package admin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// ProbeReady asks the admin server listening on addr (an ADMIN_ADDR such as ":9090") whether
// the service is ready: nil when GET /readyz answers 200, else an error with the status and
// the first line of the body, which names the failing checks. An address without a host, or
// with an unspecified one (0.0.0.0, ::), is probed on loopback: the probe runs next to the
// service, as a container's health check does. The request ends with ctx.
func ProbeReady(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return fmt.Errorf("GET %s: %s: %s", url, resp.Status, first)
}
