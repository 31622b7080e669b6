package platform_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"github.com/tailscale/hujson"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// The dev container (.devcontainer/) is the course's machine for learners who have none: a
// Docker image with the course's tools, and Docker-in-Docker for `make up`. Nothing here can
// build or start it (no Docker), so its files are checked the way the rest of this package checks
// the platform: devcontainer.json against the dev container spec's JSON schema, the Dockerfile
// with BuildKit's parser, and every version the container pins against what the rest of the
// repository expects, so that a pin cannot drift from scripts/doctor, kind/cluster.yaml, the
// Tiltfile, go.mod or CI unnoticed.
//
// Every check returns the problems it found; TestDevcontainerChecksNotice feeds each one a broken
// input and proves that it notices.

const devcontainerDir = ".devcontainer"

// dcCourseTools are the commands the course has the learner run, each with a file of the repository
// that runs it: the container must install exactly these. The file keeps the list honest: a tool
// the course stops using makes this check fail, and then it leaves the container too.
var dcCourseTools = map[string]string{
	"go":              "docs/learn/README.md",
	"docker":          "docs/learn/01-docker.md",
	"kind":            "scripts/cluster-up",
	"kubectl":         "docs/learn/02-kubernetes.md",
	"tilt":            "Makefile",
	"grpcurl":         "docs/learn/05-grpc.md",
	"kcat":            "docs/learn/04-kafka.md",
	"jq":              "docs/learn/04-kafka.md",
	"curl":            "docs/learn/06-system.md",
	"file":            "docs/learn/01-docker.md",
	"java":            "scripts/brokers",
	"mvn":             "scripts/brokers",
	"rabbitmq-server": "scripts/brokers",
	"initdb":          "scripts/brokers",
	"musl-gcc":        "scripts/build-static",
}

// dcDebianCommands maps the Debian packages the container may install to the course command each
// provides (openjdk-N-jre-headless and friends: see dcJavaPackage).
var dcDebianCommands = map[string]string{
	"rabbitmq-server": "rabbitmq-server",
	"postgresql":      "initdb",
	"maven":           "mvn",
	"musl-tools":      "musl-gcc",
	"kcat":            "kcat",
	"jq":              "jq",
	"curl":            "curl",
	"file":            "file",
}

var dcJavaPackage = regexp.MustCompile(`^openjdk-(\d+)-(jre|jdk)(-headless)?$`)

// dcGoImage is the only base image the checks accept: the dev containers project's Go image, pinned
// to an image version, a Go minor version and a Debian release (its tag scheme, see
// devcontainers/images src/go/README.md), e.g. 2.1.5-1.26-bookworm.
var dcGoImage = regexp.MustCompile(`^mcr\.microsoft\.com/devcontainers/go:(\d+\.\d+\.\d+)-(\d+\.\d+)-([a-z]+)$`)

// The Feature that provides Docker, and the copy of its devcontainer-feature.json the options are
// checked against (testdata/devcontainer/SOURCES.md says where it comes from).
const (
	dindFeature            = "ghcr.io/devcontainers/features/docker-in-docker"
	dindFeatureFile        = "testdata/devcontainer/docker-in-docker.devcontainer-feature.json"
	devcontainerSchemaFile = "testdata/devcontainer/devContainer.base.schema.json"
)

// devcontainerConfig is the part of devcontainer.json the checks read.
type devcontainerConfig struct {
	Image string `json:"image"`
	Build struct {
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Features         map[string]map[string]any `json:"features"`
	Privileged       bool                      `json:"privileged"`
	HostRequirements struct {
		CPUs   int    `json:"cpus"`
		Memory string `json:"memory"`
	} `json:"hostRequirements"`
	ForwardPorts    []any `json:"forwardPorts"`
	PortsAttributes map[string]struct {
		Label string `json:"label"`
	} `json:"portsAttributes"`
	PostCreateCommand any               `json:"postCreateCommand"`
	RemoteEnv         map[string]string `json:"remoteEnv"`
}

// dcFeatureMeta is the part of a devcontainer-feature.json the checks read.
type dcFeatureMeta struct {
	ID         string `json:"id"`
	Version    string `json:"version"`
	Privileged bool   `json:"privileged"`
	Options    map[string]struct {
		Type string `json:"type"`
		Enum []any  `json:"enum"`
	} `json:"options"`
}

// devcontainerFacts is what the rest of the repository expects of the learner's machine.
type devcontainerFacts struct {
	MinKind, DoctorKind string            // scripts/doctor: MIN_KIND, KIND_VERSION (its install hint)
	MinTilt             string            // scripts/doctor: MIN_TILT
	TiltfileFloor       string            // the Tiltfile's version_settings(constraint=)
	NodeVersion         string            // kind/cluster.yaml: the node image's Kubernetes version
	GoVersion           string            // the Dockerfile's GO_VERSION: the Go of the images
	GoDirectives        map[string]string // go.work and every module's go.mod: the `go` line
	JavaMin             int               // scripts/brokers: the Java the Kafka broker needs
	CIPackages          []string          // .ci/run: the Debian packages CI tests with
	MakeTools           []string          // the Makefile's TOOLS: what `make tools` installs
	GoodMemGiB          int               // scripts/doctor: GOOD_DOCKER_MEM_GIB
	TiltUIPort          string            // scripts/doctor: TILT_UI_PORT
	ForwardedPorts      []string          // scripts/doctor: FORWARDED_PORTS (Tilt's port-forwards)
	Usage               map[string]string // dcCourseTools' files, by path
	Feature             dcFeatureMeta     // the docker-in-docker Feature's metadata
}

// devcontainer is .devcontainer as the checks see it.
type devcontainer struct {
	Config     devcontainerConfig
	Dockerfile *platform.Dockerfile
}

// dcParseJSONC reads devcontainer.json: JSON with comments (the spec's schema says
// "allowComments": true, "allowTrailingCommas": false). It returns standard JSON.
func dcParseJSONC(data []byte) ([]byte, error) {
	v, err := hujson.Parse(data)
	if err != nil {
		return nil, err
	}
	for node := range v.All() {
		var last *hujson.Value
		switch c := node.Value.(type) {
		case *hujson.Object:
			if n := len(c.Members); n > 0 {
				last = &c.Members[n-1].Value
			}
		case *hujson.Array:
			if n := len(c.Elements); n > 0 {
				last = &c.Elements[n-1]
			}
		}
		if last != nil && last.AfterExtra != nil {
			// hujson keeps a trailing comma as the last value's AfterExtra.
			line := 1 + bytes.Count(data[:last.EndOffset], []byte("\n"))
			return nil, fmt.Errorf("line %d: trailing comma (the dev container schema does not allow them)", line)
		}
	}
	v.Standardize()
	return v.Pack(), nil
}

// dcSchemaDoc parses devcontainer.json for the schema validator alone.
func dcSchemaDoc(t *testing.T, configJSON []byte) any {
	t.Helper()
	std, err := dcParseJSONC(configJSON)
	require.NoError(t, err, "parse devcontainer.json")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(std))
	require.NoError(t, err)
	return doc
}

// loadDevcontainer parses devcontainer.json and the Dockerfile it builds, given as contents so
// that the tests can feed broken versions.
func loadDevcontainer(t *testing.T, configJSON, dockerfile []byte) *devcontainer {
	t.Helper()
	std, err := dcParseJSONC(configJSON)
	require.NoError(t, err, "parse devcontainer.json")
	dc := &devcontainer{}
	require.NoError(t, json.Unmarshal(std, &dc.Config), "decode devcontainer.json")
	p := filepath.Join(t.TempDir(), "Dockerfile")
	require.NoError(t, os.WriteFile(p, dockerfile, 0o644))
	dc.Dockerfile, err = platform.ParseDockerfile(p)
	require.NoError(t, err)
	return dc
}

// devcontainerFiles returns devcontainer.json and the Dockerfile it names.
func devcontainerFiles(t *testing.T) (configJSON, dockerfile []byte) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), devcontainerDir)
	configJSON, err := os.ReadFile(filepath.Join(dir, "devcontainer.json"))
	require.NoError(t, err)
	std, err := dcParseJSONC(configJSON)
	require.NoError(t, err, "parse devcontainer.json")
	var cfg devcontainerConfig
	require.NoError(t, json.Unmarshal(std, &cfg))
	require.NotEmpty(t, cfg.Build.Dockerfile, "devcontainer.json builds no Dockerfile (build.dockerfile): the checks of its tools need one")
	dockerfile, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(cfg.Build.Dockerfile)))
	require.NoError(t, err, "the Dockerfile devcontainer.json builds")
	return configJSON, dockerfile
}

func compileDevcontainerSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(devcontainerSchemaFile)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	// The URL the spec's devContainer.schema.json refers to it by.
	const url = "https://raw.githubusercontent.com/devcontainers/spec/main/schemas/devContainer.base.schema.json"
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(url, doc))
	sch, err := c.Compile(url)
	require.NoError(t, err, "compile the dev container schema")
	return sch
}

// checkDevcontainerSchema validates devcontainer.json against the spec's schema.
func checkDevcontainerSchema(sch *jsonschema.Schema, doc any) []error {
	if err := sch.Validate(doc); err != nil {
		return []error{fmt.Errorf("devcontainer.json does not match the dev container schema: %w", err)}
	}
	return nil
}

func readDevcontainerFacts(t *testing.T) devcontainerFacts {
	t.Helper()
	root := repoRoot(t)
	f := devcontainerFacts{
		MinKind:        scriptSetting(t, "doctor", "MIN_KIND"),
		DoctorKind:     scriptSetting(t, "doctor", "KIND_VERSION"),
		MinTilt:        scriptSetting(t, "doctor", "MIN_TILT"),
		TiltUIPort:     scriptSetting(t, "doctor", "TILT_UI_PORT"),
		ForwardedPorts: strings.Fields(scriptSetting(t, "doctor", "FORWARDED_PORTS")),
		GoDirectives:   map[string]string{},
		Usage:          map[string]string{},
	}
	var err error
	f.GoodMemGiB, err = strconv.Atoi(scriptSetting(t, "doctor", "GOOD_DOCKER_MEM_GIB"))
	require.NoError(t, err, "scripts/doctor GOOD_DOCKER_MEM_GIB")

	f.TiltfileFloor, err = tiltfile(t).MinTilt()
	require.NoError(t, err)

	cluster, err := platform.ReadKindConfig(filepath.Join(root, "kind", "cluster.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, cluster.Nodes, "kind/cluster.yaml has no nodes")
	m := regexp.MustCompile(`^kindest/node:(v\d+\.\d+\.\d+)[@:]?`).FindStringSubmatch(cluster.Nodes[0].Image)
	require.NotNil(t, m, "kind/cluster.yaml: node image %q names no Kubernetes version", cluster.Nodes[0].Image)
	f.NodeVersion = m[1]

	d, err := platform.ParseDockerfile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	f.GoVersion = d.MetaArgs["GO_VERSION"]
	require.NotEmpty(t, f.GoVersion, "the Dockerfile sets no GO_VERSION")

	ws, err := platform.ReadWorkspace(root)
	require.NoError(t, err)
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	require.NoError(t, err)
	wf, err := modfile.ParseWork("go.work", work, nil)
	require.NoError(t, err)
	if wf.Go != nil {
		f.GoDirectives["go.work"] = wf.Go.Version
	}
	for _, dir := range slices.Concat(ws.Libs, ws.Services, ws.Other) {
		name := path.Join(dir, "go.mod")
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		require.NoError(t, err)
		mf, err := modfile.ParseLax(name, data, nil)
		require.NoError(t, err)
		if mf.Go != nil {
			f.GoDirectives[name] = mf.Go.Version
		}
	}

	brokers, err := os.ReadFile(filepath.Join(root, "scripts", "brokers"))
	require.NoError(t, err)
	m = regexp.MustCompile(`(?m)^java_min=(\d+)`).FindStringSubmatch(string(brokers))
	require.NotNil(t, m, "scripts/brokers sets no java_min")
	f.JavaMin, _ = strconv.Atoi(m[1])

	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	require.NoError(t, err)
	f.CIPackages = dcAptPackages(string(ci))
	require.NotEmpty(t, f.CIPackages, ".ci/run installs no Debian packages with apt-get install")

	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	m = regexp.MustCompile(`(?m)^TOOLS\s*:=(.*)$`).FindStringSubmatch(string(makefile))
	require.NotNil(t, m, "the Makefile sets no TOOLS")
	for _, tool := range strings.Fields(m[1]) {
		f.MakeTools = append(f.MakeTools, strings.TrimPrefix(tool, "$(BIN)/"))
	}

	for _, file := range dcCourseTools {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		require.NoError(t, err)
		f.Usage[file] = string(data)
	}

	meta, err := os.ReadFile(dindFeatureFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(meta, &f.Feature))
	return f
}

// dcAptPackages returns the packages of every `apt-get install` in a shell script (line
// continuations joined, options, redirections and comments left out).
func dcAptPackages(script string) []string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var pkgs []string
	for _, m := range regexp.MustCompile(`apt-get\s+install\s+([^\n;&|>#]*)`).FindAllStringSubmatch(script, -1) {
		for _, field := range strings.Fields(m[1]) {
			if !strings.HasPrefix(field, "-") {
				pkgs = append(pkgs, field)
			}
		}
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

// dcDockerfileArgs returns the ARGs of the Dockerfile's stages with their defaults.
func dcDockerfileArgs(d *platform.Dockerfile) map[string]string {
	args := maps.Clone(d.MetaArgs)
	for _, s := range d.Stages {
		for _, c := range s.Commands {
			if a, ok := c.(*instructions.ArgCommand); ok {
				for _, kv := range a.Args {
					args[kv.Key] = kv.ValueString()
				}
			}
		}
	}
	return args
}

func dcDockerfileRuns(d *platform.Dockerfile) []string {
	var runs []string
	for _, s := range d.Stages {
		for _, c := range s.Commands {
			if r, ok := c.(*instructions.RunCommand); ok {
				runs = append(runs, strings.Join(r.CmdLine, " "))
			}
		}
	}
	return runs
}

var (
	dcURL           = regexp.MustCompile(`https?://[^\s"'();|&]+`)
	dcChecksumURL   = regexp.MustCompile(`(?i)(\.sha(256|512)(sum)?|checksums?\.txt|sha(256|512)sums)$`)
	dcChecksumRun   = regexp.MustCompile(`\bsha(256|512)sum\s+(-c|--check)\b`)
	dcCurl          = regexp.MustCompile(`(?:^|[;&|(]\s*)curl((?:\s+-[-A-Za-z]*)*)`)
	dcCurlFail      = regexp.MustCompile(`(^|\s)(-[A-Za-z]*f[A-Za-z]*|--fail)(\s|$)`)
	dcPipedDownload = regexp.MustCompile(`\b(curl|wget)\b[^;&]*\|\s*(sudo\s+)?(sh|bash|tar|python3?)\b`)
	dcArgRef        = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	dcRelease       = regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)
	dcFloatingRef   = regexp.MustCompile(`(?i)\b(latest|stable\.txt|master|main|nightly)\b`)
	// An architecture name is allowed only as a case arm that maps the build machine's
	// architecture to a project's name for it: `amd64) arch=x86_64 ;;`.
	dcArchCaseArm = regexp.MustCompile(`\b(amd64|arm64|x86_64|aarch64)\)\s*[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_]+\s*;;`)
	dcArchName    = regexp.MustCompile(`\b(amd64|arm64|x86_64|x86-64|aarch64|x64|i386|armhf)\b`)
	dcInstallBin  = regexp.MustCompile(`\binstall\s+(?:-m\s+\d+\s+|-\S+\s+)*\S+\s+/usr/local/bin/([A-Za-z0-9_.-]+)`)
)

// checkDevcontainerDockerfile reports what would make the image differ between builds or
// machines: unpinned or unverified downloads, and anything that names a CPU architecture.
func checkDevcontainerDockerfile(d *platform.Dockerfile) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !strings.HasPrefix(d.Syntax, "docker/dockerfile:1") {
		fail("missing `# syntax=docker/dockerfile:1`")
	}
	for _, l := range d.Lint {
		fail("BuildKit lint: %s", l)
	}
	if len(d.Stages) != 1 {
		fail("%d stages: the dev container is one image, built FROM the Go dev container image", len(d.Stages))
	}
	args := dcDockerfileArgs(d)
	for _, s := range d.Stages {
		if s.Platform != "" {
			fail("FROM --platform=%s: the image must build natively on amd64 and arm64", s.Platform)
		}
		if image := dcArgRef.ReplaceAllStringFunc(s.BaseName, func(m string) string {
			if v, ok := args[dcArgRef.FindStringSubmatch(m)[1]]; ok {
				return v
			}
			return m
		}); !dcGoImage.MatchString(image) {
			fail("FROM %s: start from the dev containers Go image pinned to an image version, a Go minor version and a Debian release, e.g. mcr.microsoft.com/devcontainers/go:2.1.5-1.26-bookworm", image)
		}
	}
	for _, s := range d.Stages {
		for _, c := range s.Commands {
			var text string
			switch v := c.(type) {
			case *instructions.RunCommand:
				text = strings.Join(v.CmdLine, " ")
			case *instructions.ArgCommand:
				for _, kv := range v.Args {
					text += " " + kv.Key + "=" + kv.ValueString()
				}
			case *instructions.EnvCommand:
				for _, kv := range v.Env {
					text += " " + kv.Key + "=" + kv.Value
				}
			case *instructions.AddCommand:
				for _, src := range v.SourcePaths {
					if strings.Contains(src, "://") && v.Checksum == "" {
						fail("ADD %s without --checksum: the download would not be verified", src)
					}
				}
				continue
			default:
				continue
			}
			if m := dcArchName.FindString(dcArchCaseArm.ReplaceAllString(text, "")); m != "" {
				fail("%s names the architecture %q: derive it from `dpkg --print-architecture` (the image builds on amd64 and arm64)", c.Name(), m)
			}
		}
	}
	for _, run := range dcDockerfileRuns(d) {
		if m := dcPipedDownload.FindString(run); m != "" {
			fail("RUN pipes a download straight into a program (%q): save it, verify its checksum, then use it", m)
		}
		for _, m := range dcCurl.FindAllStringSubmatch(run, -1) {
			if !dcCurlFail.MatchString(m[1]) {
				fail("curl without -f/--fail (%q): an HTTP error page would be saved as the download", strings.TrimSpace(m[0]))
			}
		}
		var artifacts, sums []string
		for _, u := range dcURL.FindAllString(run, -1) {
			if dcChecksumURL.MatchString(u) {
				sums = append(sums, u)
			} else {
				artifacts = append(artifacts, u)
			}
		}
		for _, u := range slices.Concat(artifacts, sums) {
			if m := dcFloatingRef.FindString(u); m != "" {
				fail("%s: %q moves; download a pinned release", u, m)
			}
			pinned := false
			for _, ref := range dcArgRef.FindAllStringSubmatch(u, -1) {
				if v, ok := args[ref[1]]; ok && strings.HasSuffix(ref[1], "_VERSION") {
					if !dcRelease.MatchString(v) {
						fail("ARG %s=%s: pin an exact release (x.y.z)", ref[1], v)
					}
					pinned = true
				}
			}
			if !pinned {
				fail("%s names no pinned version: put the release in an ARG <TOOL>_VERSION and use it in the URL", u)
			}
		}
		for _, a := range artifacts {
			covered := slices.ContainsFunc(sums, func(s string) bool {
				return s == a+".sha256" || s == a+".sha256sum" || s == a+".sha512" || path.Dir(s) == path.Dir(a)
			})
			if !covered {
				fail("%s is downloaded without the checksum file its project publishes next to it", a)
			}
		}
		if len(artifacts) > 0 && !dcChecksumRun.MatchString(run) {
			fail("RUN downloads %s but never runs sha256sum --check on it", strings.Join(artifacts, ", "))
		}
		for _, m := range dcInstallBin.FindAllStringSubmatch(run, -1) {
			arg := strings.ToUpper(strings.ReplaceAll(m[1], "-", "_")) + "_VERSION"
			if _, ok := args[arg]; !ok {
				fail("RUN installs /usr/local/bin/%s without an ARG %s that pins its release", m[1], arg)
			}
		}
	}
	return errs
}

// devcontainerPins are the versions the dev container pins.
type devcontainerPins struct {
	ImageVersion, Go, Debian string // the base image tag's three parts
	Kind, Kubectl, Tilt      string // the Dockerfile's ARGs
	Java                     int    // openjdk-N
	Packages                 []string
}

func readDevcontainerPins(d *platform.Dockerfile) devcontainerPins {
	var p devcontainerPins
	if len(d.Stages) > 0 {
		if m := dcGoImage.FindStringSubmatch(d.BaseImage(d.Stages[len(d.Stages)-1].Name)); m != nil {
			p.ImageVersion, p.Go, p.Debian = m[1], m[2], m[3]
		}
	}
	args := dcDockerfileArgs(d)
	p.Kind, p.Kubectl, p.Tilt = args["KIND_VERSION"], args["KUBECTL_VERSION"], args["TILT_VERSION"]
	for _, run := range dcDockerfileRuns(d) {
		p.Packages = append(p.Packages, dcAptPackages(run)...)
	}
	slices.Sort(p.Packages)
	for _, pkg := range p.Packages {
		if m := dcJavaPackage.FindStringSubmatch(pkg); m != nil {
			p.Java, _ = strconv.Atoi(m[1])
		}
	}
	return p
}

func semverOf(version string) string { return "v" + strings.TrimPrefix(version, "v") }

// checkDevcontainerPins reports a pinned version that no longer fits the repository.
func checkDevcontainerPins(p devcontainerPins, f devcontainerFacts) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// Go: the images' Go (the Dockerfile's GO_VERSION), and new enough for every go line. The
	// image promises only Go <minor>.x, and keeps GOTOOLCHAIN=local from the golang image.
	switch {
	case p.Go == "":
		fail("the base image's tag names no Go version")
	case p.Go != f.GoVersion:
		fail("the dev container runs Go %s, the service images Go %s (Dockerfile GO_VERSION): use the same", p.Go, f.GoVersion)
	}
	for file, goLine := range f.GoDirectives {
		if p.Go != "" && semver.Compare(semverOf(goLine), semverOf(p.Go+".0")) > 0 {
			fail("%s says go %s, but the dev container's image promises only Go %s.0 or newer (with GOTOOLCHAIN=local): move the image to a newer Go", file, goLine, p.Go)
		}
	}
	// kind: the release scripts/doctor installs, which the node image was built for.
	switch {
	case !dcRelease.MatchString(p.Kind):
		fail("KIND_VERSION=%q is not a release", p.Kind)
	case semverOf(p.Kind) != semverOf(f.DoctorKind):
		fail("the dev container installs kind %s, scripts/doctor installs %s (KIND_VERSION): use the same release", p.Kind, f.DoctorKind)
	case semver.Compare(semverOf(p.Kind), semverOf(f.MinKind)) < 0:
		fail("the dev container installs kind %s, older than scripts/doctor's MIN_KIND=%s", p.Kind, f.MinKind)
	}
	// kubectl: within one minor version of the cluster's Kubernetes, either way.
	if !dcRelease.MatchString(p.Kubectl) {
		fail("KUBECTL_VERSION=%q is not a release", p.Kubectl)
	} else if skew := minorOf(p.Kubectl) - minorOf(f.NodeVersion); skew > 1 || skew < -1 || semver.Major(semverOf(p.Kubectl)) != semver.Major(semverOf(f.NodeVersion)) {
		fail("the dev container installs kubectl %s, outside the supported skew of the cluster's Kubernetes %s (kind/cluster.yaml): one minor version either way", p.Kubectl, f.NodeVersion)
	}
	// Tilt: at least what the doctor demands and what the Tiltfile's version_settings accept.
	if !dcRelease.MatchString(p.Tilt) {
		fail("TILT_VERSION=%q is not a release", p.Tilt)
	} else {
		if semver.Compare(semverOf(p.Tilt), semverOf(f.MinTilt)) < 0 {
			fail("the dev container installs Tilt %s, older than scripts/doctor's MIN_TILT=%s", p.Tilt, f.MinTilt)
		}
		if semver.Compare(semverOf(p.Tilt), semverOf(f.TiltfileFloor)) < 0 {
			fail("the dev container installs Tilt %s, older than the Tiltfile's version_settings floor %s", p.Tilt, f.TiltfileFloor)
		}
	}
	// Java: what the Kafka broker of scripts/brokers needs.
	if p.Java < f.JavaMin {
		fail("the dev container installs Java %d, scripts/brokers needs %d or newer (java_min)", p.Java, f.JavaMin)
	}
	// Debian packages: the ones CI tests with, no more, no fewer.
	for _, pkg := range p.Packages {
		if !slices.Contains(f.CIPackages, pkg) {
			fail("the dev container installs the Debian package %s, which CI does not (.ci/run): the course would run on something CI never tested", pkg)
		}
	}
	for _, pkg := range f.CIPackages {
		// CI's Docker engine is Debian's docker.io; the dev container's comes from the
		// docker-in-docker Feature, which checkDevcontainerConfig requires.
		if pkg == "docker.io" {
			continue
		}
		if !slices.Contains(p.Packages, pkg) {
			fail("CI installs the Debian package %s (.ci/run), the dev container does not", pkg)
		}
	}
	return errs
}

func minorOf(version string) int {
	parts := strings.Split(strings.TrimPrefix(version, "v"), ".")
	if len(parts) < 2 {
		return -100
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -100
	}
	return n
}

// dcCommandStrings flattens a lifecycle command (string, array, or object of either).
func dcCommandStrings(c any) []string {
	switch c := c.(type) {
	case string:
		return []string{c}
	case []any:
		var parts []string
		for _, p := range c {
			parts = append(parts, fmt.Sprint(p))
		}
		return []string{strings.Join(parts, " ")}
	case map[string]any:
		var all []string
		for _, k := range slices.Sorted(maps.Keys(c)) {
			all = append(all, dcCommandStrings(c[k])...)
		}
		return all
	}
	return nil
}

var (
	dcMemory     = regexp.MustCompile(`^(\d+)([tgmk]b)?$`) // the schema's pattern for sizes
	dcFeatureTag = regexp.MustCompile(`^\d+(\.\d+){0,2}$`)
	dcMakeTools  = regexp.MustCompile(`(^|[;&|]\s*)make tools\b`)
)

// checkDevcontainerConfig reports what in devcontainer.json would leave the course short of
// Docker, memory, ports or tools.
func checkDevcontainerConfig(c devcontainerConfig, f devcontainerFacts) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Image != "" || c.Build.Dockerfile == "" {
		fail("devcontainer.json must build its Dockerfile (build.dockerfile), not pull an image: the pins live there")
	}

	// Features: each pinned to a major version; Docker-in-Docker's options exist in its metadata.
	for ref, opts := range c.Features {
		id, tag, _ := strings.Cut(ref, ":")
		if !dcFeatureTag.MatchString(tag) {
			fail("Feature %s: pin a version (%s:<major>), not %q", ref, id, tag)
		}
		if id != dindFeature {
			fail("Feature %s: not one the course needs (only %s, for Docker)", ref, dindFeature)
			continue
		}
		if major := strings.Split(f.Feature.Version, ".")[0]; strings.Split(tag, ".")[0] != major {
			fail("Feature %s: the options are checked against version %s of its metadata (%s); update that copy with the pin", ref, f.Feature.Version, dindFeatureFile)
		}
		for name, val := range opts {
			o, ok := f.Feature.Options[name]
			if !ok {
				fail("Feature %s has no option %q (options: %s)", ref, name, strings.Join(slices.Sorted(maps.Keys(f.Feature.Options)), ", "))
				continue
			}
			_, isBool := val.(bool)
			_, isString := val.(string)
			if (o.Type == "boolean" && !isBool) || (o.Type == "string" && !isString) {
				fail("Feature %s: option %s is a %s, not %v", ref, name, o.Type, val)
			} else if len(o.Enum) > 0 && !slices.Contains(o.Enum, val) {
				fail("Feature %s: option %s=%v is not one of %v", ref, name, val, o.Enum)
			}
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Keys(c.Features)), func(ref string) bool {
		id, _, _ := strings.Cut(ref, ":")
		return id == dindFeature
	}) {
		fail("no %s Feature: `make up` needs Docker inside the container", dindFeature)
	}
	if !f.Feature.Privileged && !c.Privileged {
		fail("Docker-in-Docker needs a privileged container: the Feature no longer sets it, so set \"privileged\": true")
	}

	// Resources: kind, Kafka and the four services need the memory the doctor asks of Docker.
	if c.HostRequirements.CPUs < 4 {
		fail("hostRequirements.cpus is %d: the stack and image builds need 4", c.HostRequirements.CPUs)
	}
	if gib, err := dcMemoryGiB(c.HostRequirements.Memory); err != nil {
		fail("hostRequirements.memory: %v", err)
	} else if gib < float64(f.GoodMemGiB) {
		fail("hostRequirements.memory is %s: scripts/doctor wants %d GiB for Docker (GOOD_DOCKER_MEM_GIB)", c.HostRequirements.Memory, f.GoodMemGiB)
	}

	// Ports: the ones a learner opens in a browser, each one the platform serves and labelled.
	forwarded := map[string]bool{}
	for _, p := range c.ForwardPorts {
		port := fmt.Sprint(p)
		forwarded[port] = true
		if c.PortsAttributes[port].Label == "" {
			fail("forwarded port %s has no label (portsAttributes)", port)
		}
		if port != f.TiltUIPort && !slices.Contains(f.ForwardedPorts, port) {
			fail("forwarded port %s is neither the Tilt UI (%s) nor a port Tilt forwards (scripts/doctor FORWARDED_PORTS)", port, f.TiltUIPort)
		}
	}
	for _, want := range []string{f.TiltUIPort, "8080", "8081", "15672"} {
		if !forwarded[want] {
			fail("port %s is not forwarded (forwardPorts): the course opens it in a browser", want)
		}
	}

	// Tools: `make tools` installs grpcurl (and buf) at the Makefile's versions, into bin/.
	if !slices.ContainsFunc(dcCommandStrings(c.PostCreateCommand), func(s string) bool {
		return dcMakeTools.MatchString(s)
	}) {
		fail("postCreateCommand does not run `make tools`: grpcurl and buf would be missing")
	}
	if !strings.HasPrefix(c.RemoteEnv["PATH"], "${containerWorkspaceFolder}/bin:") {
		fail("remoteEnv.PATH does not start with ${containerWorkspaceFolder}/bin: the course runs grpcurl and buf from bin/ by name")
	}
	return errs
}

func dcMemoryGiB(s string) (float64, error) {
	m := dcMemory.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size like 8gb", s)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	scale := map[string]float64{"": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}[m[2]]
	return n * scale / (1 << 30), nil
}

// devcontainerTools returns the course commands the container provides, each with where from.
func devcontainerTools(dc *devcontainer, f devcontainerFacts) (map[string]string, []error) {
	tools := map[string]string{}
	var errs []error
	d := dc.Dockerfile
	if len(d.Stages) > 0 && dcGoImage.MatchString(d.BaseImage(d.Stages[len(d.Stages)-1].Name)) {
		tools["go"] = "the base image"
	}
	for ref := range dc.Config.Features {
		if strings.HasPrefix(ref, dindFeature+":") {
			tools["docker"] = "the Feature " + ref
		}
	}
	for _, pkg := range readDevcontainerPins(d).Packages {
		cmd, ok := dcDebianCommands[pkg]
		if dcJavaPackage.MatchString(pkg) {
			cmd, ok = "java", true
		}
		if !ok {
			errs = append(errs, fmt.Errorf("the dev container installs the Debian package %s, which provides no command the course uses", pkg))
			continue
		}
		tools[cmd] = "the Debian package " + pkg
	}
	for _, run := range dcDockerfileRuns(d) {
		for _, m := range dcInstallBin.FindAllStringSubmatch(run, -1) {
			tools[m[1]] = "a download to /usr/local/bin"
		}
	}
	if slices.ContainsFunc(dcCommandStrings(dc.Config.PostCreateCommand), dcMakeTools.MatchString) {
		for _, tool := range f.MakeTools {
			if _, ok := dcCourseTools[tool]; ok {
				tools[tool] = "make tools"
			}
		}
	}
	return tools, errs
}

// checkDevcontainerTools reports a course command the container lacks, one it installs that the
// course does not use, and a course command the repository no longer runs.
func checkDevcontainerTools(provided map[string]string, f devcontainerFacts) []error {
	var errs []error
	for _, tool := range slices.Sorted(maps.Keys(dcCourseTools)) {
		file := dcCourseTools[tool]
		used := regexp.MustCompile("(?m)(^\\s*|\\$ |[;&|(]\\s*|`|command -v )" + regexp.QuoteMeta(tool) + "(\\s|`|$)")
		if !used.MatchString(f.Usage[file]) {
			errs = append(errs, fmt.Errorf("%s no longer runs %s: if the course does not use it any more, drop it from the dev container and from dcCourseTools", file, tool))
		}
		if _, ok := provided[tool]; !ok {
			errs = append(errs, fmt.Errorf("the course runs %s (%s), the dev container does not install it", tool, file))
		}
	}
	for _, tool := range slices.Sorted(maps.Keys(provided)) {
		if _, ok := dcCourseTools[tool]; !ok {
			errs = append(errs, fmt.Errorf("the dev container installs %s (%s), which the course does not use", tool, provided[tool]))
		}
	}
	return errs
}

// checkDevcontainer runs every check on a dev container.
func checkDevcontainer(dc *devcontainer, f devcontainerFacts) []error {
	errs := checkDevcontainerConfig(dc.Config, f)
	errs = append(errs, checkDevcontainerDockerfile(dc.Dockerfile)...)
	errs = append(errs, checkDevcontainerPins(readDevcontainerPins(dc.Dockerfile), f)...)
	tools, toolErrs := devcontainerTools(dc, f)
	errs = append(errs, toolErrs...)
	return append(errs, checkDevcontainerTools(tools, f)...)
}

// devcontainer.json is valid for the dev container CLI, VS Code and Codespaces: the spec's schema
// (testdata/devcontainer/SOURCES.md says which copy) accepts it.
func TestDevcontainerSchema(t *testing.T) {
	configJSON, _ := devcontainerFiles(t)
	requireNoProblems(t, checkDevcontainerSchema(compileDevcontainerSchema(t), dcSchemaDoc(t, configJSON)))
}

// The dev container installs exactly the course's tools, at versions that fit the rest of the
// repository, each download pinned and verified, nothing tied to one CPU architecture.
func TestDevcontainerMatchesTheCourse(t *testing.T) {
	configJSON, dockerfile := devcontainerFiles(t)
	dc := loadDevcontainer(t, configJSON, dockerfile)
	requireNoProblems(t, checkDevcontainer(dc, readDevcontainerFacts(t)))
}

// Each check notices what it is there for: the real files, each broken in one way.
func TestDevcontainerChecksNotice(t *testing.T) {
	configJSON, dockerfile := devcontainerFiles(t)
	facts := readDevcontainerFacts(t)
	sch := compileDevcontainerSchema(t)

	// edit replaces old (which must occur) in s.
	edit := func(t *testing.T, s []byte, old, replacement string) []byte {
		t.Helper()
		require.Contains(t, string(s), old, "the mutation no longer applies: update the test")
		return bytes.Replace(s, []byte(old), []byte(replacement), 1)
	}

	t.Run("schema", func(t *testing.T) {
		cases := []struct{ name, old, new, want string }{
			{"unknown property", `"forwardPorts"`, `"forwardedPorts"`, "forwardedPorts"},
			{"memory not a size", `"memory": "8gb"`, `"memory": "8 GB"`, "/hostRequirements/memory"},
			{"cpus not a number", `"cpus": 4`, `"cpus": "4"`, "/hostRequirements/cpus"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				requireProblem(t, checkDevcontainerSchema(sch, dcSchemaDoc(t, edit(t, configJSON, tc.old, tc.new))), tc.want)
			})
		}
		t.Run("trailing comma", func(t *testing.T) {
			_, err := dcParseJSONC(edit(t, configJSON, `"remoteUser": "vscode"`, `"remoteUser": "vscode",`))
			require.ErrorContains(t, err, "trailing comma")
		})
	})

	t.Run("devcontainer.json", func(t *testing.T) {
		cases := []struct{ name, old, new, want string }{
			{"feature unpinned", dindFeature + ":4", dindFeature, "pin a version"},
			{"feature option unknown", `"dockerDashComposeVersion"`, `"dockerComposeVersion"`, `no option "dockerComposeVersion"`},
			{"feature option outside its enum", `"dockerDashComposeVersion": "none"`, `"dockerDashComposeVersion": "v3"`, "is not one of"},
			{"too few CPUs", `"cpus": 4`, `"cpus": 2`, "hostRequirements.cpus is 2"},
			{"too little memory", `"memory": "8gb"`, `"memory": "4gb"`, "scripts/doctor wants 8 GiB"},
			{"Tilt UI not forwarded", `[8080, 8081, 10350, 15672]`, `[8080, 8081, 15672]`, "port 10350 is not forwarded"},
			{"port without label", `"label": "analytics"`, `"label": ""`, "forwarded port 8081 has no label"},
			{"no make tools", `"postCreateCommand": "make tools"`, `"postCreateCommand": "go version"`, "does not run `make tools`"},
			{"bin not on PATH", `${containerWorkspaceFolder}/bin:`, ``, "remoteEnv.PATH"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dc := loadDevcontainer(t, edit(t, configJSON, tc.old, tc.new), dockerfile)
				requireProblem(t, checkDevcontainer(dc, facts), tc.want)
			})
		}
		t.Run("feature stops running privileged", func(t *testing.T) {
			f := facts
			f.Feature.Privileged = false
			dc := loadDevcontainer(t, configJSON, dockerfile)
			requireProblem(t, checkDevcontainer(dc, f), `set "privileged": true`)
		})
	})

	t.Run("Dockerfile", func(t *testing.T) {
		cases := []struct{ name, old, new, want string }{
			{"architecture hard-coded", `/bin/linux/${arch}/kubectl"`, `/bin/linux/amd64/kubectl"`, `names the architecture "amd64"`},
			{"checksum not checked", `sha256sum --check --strict "kind-linux-${arch}.sha256sum"`, `true`, "never runs sha256sum --check"},
			{"checksum not downloaded", `curl -fsSLo checksums.txt "https://github.com/tilt-dev/tilt/releases/download/v${TILT_VERSION}/checksums.txt"; `, ``, "without the checksum file"},
			{"version not pinned", `ARG KUBECTL_VERSION=v1.37.0`, `ARG KUBECTL_VERSION=latest`, "ARG KUBECTL_VERSION=latest: pin an exact release"},
			{"URL without version", `/dl/${KIND_VERSION}/kind-linux-${arch}"`, `/dl/v0.32.0/kind-linux-${arch}"`, "names no pinned version"},
			{"curl without -f", `curl -fsSLo kubectl "`, `curl -sSLo kubectl "`, "curl without -f"},
			{"piped into a shell", `cd "$(mktemp -d)"; \
    curl -fsSLo kubectl`, `curl -fsSL https://example.com/install-${KUBECTL_VERSION}.sh | sh; cd "$(mktemp -d)"; \
    curl -fsSLo kubectl`, "pipes a download straight into a program"},
			{"floating image", `go:2.1.5-1.26-bookworm`, `go:1.26`, "pinned to an image version"},
			{"platform pinned", `FROM mcr.microsoft.com`, `FROM --platform=linux/amd64 mcr.microsoft.com`, "FROM --platform=linux/amd64"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dc := loadDevcontainer(t, configJSON, edit(t, dockerfile, tc.old, tc.new))
				requireProblem(t, checkDevcontainer(dc, facts), tc.want)
			})
		}
	})

	t.Run("tools", func(t *testing.T) {
		cases := []struct{ name, old, new, want string }{
			{"a course tool missing", ` kcat file;`, ` file;`, "the course runs kcat"},
			{"a tool the course does not use", ` kcat file;`, ` kcat file htop;`, "htop, which provides no command the course uses"},
			{"docker missing", `"ghcr.io/devcontainers/features/docker-in-docker:4": {`, `"ghcr.io/devcontainers/features/git:1": {`, "the course runs docker"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, d := configJSON, dockerfile
				if strings.Contains(string(c), tc.old) {
					c = edit(t, c, tc.old, tc.new)
				} else {
					d = edit(t, d, tc.old, tc.new)
				}
				requireProblem(t, checkDevcontainer(loadDevcontainer(t, c, d), facts), tc.want)
			})
		}
		t.Run("the course stops using a tool", func(t *testing.T) {
			f := facts
			f.Usage = maps.Clone(facts.Usage)
			f.Usage["docs/learn/04-kafka.md"] = strings.ReplaceAll(f.Usage["docs/learn/04-kafka.md"], "kcat", "kafka-console-consumer")
			requireProblem(t, checkDevcontainer(loadDevcontainer(t, configJSON, dockerfile), f), "docs/learn/04-kafka.md no longer runs kcat")
		})
	})

	// The repository moves on; the container's pins must follow.
	t.Run("drift", func(t *testing.T) {
		dc := loadDevcontainer(t, configJSON, dockerfile)
		cases := []struct {
			name   string
			mutate func(*devcontainerFacts)
			want   string
		}{
			{"doctor installs another kind", func(f *devcontainerFacts) { f.DoctorKind = "v0.99.0" }, "scripts/doctor installs v0.99.0"},
			{"doctor needs a newer kind", func(f *devcontainerFacts) { f.MinKind = "0.40.0" }, "older than scripts/doctor's MIN_KIND=0.40.0"},
			{"doctor needs a newer Tilt", func(f *devcontainerFacts) { f.MinTilt = "0.99.0" }, "older than scripts/doctor's MIN_TILT=0.99.0"},
			{"the Tiltfile needs a newer Tilt", func(f *devcontainerFacts) { f.TiltfileFloor = "0.99.0" }, "older than the Tiltfile's version_settings floor 0.99.0"},
			{"the cluster moves two minors on", func(f *devcontainerFacts) { f.NodeVersion = "v1.39.0" }, "outside the supported skew of the cluster's Kubernetes v1.39.0"},
			{"the images move to another Go", func(f *devcontainerFacts) { f.GoVersion = "1.27" }, "the service images Go 1.27"},
			{"a module needs a Go patch release", func(f *devcontainerFacts) {
				f.GoDirectives = maps.Clone(f.GoDirectives)
				f.GoDirectives["go.work"] = "1.26.3"
			}, "go.work says go 1.26.3"},
			{"the brokers need a newer Java", func(f *devcontainerFacts) { f.JavaMin = 21 }, "scripts/brokers needs 21 or newer"},
			{"CI installs another package", func(f *devcontainerFacts) {
				f.CIPackages = append(slices.Clone(f.CIPackages), "netcat-openbsd")
			}, "CI installs the Debian package netcat-openbsd"},
			{"doctor wants more memory", func(f *devcontainerFacts) { f.GoodMemGiB = 12 }, "scripts/doctor wants 12 GiB"},
			{"Tilt stops forwarding a port", func(f *devcontainerFacts) {
				f.ForwardedPorts = slices.DeleteFunc(slices.Clone(f.ForwardedPorts), func(p string) bool { return p == "15672" })
			}, "forwarded port 15672 is neither the Tilt UI"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := facts
				tc.mutate(&f)
				requireProblem(t, checkDevcontainer(dc, f), tc.want)
			})
		}
	})
}
