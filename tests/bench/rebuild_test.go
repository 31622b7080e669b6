package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// rebuildPartitions is the partition count of the services' topic (KAFKA_TOPIC_PARTITIONS).
const rebuildPartitions = 3

// runRebuild writes -rebuild OrderPlaced events, each a distinct order, into a topic of their
// own with labs/orderlog (order-api's encoding, key and headers; placing a million orders through
// the API would take a quarter of an hour), then times an analytics rebuilding its stats from them.
func runRebuild(b *testing.B, cfg settings, sys *system) rebuildResult {
	b.Helper()
	topic := "bench.rebuild." + sys.suffix
	b.Cleanup(func() { sys.deleteTopics(topic) })
	progress("writing %d events with labs/orderlog", cfg.rebuild)
	if err := sys.orderlog(10*time.Minute, "--topic", topic, "--partitions", strconv.Itoa(rebuildPartitions), "--count", strconv.Itoa(cfg.rebuild)); err != nil {
		b.Fatal(err)
	}
	r := timeAnalytics(b, sys, fmt.Sprintf("analytics, %d orders", cfg.rebuild), topic, cfg.rebuild)
	if r.orders != cfg.rebuild {
		b.Fatalf("analytics counted %d orders, %d were written", r.orders, cfg.rebuild)
	}
	printRebuilds([]rebuildResult{r})
	return r
}

// orderlog runs labs/orderlog (built once) against the system's Kafka, its output on stderr.
func (sys *system) orderlog(timeout time.Duration, args ...string) error {
	path := filepath.Join(sys.binDir, "orderlog")
	if _, err := os.Stat(path); err != nil {
		if err := stack.Build(stack.RepoRoot(), path, "./labs/orderlog"); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"--bootstrap", sys.kafka}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("labs/orderlog %v: %w", args, err)
	}
	return nil
}

// deleteTopics deletes topics of the run, best effort: a broker gone by now has nothing to keep.
func (sys *system) deleteTopics(topics ...string) {
	for _, t := range topics {
		if err := sys.orderlog(time.Minute, "--topic", t, "--delete"); err != nil {
			progress("could not delete topic %s: %v", t, err)
		}
	}
}
