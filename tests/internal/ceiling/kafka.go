package ceiling

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KafkaVersion is the version of Apache Kafka's tools that [KafkaProducerPerformance] runs: the
// broker's version (scripts/brokers.d/kafka/pom.xml), set in kafkatools/pom.xml.
const KafkaVersion = "4.3.1"

// kafkaToolsPOM declares org.apache.kafka:kafka-tools, resolved by mvn into the local Maven
// repository like the broker's jars.
//
//go:embed kafkatools/pom.xml
var kafkaToolsPOM []byte

// KafkaOptions configure [KafkaProducerPerformance].
type KafkaOptions struct {
	// Bootstrap is the broker's bootstrap servers, e.g. "127.0.0.1:9092".
	Bootstrap string
	// Topic is the topic to produce to. It is created with Partitions (replication factor 1)
	// and deleted afterwards, unless it already existed: then it is used as it is and kept.
	// Empty: a unique name.
	Topic string
	// Partitions of the topic when it is created (default 3).
	Partitions int
	// Records is how many records the tool sends (required).
	Records int
	// RecordSize is the size of each record's value in bytes (required).
	RecordSize int
	// WarmupRecords, when set, are the first records, left out of the figures: the tool's
	// --warmup-records, and the result is its steady-state summary of the Records-WarmupRecords
	// that follow (the JVM compiles the producer's hot code in the first seconds).
	WarmupRecords int
	// Linger is the producer's linger.ms (whole milliseconds; 0 sends as soon as possible).
	Linger time.Duration
	// Duration caps the tool's run: it is killed when it runs longer (0: only ctx does).
	Duration time.Duration
	// Props are more producer properties, "name=value", after acks=all,
	// enable.idempotence=true and linger.ms, e.g. "batch.size=65536".
	Props []string
	// Progress receives the tool's output as it comes, line by line: a progress line every
	// ReportingInterval, then the summary. Nil discards it.
	Progress io.Writer
	// ReportingInterval is the tool's --reporting-interval (default 1s; the tool's own is 5s).
	ReportingInterval time.Duration
	// MeasurePID, when set, is a process (e.g. the broker's) whose CPU time over the tool's run
	// (its whole process life) is reported as Result.ServerCPU, read from /proc.
	MeasurePID int
}

// KafkaProducerPerformance runs Apache Kafka's own producer benchmark,
// org.apache.kafka.tools.ProducerPerformance (kafka-producer-perf-test.sh) of Kafka
// [KafkaVersion], from the kafka-tools jars that mvn resolves, with
//
//	--bootstrap-server B --topic T --num-records N --record-size S --throughput -1
//	--command-property acks=all enable.idempotence=true linger.ms=L [Props...]
//
// (--command-property is what this version calls --producer-props, deprecated). The tool sends
// all records as fast as the producer takes them and measures each record from send() to its
// acknowledgement, so with a large Records most of the latency is time queued in the producer's
// buffer: the percentiles describe a flood, not one request. They come from the tool's summary
// line, whole milliseconds; Ops is the records acknowledged, Elapsed the tool's own time for
// them (Ops / its records/sec), Errors the exceptions it printed (one per failed record).
// Result.ClientCPU is the tool's JVM, start-up included. The topic is created first with
// Kafka's TopicCommand, from the same jars. Both need java (JAVA_HOME or PATH) and, the first
// time, mvn with access to Maven Central; the classpath is then kept in the user's cache
// directory. The tool is killed when ctx is done or o.Duration has passed: an error, no result.
func KafkaProducerPerformance(ctx context.Context, o KafkaOptions) (Result, error) {
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.ReportingInterval <= 0 {
		o.ReportingInterval = time.Second
	}
	switch {
	case o.Bootstrap == "":
		return Result{}, errors.New("ceiling: KafkaOptions.Bootstrap is empty")
	case o.Records <= 0:
		return Result{}, errors.New("ceiling: KafkaOptions.Records must be positive")
	case o.RecordSize <= 0:
		return Result{}, errors.New("ceiling: KafkaOptions.RecordSize must be positive")
	case o.WarmupRecords < 0 || o.WarmupRecords >= o.Records:
		return Result{}, errors.New("ceiling: KafkaOptions.WarmupRecords must be at least 0 and less than Records")
	case o.Linger < 0:
		return Result{}, errors.New("ceiling: KafkaOptions.Linger is negative")
	}
	ownTopic := o.Topic == ""
	if ownTopic {
		o.Topic = "ceiling.producer-perf." + randomSuffix()
	}
	linger := o.Linger.Milliseconds()
	res := Result{Name: fmt.Sprintf("Kafka %s ProducerPerformance, acks=all idempotent, linger.ms=%d, %d partitions, %d records of %d bytes",
		KafkaVersion, linger, o.Partitions, o.Records, o.RecordSize)}
	if o.WarmupRecords > 0 {
		res.Name += fmt.Sprintf(", the last %d after %d warm-up records", o.Records-o.WarmupRecords, o.WarmupRecords)
	}

	cp, err := kafkaToolsClasspath(ctx)
	if err != nil {
		return res, err
	}
	created, err := createTopic(ctx, cp, o.Bootstrap, o.Topic, o.Partitions)
	if err != nil {
		return res, err
	}
	if created {
		defer deleteTopic(ctx, cp, o.Bootstrap, o.Topic)
	}

	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	args := []string{"-cp", cp, "org.apache.kafka.tools.ProducerPerformance",
		"--bootstrap-server", o.Bootstrap,
		"--topic", o.Topic,
		"--num-records", strconv.Itoa(o.Records),
		"--record-size", strconv.Itoa(o.RecordSize),
		"--throughput", "-1",
		"--reporting-interval", strconv.FormatInt(o.ReportingInterval.Milliseconds(), 10),
		"--command-property", "acks=all", "enable.idempotence=true", "linger.ms=" + strconv.FormatInt(linger, 10),
	}
	args = append(args, o.Props...)
	if o.WarmupRecords > 0 {
		args = append(args, "--warmup-records", strconv.Itoa(o.WarmupRecords))
	}
	cmd := exec.CommandContext(runCtx, javaCommand(), args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	cmd.Stderr = cmd.Stdout // one stream, in the order the tool wrote it
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	cpu := startCPU(o.MeasurePID)
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("ceiling: start ProducerPerformance: %w", err)
	}
	var (
		summary *perfSummary
		tail    []string // the last lines, for errors
	)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(progress, line)
		if s, ok := parsePerfSummary(line); ok && s.steadyState == (o.WarmupRecords > 0) {
			summary = &s
		}
		if exceptionLine.MatchString(line) {
			res.Errors++
		}
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	werr := cmd.Wait()
	cpu.stop()
	res.ServerCPU = cpu.server
	if ps := cmd.ProcessState; ps != nil {
		res.ClientCPU = ps.UserTime() + ps.SystemTime()
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("ceiling: ProducerPerformance stopped: %w", ctx.Err())
	}
	if runCtx.Err() != nil {
		return res, fmt.Errorf("ceiling: ProducerPerformance killed after its cap of %s (%d records)", o.Duration, o.Records)
	}
	if werr != nil {
		return res, fmt.Errorf("ceiling: ProducerPerformance: %w\n%s", werr, strings.Join(tail, "\n"))
	}
	if summary == nil {
		return res, fmt.Errorf("ceiling: ProducerPerformance printed no summary line:\n%s", strings.Join(tail, "\n"))
	}
	summary.fill(&res)
	if res.Ops == 0 {
		return res, errors.New("ceiling: ProducerPerformance acknowledged no record")
	}
	return res, nil
}

// exceptionLine is the first line of an exception the tool prints, one per record that failed
// (its send callback prints the exception; Kafka's client errors carry no stack trace), e.g.
// "org.apache.kafka.common.errors.TimeoutException: Topic t not present in metadata after 60000 ms.".
var exceptionLine = regexp.MustCompile(`^[\w.$]+(Exception|Error)(: |$)`)

// perfSummary is ProducerPerformance's final line.
type perfSummary struct {
	steadyState         bool
	records             int64
	perSec              float64
	avg, max            float64 // ms
	p50, p95, p99, p999 int64   // ms
}

// perfSummaryLine matches the summary ProducerPerformance prints at the end (Stats.printTotal in
// Kafka 4.3), e.g.
//
//	50000 records sent, 17001.020061 records/sec (4.86 MB/sec), 960.13 ms avg latency, 1428.00 ms max latency, 965 ms 50th, 1368 ms 95th, 1414 ms 99th, 1428 ms 99.9th.
//
// With --warmup-records a second one follows, "N steady state records sent, ...". The progress
// lines stop after "max latency.".
var perfSummaryLine = regexp.MustCompile(`^(\d+)( steady state)? records sent, ([0-9.]+) records/sec \([0-9.]+ MB/sec\), ` +
	`([0-9.]+|NaN) ms avg latency, ([0-9.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$`)

func parsePerfSummary(line string) (perfSummary, bool) {
	m := perfSummaryLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return perfSummary{}, false
	}
	var s perfSummary
	var errs []error
	parseI := func(v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		errs = append(errs, err)
		return n
	}
	parseF := func(v string) float64 {
		f, err := strconv.ParseFloat(v, 64)
		errs = append(errs, err)
		return f
	}
	s.records = parseI(m[1])
	s.steadyState = m[2] != ""
	s.perSec = parseF(m[3])
	s.avg, s.max = parseF(m[4]), parseF(m[5])
	s.p50, s.p95, s.p99, s.p999 = parseI(m[6]), parseI(m[7]), parseI(m[8]), parseI(m[9])
	if errors.Join(errs...) != nil {
		return perfSummary{}, false
	}
	return s, true
}

func (s perfSummary) fill(r *Result) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	r.Ops = s.records
	if s.perSec > 0 {
		r.Elapsed = time.Duration(float64(s.records) / s.perSec * float64(time.Second))
	}
	r.Avg, r.Max = ms(s.avg), ms(s.max)
	r.P50, r.P95, r.P99 = ms(float64(s.p50)), ms(float64(s.p95)), ms(float64(s.p99))
}

// javaCommand is $JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH.
func javaCommand() string {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if p := filepath.Join(h, "bin", "java"); fileExists(p) {
			return p
		}
	}
	return "java"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var (
	classpathMu sync.Mutex
	classpath   string
)

// kafkaToolsClasspath is the classpath of kafka-tools and its dependencies. mvn resolves it
// once (offline first, online when a jar is missing from ~/.m2); the result is kept in the
// user's cache directory, keyed by the POM, for later processes.
func kafkaToolsClasspath(ctx context.Context) (string, error) {
	classpathMu.Lock()
	defer classpathMu.Unlock()
	if classpath != "" {
		return classpath, nil
	}
	sum := sha256.Sum256(kafkaToolsPOM)
	key := hex.EncodeToString(sum[:8])
	var cacheFile string
	if dir, err := os.UserCacheDir(); err == nil {
		cacheFile = filepath.Join(dir, "backend-prep", "kafka-tools-"+key+".classpath")
		if b, err := os.ReadFile(cacheFile); err == nil && classpathComplete(string(b)) {
			classpath = string(b)
			return classpath, nil
		}
	}
	tmp, err := os.MkdirTemp("", "ceiling-kafka-tools-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	pom := filepath.Join(tmp, "pom.xml")
	if err := os.WriteFile(pom, kafkaToolsPOM, 0o600); err != nil {
		return "", err
	}
	outFile := filepath.Join(tmp, "classpath")
	mvn := func(extra ...string) ([]byte, error) {
		args := append([]string{"-B", "-q", "-Dstyle.color=never", "-f", pom,
			"dependency:build-classpath", "-Dmdep.outputFile=" + outFile}, extra...)
		return exec.CommandContext(ctx, "mvn", args...).CombinedOutput()
	}
	if _, err := mvn("-o"); err != nil {
		if out, err := mvn(); err != nil {
			return "", fmt.Errorf("ceiling: mvn could not resolve org.apache.kafka:kafka-tools:%s: %w\n%s", KafkaVersion, err, out)
		}
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		return "", fmt.Errorf("ceiling: mvn wrote no classpath: %w", err)
	}
	cp := string(bytes.TrimSpace(b))
	if !classpathComplete(cp) {
		return "", fmt.Errorf("ceiling: mvn's classpath for kafka-tools names missing jars: %s", cp)
	}
	if cacheFile != "" && os.MkdirAll(filepath.Dir(cacheFile), 0o750) == nil {
		_ = os.WriteFile(cacheFile, []byte(cp), 0o600)
	}
	classpath = cp
	return cp, nil
}

// classpathComplete tells whether cp names kafka-tools and every jar it names exists.
func classpathComplete(cp string) bool {
	if !strings.Contains(cp, "kafka-tools-"+KafkaVersion+".jar") {
		return false
	}
	for _, jar := range filepath.SplitList(cp) {
		if !fileExists(jar) {
			return false
		}
	}
	return true
}

// createTopic creates the topic with Kafka's TopicCommand; created is false when it existed.
func createTopic(ctx context.Context, cp, bootstrap, topic string, partitions int) (created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, javaCommand(), "-cp", cp, "org.apache.kafka.tools.TopicCommand",
		"--bootstrap-server", bootstrap, "--create", "--topic", topic,
		"--partitions", strconv.Itoa(partitions), "--replication-factor", "1").CombinedOutput()
	switch {
	case err == nil:
		return true, nil
	case bytes.Contains(out, []byte("already exists")):
		return false, nil
	default:
		return false, fmt.Errorf("ceiling: create topic %s: %w\n%s", topic, err, out)
	}
}

// deleteTopic deletes the topic, within a minute, even when ctx is done.
func deleteTopic(ctx context.Context, cp, bootstrap, topic string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = exec.CommandContext(ctx, javaCommand(), "-cp", cp, "org.apache.kafka.tools.TopicCommand",
		"--bootstrap-server", bootstrap, "--delete", "--topic", topic).Run()
}
