package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/backend-prep/backend-prep/tests/internal/ceiling"
)

// ceilingResult is one ceiling with the CPU its server spent per operation.
type ceilingResult struct {
	kind    string // "rabbitmq", "kafka", "grpc", "validator"
	label   string // short, for the ratios
	clients int
	ceiling.Result
	serverCPU float64 // µs per operation of the serving process; -1 when not known
}

// eventSize is about the size of one OrderPlaced event as order-api encodes it (protojson, two
// lines), the record size of the broker ceilings.
const eventSize = 330

// runCeilings measures what the order system's parts can do on their own on this box: RabbitMQ
// storing a confirmed message in a queue of the notifier's type, Kafka's own producer tool with
// order-api's producer settings, and a grpc-go server that does nothing, next to the validator.
func runCeilings(b *testing.B, cfg settings, sys *system) []ceilingResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var out []ceilingResult
	queues := cfg.queues
	if len(queues) == 0 {
		queues = []string{"quorum"}
	}
	for _, clients := range cfg.clients {
		for _, q := range queues {
			progress("ceiling: RabbitMQ publish+confirm, %s queue, %d publishers, %s", q, clients, cfg.round)
			r, err := ceiling.RabbitMQConfirm(ctx, ceiling.RabbitMQOptions{
				URL: sys.amqp, Publishers: clients, Duration: cfg.round, QueueType: q, BodySize: eventSize,
				MeasurePID: sys.brokerPID("rabbitmq"),
			})
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, ceilingResult{kind: "rabbitmq", label: fmt.Sprintf("RabbitMQ confirm, %s, %d publishers", q, clients),
				clients: clients, Result: r, serverCPU: r.ServerCPUPerOp()})
		}
	}

	lingers := cfg.linger
	if len(lingers) == 0 {
		lingers = []time.Duration{5 * time.Millisecond} // KAFKA_LINGER's default
	}
	// The tool's first seconds run slowly while the JVM warms up: they are sent, not counted.
	records, warmUp := 200000, 50000
	if cfg.quick {
		records, warmUp = 20000, 5000
	}
	if sys.cluster {
		// Kafka's tool needs Java here, and through a port-forward it would measure the forward.
		progress("ceiling: Kafka's ProducerPerformance runs with make bench on this machine, not against the cluster")
		lingers = nil
	}
	for _, l := range lingers {
		progress("ceiling: Kafka ProducerPerformance, %d records of %d bytes, acks=all, idempotent, linger %s", records, eventSize, l)
		r, err := ceiling.KafkaProducerPerformance(ctx, ceiling.KafkaOptions{
			Bootstrap: sys.kafka, Topic: "bench.ceiling." + sys.suffix, Partitions: rebuildPartitions,
			Records: records, WarmupRecords: warmUp, RecordSize: eventSize, Linger: l, Progress: os.Stderr,
			Props: []string{"compression.type=lz4"}, // as KAFKA_COMPRESSION
		})
		if err != nil {
			b.Fatal(err)
		}
		// No broker CPU per record: the warm-up records cost CPU but are not counted.
		out = append(out, ceilingResult{kind: "kafka", label: "Kafka ProducerPerformance, linger " + l.String(), Result: r, serverCPU: -1})
	}

	for _, clients := range cfg.clients {
		progress("ceiling: grpc-go unary, a server that does nothing, %d concurrent calls, %s", clients, cfg.round)
		r, err := ceiling.GRPCUnary(ctx, ceiling.GRPCOptions{Concurrency: clients, Duration: cfg.round})
		if err != nil {
			b.Fatal(err)
		}
		// The server process has exited when GRPCUnary returns: its CPU is what GRPCUnary read.
		out = append(out, ceilingResult{kind: "grpc", label: fmt.Sprintf("grpc-go no-op, %d calls", clients), clients: clients,
			Result: r, serverCPU: r.ServerCPUPerOp()})

		progress("the validator: ValidateOrder, %d concurrent calls, %s", clients, cfg.round)
		validator := watched{name: "validator", admin: sys.admin["validator"]}
		if !sys.cluster {
			validator.pid = sys.stack.Procs["validator"].Pid()
		}
		before := sample([]watched{validator})
		r, err = ceiling.GRPCLoad(ctx, ceiling.GRPCLoadOptions{
			Target: sys.grpcAddr, Concurrency: clients, Duration: cfg.round,
		})
		if err != nil {
			b.Fatal(err)
		}
		spent, known := sample([]watched{validator}).since(before)["validator"]
		if !known {
			spent = -1
		}
		out = append(out, ceilingResult{kind: "validator", label: fmt.Sprintf("validator ValidateOrder, %d calls", clients), clients: clients,
			Result: r, serverCPU: perOp(spent, r.Ops)})
	}
	printCeilings(out)
	return out
}

func perOp(cpuSeconds float64, ops int64) float64 {
	if ops == 0 || cpuSeconds < 0 {
		return -1
	}
	return cpuSeconds * 1e6 / float64(ops)
}

func printCeilings(rs []ceilingResult) {
	fmt.Printf("\n== Ceilings: each part on its own, on this box\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "what\tops/s\tp50\tp95\tp99\tserver CPU µs/op\t")
	for _, r := range rs {
		cpu := "–"
		if r.serverCPU >= 0 {
			cpu = fmt.Sprintf("%.0f", r.serverCPU)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%s\t%s\t\n", r.Name, r.PerSecond(), ms(r.P50), ms(r.P95), ms(r.P99), cpu)
	}
	_ = w.Flush()
}
