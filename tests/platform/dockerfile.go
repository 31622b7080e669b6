package platform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a Dockerfile parsed by BuildKit's own parser, the one `docker build`
// and Tilt use.
type Dockerfile struct {
	Path     string
	Syntax   string            // the `# syntax=` directive
	MetaArgs map[string]string // ARGs before the first FROM, with their defaults
	Stages   []instructions.Stage
	Lint     []string // BuildKit lint warnings found while parsing
}

// ParseDockerfile parses a Dockerfile into stages and instructions.
func ParseDockerfile(path string) (*Dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	result, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	d := &Dockerfile{Path: path, MetaArgs: map[string]string{}}
	d.Syntax, _, _, _ = parser.DetectSyntax(data)
	for _, w := range result.Warnings {
		d.Lint = append(d.Lint, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, _ []parser.Range) {
		d.Lint = append(d.Lint, rule+": "+msg)
	}})
	stages, metaArgs, err := instructions.Parse(result.AST, lint)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	d.Stages = stages
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			d.MetaArgs[kv.Key] = kv.ValueString()
		}
	}
	return d, nil
}

// Stage returns the stage with the given name (stage names are case-insensitive).
func (d *Dockerfile) Stage(name string) *instructions.Stage {
	for i := range d.Stages {
		if strings.EqualFold(d.Stages[i].Name, name) {
			return &d.Stages[i]
		}
	}
	return nil
}

// Chain returns the stages a target is built on, from the first FROM to the target.
func (d *Dockerfile) Chain(target string) []*instructions.Stage {
	var chain []*instructions.Stage
	for s := d.Stage(target); s != nil; s = d.Stage(s.BaseName) {
		if slices.Contains(chain, s) {
			break
		}
		chain = append([]*instructions.Stage{s}, chain...)
	}
	return chain
}

// BaseImage returns the image a target ultimately starts FROM, with ARG defaults
// expanded.
func (d *Dockerfile) BaseImage(target string) string {
	chain := d.Chain(target)
	if len(chain) == 0 {
		return ""
	}
	return d.expand(chain[0].BaseName)
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func (d *Dockerfile) expand(s string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := argRef.FindStringSubmatch(m)[1]
		if v, ok := d.MetaArgs[name]; ok {
			return v
		}
		return m
	})
}

// Commands returns the instructions of a target and the stages below it, in order.
func (d *Dockerfile) Commands(target string) []instructions.Command {
	var cmds []instructions.Command
	for _, s := range d.Chain(target) {
		cmds = append(cmds, s.Commands...)
	}
	return cmds
}

// User returns the user a target's image runs as: its last USER instruction.
func (d *Dockerfile) User(target string) string {
	user := ""
	for _, c := range d.Commands(target) {
		if u, ok := c.(*instructions.UserCommand); ok {
			user = u.User
		}
	}
	return user
}

// Runs returns the shell text of every RUN a target executes.
func (d *Dockerfile) Runs(target string) []string {
	var runs []string
	for _, c := range d.Commands(target) {
		if r, ok := c.(*instructions.RunCommand); ok {
			runs = append(runs, strings.Join(r.CmdLine, " "))
		}
	}
	return runs
}

// CopyDestinations returns where a target copies files from the build context.
func (d *Dockerfile) CopyDestinations(target string) []string {
	var dests []string
	for _, c := range d.Commands(target) {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From == "" {
			dests = append(dests, cp.DestPath)
		}
	}
	return dests
}

var touched = regexp.MustCompile(`\btouch\s+(\S+)`)

// TouchedFiles returns the files a target's RUN instructions create with touch.
func (d *Dockerfile) TouchedFiles(target string) []string {
	var files []string
	for _, run := range d.Runs(target) {
		for _, m := range touched.FindAllStringSubmatch(run, -1) {
			files = append(files, m[1])
		}
	}
	return files
}

// DockerfileRules are the promises the shared Dockerfile makes.
type DockerfileRules struct {
	// Targets that must exist and run as a numeric, non-root user.
	Targets []string
	// Final is the target whose image ships: it must start from a minimal base.
	Final string
	// Dev is the target Tilt runs: it compiles with the musl tag and a C toolchain.
	Dev string
	// ModFiles must be copied into every stage chain before it runs `go mod download`,
	// and before any source directory is copied.
	ModFiles []string
	// KafkaModule is the cgo Kafka client; the final binary must link it statically
	// against musl.
	KafkaModule string
}

// CheckDockerfile reports the promises a Dockerfile breaks.
func CheckDockerfile(d *Dockerfile, rules DockerfileRules) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !strings.HasPrefix(d.Syntax, "docker/dockerfile:1") {
		fail("missing `# syntax=docker/dockerfile:1` (BuildKit features such as cache mounts need it)")
	}
	for _, l := range d.Lint {
		fail("BuildKit lint: %s", l)
	}
	for _, s := range d.Stages {
		if d.Stage(s.BaseName) != nil {
			continue
		}
		image := d.expand(s.BaseName)
		if image != "scratch" && !strings.Contains(image, "@sha256:") && (!strings.Contains(lastPathElem(image), ":") || strings.HasSuffix(image, ":latest")) {
			fail("stage %q starts FROM %q: give it an explicit tag that is not latest", s.Name, image)
		}
		if s.Platform != "" && !strings.Contains(s.Platform, "$") {
			fail("stage %q pins --platform=%s: builds must stay native (amd64 and arm64)", s.Name, s.Platform)
		}
	}
	for _, c := range allCommands(d) {
		if text := commandText(c); strings.Contains(text, "GOARCH") {
			fail("%s sets GOARCH: builds must stay native (amd64 and arm64)", c.Name())
		}
	}
	for _, target := range rules.Targets {
		if d.Stage(target) == nil {
			fail("no %q target", target)
			continue
		}
		if err := nonRootUser(d.User(target)); err != nil {
			fail("target %q: %v", target, err)
		}
	}
	if d.Stage(rules.Dev) != nil {
		errs = append(errs, checkModuleLayer(d, rules.Dev, rules.ModFiles)...)
	}
	if final := d.Stage(rules.Final); final != nil {
		base := d.BaseImage(rules.Final)
		if base != "scratch" && !strings.Contains(base, "distroless") {
			fail("target %q starts from %q: use a minimal base (distroless or scratch)", rules.Final, base)
		}
		if !hasExecEntrypoint(d.Commands(rules.Final)) {
			fail("target %q has no exec-form ENTRYPOINT", rules.Final)
		}
		if from := binaryStage(final); from == "" {
			fail("target %q copies no binary from a build stage", rules.Final)
		} else {
			errs = append(errs, checkModuleLayer(d, from, rules.ModFiles)...)
			errs = append(errs, checkStaticKafka(d, from, rules.KafkaModule)...)
		}
	}
	if d.Stage(rules.Dev) != nil {
		runs := strings.Join(d.Runs(rules.Dev), "\n")
		if !regexp.MustCompile(`apk add[^\n]*\bgcc\b`).MatchString(runs) || !strings.Contains(runs, "musl-dev") {
			fail("target %q installs no C toolchain (gcc, musl-dev) for cgo", rules.Dev)
		}
		if !regexp.MustCompile(`go build[^\n]*-tags musl`).MatchString(runs) {
			fail("target %q does not build with -tags musl (confluent-kafka-go needs it on Alpine)", rules.Dev)
		}
		if !hasExecEntrypoint(d.Commands(rules.Dev)) {
			fail("target %q has no exec-form ENTRYPOINT", rules.Dev)
		}
	}
	return errs
}

func allCommands(d *Dockerfile) []instructions.Command {
	var cmds []instructions.Command
	for _, s := range d.Stages {
		cmds = append(cmds, s.Commands...)
	}
	return cmds
}

func commandText(c instructions.Command) string {
	switch v := c.(type) {
	case *instructions.RunCommand:
		return strings.Join(v.CmdLine, " ")
	case *instructions.EnvCommand:
		return fmt.Sprint(v.Env)
	case *instructions.ArgCommand:
		return fmt.Sprint(v.Args)
	}
	return ""
}

func lastPathElem(image string) string {
	return image[strings.LastIndex(image, "/")+1:]
}

func hasExecEntrypoint(cmds []instructions.Command) bool {
	var ep *instructions.EntrypointCommand
	for _, c := range cmds {
		if e, ok := c.(*instructions.EntrypointCommand); ok {
			ep = e
		}
	}
	return ep != nil && !ep.PrependShell && len(ep.CmdLine) > 0
}

// nonRootUser accepts "uid" or "uid:gid" with a numeric uid other than 0; a user name
// cannot be verified as non-root by Kubernetes (runAsNonRoot).
func nonRootUser(user string) error {
	if user == "" {
		return errors.New("no USER: the image would run as root")
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	if err != nil {
		return fmt.Errorf("USER %s is not numeric", user)
	}
	if n == 0 {
		return fmt.Errorf("USER %s is root", user)
	}
	return nil
}

// checkModuleLayer: every chain that downloads modules copies the module files first
// and copies no source directory before the download, so code edits keep the
// dependency layer cached.
func checkModuleLayer(d *Dockerfile, target string, modFiles []string) []error {
	var errs []error
	copied := map[string]bool{}
	sourceCopied := ""
	for _, c := range d.Commands(target) {
		switch v := c.(type) {
		case *instructions.CopyCommand:
			if v.From != "" {
				continue
			}
			for _, src := range v.SourcePaths {
				if strings.HasSuffix(src, "/") || !strings.Contains(lastPathElem(src), ".") {
					sourceCopied = src
				}
				copied[src] = true
			}
		case *instructions.RunCommand:
			if !strings.Contains(strings.Join(v.CmdLine, " "), "go mod download") {
				continue
			}
			for _, f := range modFiles {
				if !copied[f] {
					errs = append(errs, fmt.Errorf("target %q: %s is not copied before `go mod download`", target, f))
				}
			}
			if sourceCopied != "" {
				errs = append(errs, fmt.Errorf("target %q: copies %s before `go mod download`, so every code edit re-downloads modules", target, sourceCopied))
			}
			return errs
		}
	}
	return append(errs, fmt.Errorf("target %q never runs `go mod download` in a layer of its own", target))
}

// binaryStage returns the stage a target copies its binary from.
func binaryStage(target *instructions.Stage) string {
	var from string
	for _, c := range target.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			from = cp.From
		}
	}
	return from
}

// checkStaticKafka: the stage that produces the shipped binary links services that use
// the Kafka client statically against musl, and builds the others with cgo off.
func checkStaticKafka(d *Dockerfile, from, kafkaModule string) []error {
	runs := d.Runs(from)
	i := slices.IndexFunc(runs, func(r string) bool { return strings.Contains(r, kafkaModule) })
	if i < 0 {
		return []error{fmt.Errorf("build stage %q never checks for %s, so Kafka services are not linked statically", from, kafkaModule)}
	}
	var errs []error
	for _, want := range []string{"CGO_ENABLED=1", "-tags musl", "-linkmode external", `-extldflags "-static"`, "CGO_ENABLED=0"} {
		if !strings.Contains(runs[i], want) {
			errs = append(errs, fmt.Errorf("build stage %q: the release build lacks %s", from, want))
		}
	}
	return errs
}
