package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// The Tiltfile runs here against a recording stand-in for the Tilt builtins it uses.
// Each builtin takes the parameters Tilt documents (https://docs.tilt.dev/api.html), by
// the same names; an unknown builtin or keyword is an error, as it would be in Tilt.
// Instead of building and deploying, the stand-in records what the Tiltfile asked for,
// renders kustomize() with the kustomize API, and TiltRun.Check cross-checks the lot.
//
// What the real Tilt rejects, the stand-in rejects where it can know it offline: an
// unknown builtin or keyword, a builtin or keyword newer than the Tilt release
// version_settings lets run the file (tiltversion.go), an extension loaded from anywhere
// but a pinned commit of tilt-dev/tilt-extensions, and an extension function called with
// an argument its signature at that commit does not take.
//
// What it cannot know, and who checks it instead:
//   - whether the pinned tilt-extensions commit exists upstream, and what the extensions'
//     code does at it: that needs the network. Bumping the ref means evaluating the
//     Tiltfile with a real Tilt (`tilt alpha tiltfile-result`), as docs/platform.md
//     ("Pinned versions") asks, and the ref must be listed there (a test checks that).
//   - whether the images it pulls exist in their registries, and build;
//   - what Tilt's own kustomize (`kubectl kustomize` of the learner's kubectl) renders,
//     where it differs from the kustomize API used here;
//   - whether the cluster admits the objects, and whether a live update really
//     rebuilds and restarts the process: only `make up` shows that.

// TiltOptions configures one execution of a Tiltfile.
type TiltOptions struct {
	// Dir is the directory relative paths resolve against; Tilt uses the Tiltfile's.
	// Empty means the Tiltfile's directory.
	Dir string
	// Flags are the Tiltfile args (`tilt up -- --flag`): bool, string or []string
	// values for settings the Tiltfile defines with config.define_*.
	Flags map[string]any
}

// ImageBuild is one docker_build (or docker_build_with_restart) call.
type ImageBuild struct {
	Ref         string
	Context     string // absolute
	Dockerfile  string // absolute
	Target      string
	BuildArgs   map[string]string
	Only        []string // relative to Context
	Ignore      []string
	Entrypoint  []string
	LiveUpdate  []LiveUpdateStep
	WithRestart bool   // built through the restart_process extension
	RestartFile string // the file the extension's wrapper watches
}

// LiveUpdateStep is one fall_back_on, sync or run step.
type LiveUpdateStep struct {
	Kind     string   // "fall_back_on", "sync" or "run"
	Local    string   // sync: absolute local path
	Remote   string   // sync: container path
	Command  string   // run
	Triggers []string // run: absolute paths; fall_back_on: the files
}

// PortForward is a forward from localhost:Local to the pod's Container port.
type PortForward struct {
	Local     int
	Container int
	Name      string
	LinkPath  string
}

// Link is a URL shown with a resource in the Tilt UI.
type Link struct {
	URL  string
	Name string
}

// K8sResourceCall is one k8s_resource call.
type K8sResourceCall struct {
	Workload     string
	NewName      string
	PortForwards []PortForward
	ResourceDeps []string
	Objects      []string
	Labels       []string
	Links        []Link
	Manual       bool
	AutoInit     bool
}

// LocalResource is one local_resource call.
type LocalResource struct {
	Name         string
	Cmd          string
	ServeCmd     string
	Deps         []string // absolute
	ResourceDeps []string
	Labels       []string
	Manual       bool
	AutoInit     bool
}

// Button is one cmd_button (uibutton extension) call.
type Button struct {
	Name     string
	Resource string
	Location string
	Text     string
	Argv     []string
	// Inputs are the button's form fields; Tilt passes each value to the command in an
	// environment variable named after the input.
	Inputs []ButtonInput
	// RequiresConfirmation asks for a second click.
	RequiresConfirmation bool
}

// ButtonInput is one form field of a button: a choice_input (uibutton extension).
type ButtonInput struct {
	Name    string
	Label   string
	Choices []string
}

// ExtensionRepo is one v1alpha1.extension_repo call.
type ExtensionRepo struct {
	Name string
	URL  string
	Ref  string
}

// ExtensionLoad is one load('ext://…'), with the default repository as it was declared
// when the load ran (nil if it was not).
type ExtensionLoad struct {
	Name string
	Repo *ExtensionRepo
}

// PathRef is a local path the Tiltfile refers to, and what for.
type PathRef struct {
	Path string // absolute
	Use  string
}

// TiltRun is what a Tiltfile asked Tilt to do.
type TiltRun struct {
	Dir            string
	Images         []ImageBuild
	Objects        []Object
	K8sResources   []K8sResourceCall
	LocalResources []LocalResource
	Buttons        []Button
	ExtensionRepos []ExtensionRepo
	Extensions     []ExtensionLoad
	Paths          []PathRef
	Printed        []string
	// VersionConstraint is version_settings(constraint=), the oldest Tilt the file
	// accepts; Uses is every builtin and keyword argument it called, as "name(kw=)".
	VersionConstraint string
	Uses              []string
	Warnings          []string
}

// ExecTiltfile runs a Tiltfile against the recording stand-in.
func ExecTiltfile(path string, opts TiltOptions) (*TiltRun, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Tiltfile: %w", err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", dir, err)
	}
	s := &standIn{run: &TiltRun{Dir: dir}, flags: opts.Flags, defined: map[string]string{}}
	thread := &starlark.Thread{
		Name:  "Tiltfile",
		Print: func(_ *starlark.Thread, msg string) { s.run.Printed = append(s.run.Printed, msg) },
		Load:  s.load,
	}
	// The dialect options Tilt enables: top-level if/for, while, sets, recursion.
	fileOpts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	if _, err := starlark.ExecFileOptions(fileOpts, thread, path, src, s.predeclared()); err != nil {
		var evalErr *starlark.EvalError
		if errors.As(err, &evalErr) {
			return s.run, fmt.Errorf("%s", evalErr.Backtrace())
		}
		return s.run, err
	}
	return s.run, nil
}

type standIn struct {
	run     *TiltRun
	flags   map[string]any
	defined map[string]string // config setting name -> type
	parsed  bool
}

// value is an opaque Tilt object (a port_forward, a live update step, a blob…).
type value struct {
	kind    string
	payload any
}

func (v *value) String() string        { return fmt.Sprintf("<%s>", v.kind) }
func (v *value) Type() string          { return v.kind }
func (v *value) Freeze()               {}
func (v *value) Truth() starlark.Bool  { return starlark.True }
func (v *value) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: %s", v.kind) }

type blob struct{ objects []Object }

func (s *standIn) predeclared() starlark.StringDict {
	b := func(name string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, s.recordUse(fn))
	}
	return starlark.StringDict{
		"struct":              starlark.NewBuiltin("struct", starlarkstruct.Make),
		"fail":                b("fail", builtinFail),
		"warn":                b("warn", s.warn),
		"version_settings":    b("version_settings", s.versionSettings),
		"update_settings":     b("update_settings", ignore("max_parallel_updates?", "k8s_upsert_timeout_secs?", "suppress_unused_image_warnings?", "k8s_server_side_apply?")),
		"ci_settings":         b("ci_settings", ignore("k8s_grace_period?", "timeout?", "readiness_timeout?")),
		"watch_settings":      b("watch_settings", ignore("ignore")),
		"allow_k8s_contexts":  b("allow_k8s_contexts", ignore("contexts")),
		"docker_build":        b("docker_build", s.dockerBuild),
		"k8s_yaml":            b("k8s_yaml", s.k8sYAML),
		"kustomize":           b("kustomize", s.kustomize),
		"k8s_resource":        b("k8s_resource", s.k8sResource),
		"local_resource":      b("local_resource", s.localResource),
		"port_forward":        b("port_forward", portForward),
		"link":                b("link", link),
		"sync":                b("sync", s.sync),
		"run":                 b("run", s.runStep),
		"fall_back_on":        b("fall_back_on", s.fallBackOn),
		"TRIGGER_MODE_AUTO":   &value{kind: "trigger_mode", payload: "auto"},
		"TRIGGER_MODE_MANUAL": &value{kind: "trigger_mode", payload: "manual"},
		"config": &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
			"define_bool":        b("config.define_bool", s.define("bool")),
			"define_string":      b("config.define_string", s.define("string")),
			"define_string_list": b("config.define_string_list", s.define("string_list")),
			"parse":              b("config.parse", s.parse),
			"tilt_subcommand":    starlark.String("up"),
			"main_dir":           starlark.String(s.run.Dir),
			"main_path":          starlark.String(filepath.Join(s.run.Dir, "Tiltfile")),
		}},
		"v1alpha1": &starlarkstruct.Module{Name: "v1alpha1", Members: starlark.StringDict{
			"extension_repo": b("v1alpha1.extension_repo", s.extensionRepo),
			"extension":      b("v1alpha1.extension", ignore("name", "labels?", "annotations?", "repo_name?", "repo_path?", "args?")),
		}},
		"os": &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
			"name": starlark.String("posix"),
			"path": &starlarkstruct.Module{Name: "os.path", Members: starlark.StringDict{
				"exists":   b("os.path.exists", s.exists),
				"join":     b("os.path.join", pathJoin),
				"basename": b("os.path.basename", pathFunc(filepath.Base)),
				"dirname":  b("os.path.dirname", pathFunc(filepath.Dir)),
			}},
		}},
	}
}

// recordUse wraps a builtin so that each call records the builtin and its keyword
// arguments in TiltRun.Uses, for the version floor check.
func (s *standIn) recordUse(fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		s.use(b.Name() + "()")
		for _, kv := range kw {
			if k, ok := starlark.AsString(kv[0]); ok {
				s.use(b.Name() + "(" + k + "=)")
			}
		}
		return fn(th, b, pos, kw)
	}
}

func (s *standIn) use(what string) {
	if !slices.Contains(s.run.Uses, what) {
		s.run.Uses = append(s.run.Uses, what)
	}
}

func (s *standIn) versionSettings(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "check_updates?", "constraint?")
	if err != nil {
		return nil, err
	}
	s.run.VersionConstraint, err = asString(b.Name(), "constraint", a["constraint"])
	return starlark.None, err
}

// args maps positional and keyword arguments onto parameter names; a name ending in
// "?" is optional. Unknown or repeated arguments are errors, as in Tilt.
func args(fn string, positional starlark.Tuple, kwargs []starlark.Tuple, params ...string) (map[string]starlark.Value, error) {
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = strings.TrimSuffix(p, "?")
	}
	got := map[string]starlark.Value{}
	if len(positional) > len(names) {
		return nil, fmt.Errorf("%s: got %d positional arguments, want at most %d", fn, len(positional), len(names))
	}
	for i, v := range positional {
		got[names[i]] = v
	}
	for _, kv := range kwargs {
		key := string(kv[0].(starlark.String))
		if !slices.Contains(names, key) {
			return nil, fmt.Errorf("%s: unexpected keyword argument %q", fn, key)
		}
		if _, dup := got[key]; dup {
			return nil, fmt.Errorf("%s: got multiple values for %q", fn, key)
		}
		got[key] = kv[1]
	}
	for i, p := range params {
		if !strings.HasSuffix(p, "?") {
			if _, ok := got[names[i]]; !ok {
				return nil, fmt.Errorf("%s: missing argument %q", fn, names[i])
			}
		}
	}
	return got, nil
}

func ignore(params ...string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		_, err := args(b.Name(), pos, kw, params...)
		return starlark.None, err
	}
}

func builtinFail(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "msg")
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("fail: %s", str(a["msg"]))
}

func (s *standIn) warn(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "msg")
	if err != nil {
		return nil, err
	}
	s.run.Warnings = append(s.run.Warnings, str(a["msg"]))
	return starlark.None, nil
}

// str returns a string argument's value, or its printed form for other values.
func str(v starlark.Value) string {
	if v == nil || v == starlark.None {
		return ""
	}
	if s, ok := starlark.AsString(v); ok {
		return s
	}
	return v.String()
}

func asString(fn, name string, v starlark.Value) (string, error) {
	if v == nil || v == starlark.None {
		return "", nil
	}
	s, ok := starlark.AsString(v)
	if !ok {
		return "", fmt.Errorf("%s: %s must be a string, got %s", fn, name, v.Type())
	}
	return s, nil
}

// asStrings accepts None, a string, or a list or tuple of strings.
func asStrings(fn, name string, v starlark.Value) ([]string, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	if s, ok := starlark.AsString(v); ok {
		return []string{s}, nil
	}
	iter, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%s: %s must be a string or a list of strings, got %s", fn, name, v.Type())
	}
	var out []string
	it := iter.Iterate()
	defer it.Done()
	var x starlark.Value
	for it.Next(&x) {
		s, ok := starlark.AsString(x)
		if !ok {
			return nil, fmt.Errorf("%s: %s must hold strings, got %s", fn, name, x.Type())
		}
		out = append(out, s)
	}
	return out, nil
}

func asBool(fn, name string, v starlark.Value, def bool) (bool, error) {
	if v == nil {
		return def, nil
	}
	b, ok := v.(starlark.Bool)
	if !ok {
		return false, fmt.Errorf("%s: %s must be a bool, got %s", fn, name, v.Type())
	}
	return bool(b), nil
}

func asValues(v starlark.Value) []starlark.Value {
	if v == nil || v == starlark.None {
		return nil
	}
	if _, ok := starlark.AsString(v); ok {
		return []starlark.Value{v}
	}
	if iter, ok := v.(starlark.Iterable); ok {
		var out []starlark.Value
		it := iter.Iterate()
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			out = append(out, x)
		}
		return out
	}
	return []starlark.Value{v}
}

func (s *standIn) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(s.run.Dir, p)
}

func (s *standIn) ref(p, use string) string {
	a := s.abs(p)
	s.run.Paths = append(s.run.Paths, PathRef{Path: a, Use: use})
	return a
}

// ---- config -----------------------------------------------------------------------

func (s *standIn) define(kind string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		a, err := args(b.Name(), pos, kw, "name", "args?", "usage?")
		if err != nil {
			return nil, err
		}
		name, err := asString(b.Name(), "name", a["name"])
		if err != nil {
			return nil, err
		}
		s.defined[name] = kind
		return starlark.None, nil
	}
}

func (s *standIn) parse(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if _, err := args(b.Name(), pos, kw); err != nil {
		return nil, err
	}
	s.parsed = true
	d := starlark.NewDict(len(s.flags))
	for name, v := range s.flags {
		kind, ok := s.defined[name]
		if !ok {
			return nil, fmt.Errorf("%s: unknown flag --%s (the Tiltfile defines no such setting)", b.Name(), name)
		}
		var sv starlark.Value
		switch x := v.(type) {
		case bool:
			if kind != "bool" {
				return nil, fmt.Errorf("%s: --%s is a %s setting", b.Name(), name, kind)
			}
			sv = starlark.Bool(x)
		case string:
			sv = starlark.String(x)
		case []string:
			l := make([]starlark.Value, len(x))
			for i, e := range x {
				l[i] = starlark.String(e)
			}
			sv = starlark.NewList(l)
		default:
			return nil, fmt.Errorf("%s: unsupported value for --%s", b.Name(), name)
		}
		if err := d.SetKey(starlark.String(name), sv); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ---- extensions -------------------------------------------------------------------

func (s *standIn) extensionRepo(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "name", "labels?", "annotations?", "url?", "ref?")
	if err != nil {
		return nil, err
	}
	repo := ExtensionRepo{Name: str(a["name"]), URL: str(a["url"]), Ref: str(a["ref"])}
	s.run.ExtensionRepos = append(s.run.ExtensionRepos, repo)
	return starlark.None, nil
}

func (s *standIn) load(_ *starlark.Thread, module string) (starlark.StringDict, error) {
	name, ok := strings.CutPrefix(module, "ext://")
	if !ok {
		return nil, fmt.Errorf("load(%q): the stand-in only knows Tilt extensions (ext://…)", module)
	}
	var repo *ExtensionRepo
	for i := range s.run.ExtensionRepos {
		if s.run.ExtensionRepos[i].Name == "default" {
			r := s.run.ExtensionRepos[i]
			repo = &r
		}
	}
	s.run.Extensions = append(s.run.Extensions, ExtensionLoad{Name: name, Repo: repo})
	// An extension's functions need what its code calls: one "ext://" entry stands for
	// them in the version floor check.
	s.use("ext://" + name)
	b := starlark.NewBuiltin
	switch name {
	case "restart_process":
		return starlark.StringDict{"docker_build_with_restart": b("docker_build_with_restart", s.dockerBuildWithRestart)}, nil
	case "uibutton":
		return starlark.StringDict{
			"cmd_button":   b("cmd_button", s.cmdButton),
			"choice_input": b("choice_input", s.choiceInput),
			"location": starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
				"RESOURCE": starlark.String("resource"),
				"NAV":      starlark.String("nav"),
			}),
		}, nil
	}
	return nil, fmt.Errorf("load(%q): extension not known to the stand-in", module)
}

// ---- images -----------------------------------------------------------------------

var dockerBuildParams = []string{
	"ref", "context", "build_args?", "dockerfile?", "dockerfile_contents?", "live_update?",
	"match_in_env_vars?", "ignore?", "only?", "entrypoint?", "target?", "ssh?", "network?",
	"secret?", "extra_tag?", "container_args?", "cache_from?", "pull?", "platform?", "extra_hosts?",
}

func (s *standIn) dockerBuild(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, dockerBuildParams...)
	if err != nil {
		return nil, err
	}
	img, err := s.image(b.Name(), a)
	if err != nil {
		return nil, err
	}
	s.run.Images = append(s.run.Images, img)
	return starlark.None, nil
}

// dockerBuildWithRestart takes the restart_process extension's parameters plus any
// docker_build parameter, which the extension passes on.
func (s *standIn) dockerBuildWithRestart(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	// The signature at the pinned tilt-extensions ref (restart_process/Tiltfile).
	params := append([]string{"ref", "context", "entrypoint", "live_update", "base_suffix?", "restart_file?", "trigger?", "exit_policy?"}, dockerBuildParams[2:]...)
	params = slices.DeleteFunc(params, func(p string) bool { return p == "live_update?" || p == "entrypoint?" })
	a, err := args(b.Name(), pos, kw, params...)
	if err != nil {
		return nil, err
	}
	img, err := s.image(b.Name(), a)
	if err != nil {
		return nil, err
	}
	if len(img.LiveUpdate) == 0 {
		return nil, fmt.Errorf("%s: requires at least one live_update step", b.Name())
	}
	img.WithRestart = true
	img.RestartFile = "/.restart-proc"
	if a["restart_file"] != nil {
		img.RestartFile = str(a["restart_file"])
	}
	s.run.Images = append(s.run.Images, img)
	return starlark.None, nil
}

func (s *standIn) image(fn string, a map[string]starlark.Value) (ImageBuild, error) {
	img := ImageBuild{Ref: str(a["ref"]), Target: str(a["target"]), BuildArgs: map[string]string{}}
	if img.Ref == "" {
		return img, fmt.Errorf("%s: empty ref", fn)
	}
	img.Context = s.ref(str(a["context"]), "context of image "+img.Ref)
	if a["dockerfile_contents"] == nil {
		df := "Dockerfile"
		if a["dockerfile"] != nil {
			df = str(a["dockerfile"])
		}
		img.Dockerfile = s.ref(df, "Dockerfile of image "+img.Ref)
	}
	var err error
	if img.Only, err = asStrings(fn, "only", a["only"]); err != nil {
		return img, err
	}
	for _, o := range img.Only {
		s.run.Paths = append(s.run.Paths, PathRef{Path: filepath.Join(img.Context, o), Use: "only of image " + img.Ref})
	}
	if img.Ignore, err = asStrings(fn, "ignore", a["ignore"]); err != nil {
		return img, err
	}
	if img.Entrypoint, err = asStrings(fn, "entrypoint", a["entrypoint"]); err != nil {
		return img, err
	}
	if d, ok := a["build_args"].(*starlark.Dict); ok {
		for _, item := range d.Items() {
			img.BuildArgs[str(item[0])] = str(item[1])
		}
	} else if a["build_args"] != nil {
		return img, fmt.Errorf("%s: build_args must be a dict", fn)
	}
	phase := 0 // fall_back_on, then sync, then run, as Tilt requires
	for _, v := range asValues(a["live_update"]) {
		step, ok := v.(*value)
		if !ok || !strings.HasPrefix(step.kind, "live_update_") {
			return img, fmt.Errorf("%s: live_update holds %s, not a live update step", fn, v.Type())
		}
		lu := step.payload.(LiveUpdateStep)
		order := map[string]int{"fall_back_on": 0, "sync": 1, "run": 2}[lu.Kind]
		if order < phase {
			return img, fmt.Errorf("%s: live_update step %s comes after a later kind of step (order: fall_back_on, sync, run)", fn, lu.Kind)
		}
		phase = order
		img.LiveUpdate = append(img.LiveUpdate, lu)
	}
	return img, nil
}

func (s *standIn) sync(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "local_path", "remote_path")
	if err != nil {
		return nil, err
	}
	remote := str(a["remote_path"])
	if !strings.HasPrefix(remote, "/") {
		return nil, fmt.Errorf("%s: remote_path %q must be absolute", b.Name(), remote)
	}
	local := s.ref(str(a["local_path"]), "sync")
	return &value{kind: "live_update_sync_step", payload: LiveUpdateStep{Kind: "sync", Local: local, Remote: remote}}, nil
}

func (s *standIn) runStep(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "cmd", "trigger?", "echo_off?")
	if err != nil {
		return nil, err
	}
	cmd, err := asStrings(b.Name(), "cmd", a["cmd"])
	if err != nil {
		return nil, err
	}
	triggers, err := asStrings(b.Name(), "trigger", a["trigger"])
	if err != nil {
		return nil, err
	}
	step := LiveUpdateStep{Kind: "run", Command: strings.Join(cmd, " ")}
	for _, t := range triggers {
		step.Triggers = append(step.Triggers, s.ref(t, "run trigger"))
	}
	return &value{kind: "live_update_run_step", payload: step}, nil
}

func (s *standIn) fallBackOn(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "files")
	if err != nil {
		return nil, err
	}
	files, err := asStrings(b.Name(), "files", a["files"])
	if err != nil {
		return nil, err
	}
	step := LiveUpdateStep{Kind: "fall_back_on"}
	for _, f := range files {
		step.Triggers = append(step.Triggers, s.ref(f, "fall_back_on"))
	}
	return &value{kind: "live_update_fall_back_on_step", payload: step}, nil
}

// ---- Kubernetes -------------------------------------------------------------------

func (s *standIn) kustomize(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "pathToDir", "kustomize_bin?", "flags?")
	if err != nil {
		return nil, err
	}
	dir := s.ref(str(a["pathToDir"]), "kustomize")
	objects, err := Render(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return &value{kind: "blob", payload: blob{objects: objects}}, nil
}

func (s *standIn) k8sYAML(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "yaml", "allow_duplicates?")
	if err != nil {
		return nil, err
	}
	for _, v := range asValues(a["yaml"]) {
		if bl, ok := v.(*value); ok && bl.kind == "blob" {
			s.run.Objects = append(s.run.Objects, bl.payload.(blob).objects...)
			continue
		}
		p, ok := starlark.AsString(v)
		if !ok {
			return nil, fmt.Errorf("%s: want a path or a blob, got %s", b.Name(), v.Type())
		}
		data, err := os.ReadFile(s.ref(p, "k8s_yaml"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		objects, err := DecodeStrict(data)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", b.Name(), p, err)
		}
		s.run.Objects = append(s.run.Objects, objects...)
	}
	return starlark.None, nil
}

func portForward(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "local_port", "container_port?", "name?", "link_path?", "host?")
	if err != nil {
		return nil, err
	}
	var pf PortForward
	if err := starlark.AsInt(a["local_port"], &pf.Local); err != nil {
		return nil, fmt.Errorf("%s: local_port: %w", b.Name(), err)
	}
	pf.Container = pf.Local
	if a["container_port"] != nil && a["container_port"] != starlark.None {
		if err := starlark.AsInt(a["container_port"], &pf.Container); err != nil {
			return nil, fmt.Errorf("%s: container_port: %w", b.Name(), err)
		}
	}
	pf.Name, pf.LinkPath = str(a["name"]), str(a["link_path"])
	return &value{kind: "port_forward", payload: pf}, nil
}

func link(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "url", "name?")
	if err != nil {
		return nil, err
	}
	return &value{kind: "link", payload: Link{URL: str(a["url"]), Name: str(a["name"])}}, nil
}

// portForwards accepts what k8s_resource does: 8080, '8080', '8080:80',
// 'host:8080:80', port_forward(…), or a list of those.
func portForwards(fn string, v starlark.Value) ([]PortForward, error) {
	var out []PortForward
	for _, x := range asValues(v) {
		switch t := x.(type) {
		case *value:
			if t.kind != "port_forward" {
				return nil, fmt.Errorf("%s: port_forwards holds a %s", fn, t.kind)
			}
			out = append(out, t.payload.(PortForward))
		case starlark.Int:
			n, _ := t.Int64()
			out = append(out, PortForward{Local: int(n), Container: int(n)})
		case starlark.String:
			parts := strings.Split(string(t), ":")
			nums := make([]int, 0, 2)
			for _, p := range parts[max(0, len(parts)-2):] {
				n, err := strconv.Atoi(p)
				if err != nil {
					return nil, fmt.Errorf("%s: bad port forward %q", fn, string(t))
				}
				nums = append(nums, n)
			}
			pf := PortForward{Local: nums[0], Container: nums[len(nums)-1]}
			out = append(out, pf)
		default:
			return nil, fmt.Errorf("%s: bad port forward %s", fn, x.String())
		}
	}
	return out, nil
}

func links(fn string, v starlark.Value) ([]Link, error) {
	var out []Link
	for _, x := range asValues(v) {
		switch t := x.(type) {
		case *value:
			if t.kind != "link" {
				return nil, fmt.Errorf("%s: links holds a %s", fn, t.kind)
			}
			out = append(out, t.payload.(Link))
		case starlark.String:
			out = append(out, Link{URL: string(t)})
		default:
			return nil, fmt.Errorf("%s: bad link %s", fn, x.String())
		}
	}
	return out, nil
}

func triggerManual(fn string, v starlark.Value) (bool, error) {
	if v == nil {
		return false, nil
	}
	t, ok := v.(*value)
	if !ok || t.kind != "trigger_mode" {
		return false, fmt.Errorf("%s: trigger_mode must be TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL", fn)
	}
	return t.payload == "manual", nil
}

func (s *standIn) k8sResource(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	fn := b.Name()
	a, err := args(fn, pos, kw, "workload?", "new_name?", "port_forwards?", "extra_pod_selectors?",
		"trigger_mode?", "resource_deps?", "objects?", "auto_init?", "pod_readiness?", "links?",
		"labels?", "discovery_strategy?")
	if err != nil {
		return nil, err
	}
	call := K8sResourceCall{Workload: str(a["workload"]), NewName: str(a["new_name"])}
	if call.PortForwards, err = portForwards(fn, a["port_forwards"]); err != nil {
		return nil, err
	}
	if call.ResourceDeps, err = asStrings(fn, "resource_deps", a["resource_deps"]); err != nil {
		return nil, err
	}
	if call.Objects, err = asStrings(fn, "objects", a["objects"]); err != nil {
		return nil, err
	}
	if call.Labels, err = asStrings(fn, "labels", a["labels"]); err != nil {
		return nil, err
	}
	if call.Links, err = links(fn, a["links"]); err != nil {
		return nil, err
	}
	if call.Manual, err = triggerManual(fn, a["trigger_mode"]); err != nil {
		return nil, err
	}
	if call.AutoInit, err = asBool(fn, "auto_init", a["auto_init"], true); err != nil {
		return nil, err
	}
	if call.Workload == "" && (call.NewName == "" || len(call.Objects) == 0) {
		return nil, fmt.Errorf("%s: give a workload, or objects and a new_name", fn)
	}
	s.run.K8sResources = append(s.run.K8sResources, call)
	return starlark.None, nil
}

func (s *standIn) localResource(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	fn := b.Name()
	a, err := args(fn, pos, kw, "name", "cmd?", "deps?", "trigger_mode?", "resource_deps?", "ignore?",
		"auto_init?", "serve_cmd?", "cmd_bat?", "serve_cmd_bat?", "allow_parallel?", "links?",
		"labels?", "env?", "serve_env?", "readiness_probe?", "dir?", "serve_dir?")
	if err != nil {
		return nil, err
	}
	lr := LocalResource{Name: str(a["name"])}
	cmd, err := asStrings(fn, "cmd", a["cmd"])
	if err != nil {
		return nil, err
	}
	lr.Cmd = strings.Join(cmd, " ")
	serve, err := asStrings(fn, "serve_cmd", a["serve_cmd"])
	if err != nil {
		return nil, err
	}
	lr.ServeCmd = strings.Join(serve, " ")
	if lr.Cmd == "" && lr.ServeCmd == "" {
		return nil, fmt.Errorf("%s %q: needs cmd or serve_cmd", fn, lr.Name)
	}
	deps, err := asStrings(fn, "deps", a["deps"])
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		lr.Deps = append(lr.Deps, s.ref(d, "deps of local_resource "+lr.Name))
	}
	if lr.ResourceDeps, err = asStrings(fn, "resource_deps", a["resource_deps"]); err != nil {
		return nil, err
	}
	if lr.Labels, err = asStrings(fn, "labels", a["labels"]); err != nil {
		return nil, err
	}
	if lr.Manual, err = triggerManual(fn, a["trigger_mode"]); err != nil {
		return nil, err
	}
	if lr.AutoInit, err = asBool(fn, "auto_init", a["auto_init"], true); err != nil {
		return nil, err
	}
	s.run.LocalResources = append(s.run.LocalResources, lr)
	return starlark.None, nil
}

func (s *standIn) cmdButton(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	fn := b.Name()
	// The signature at the pinned tilt-extensions ref (uibutton/Tiltfile).
	a, err := args(fn, pos, kw, "name", "resource?", "argv?", "text?", "location?", "icon_name?", "icon_svg?", "inputs?",
		"disabled?", "requires_confirmation?", "env?", "dir?")
	if err != nil {
		return nil, err
	}
	btn := Button{Name: str(a["name"]), Resource: str(a["resource"]), Text: str(a["text"]), Location: "resource"}
	if a["location"] != nil {
		btn.Location = str(a["location"])
	}
	if btn.Argv, err = asStrings(fn, "argv", a["argv"]); err != nil {
		return nil, err
	}
	if len(btn.Argv) == 0 {
		return nil, fmt.Errorf("%s %q: argv cannot be empty", fn, btn.Name)
	}
	if btn.Location == "resource" && btn.Resource == "" {
		return nil, fmt.Errorf("%s %q: must provide a resource name", fn, btn.Name)
	}
	if a["inputs"] != nil {
		list, ok := a["inputs"].(*starlark.List)
		if !ok {
			return nil, fmt.Errorf("%s %q: inputs must be a list, got %s", fn, btn.Name, a["inputs"].Type())
		}
		for i := range list.Len() {
			in, ok := list.Index(i).(buttonInput)
			if !ok {
				return nil, fmt.Errorf("%s %q: inputs[%d] is a %s, not an input of the uibutton extension", fn, btn.Name, i, list.Index(i).Type())
			}
			btn.Inputs = append(btn.Inputs, in.ButtonInput)
		}
	}
	if c, ok := a["requires_confirmation"].(starlark.Bool); ok {
		btn.RequiresConfirmation = bool(c)
	}
	s.run.Buttons = append(s.run.Buttons, btn)
	return starlark.None, nil
}

// buttonInput is the value choice_input returns.
type buttonInput struct{ ButtonInput }

func (b buttonInput) String() string        { return "choice_input(" + b.Name + ")" }
func (b buttonInput) Type() string          { return "ui_input_spec" }
func (b buttonInput) Freeze()               {}
func (b buttonInput) Truth() starlark.Bool  { return starlark.True }
func (b buttonInput) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", b.Type()) }

func (s *standIn) choiceInput(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	fn := b.Name()
	// The signature at the pinned tilt-extensions ref (uibutton/Tiltfile).
	a, err := args(fn, pos, kw, "name", "label?", "choices?")
	if err != nil {
		return nil, err
	}
	in := ButtonInput{Name: str(a["name"]), Label: str(a["label"])}
	if in.Choices, err = asStrings(fn, "choices", a["choices"]); err != nil {
		return nil, err
	}
	if in.Name == "" || len(in.Choices) == 0 {
		return nil, fmt.Errorf("%s: a name and at least one choice are needed", fn)
	}
	return buttonInput{in}, nil
}

// ---- os ---------------------------------------------------------------------------

func (s *standIn) exists(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	a, err := args(b.Name(), pos, kw, "path")
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(s.abs(str(a["path"])))
	return starlark.Bool(statErr == nil), nil
}

func pathJoin(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if len(kw) > 0 {
		return nil, fmt.Errorf("%s: takes no keyword arguments", b.Name())
	}
	parts := make([]string, len(pos))
	for i, p := range pos {
		parts[i] = str(p)
	}
	return starlark.String(filepath.Join(parts...)), nil
}

func pathFunc(f func(string) string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		a, err := args(b.Name(), pos, kw, "path")
		if err != nil {
			return nil, err
		}
		return starlark.String(f(str(a["path"]))), nil
	}
}

// ---- checks -----------------------------------------------------------------------

// Resource is a Tilt resource as Tilt assembles it from the recorded calls.
type Resource struct {
	Name         string
	Local        bool
	Workload     *Workload
	Objects      []Object
	Deps         []string
	Labels       []string
	PortForwards []PortForward
	Links        []Link
	Manual       bool
	AutoInit     bool
}

// Assemble groups the deployed objects into resources the way Tilt does: one resource
// per workload (named after it), each Service with the workload whose pods it selects,
// then k8s_resource calls (workload settings, renames, objects=[…] selectors, which
// match name[:kind[:namespace]] exactly and case-insensitively), then local resources.
// It returns the resources in order and the objects left in no resource.
func (r *TiltRun) Assemble() (resources []*Resource, uncategorized []Object, errs []error) {
	byName := map[string]*Resource{}
	add := func(res *Resource) {
		if byName[res.Name] != nil {
			errs = append(errs, fmt.Errorf("two resources are named %q", res.Name))
			return
		}
		byName[res.Name] = res
		resources = append(resources, res)
	}
	assigned := map[int]bool{}
	workloads := Workloads(r.Objects)
	for _, w := range workloads {
		res := &Resource{Name: w.Name, Workload: &w, AutoInit: true}
		res.Objects = append(res.Objects, w.Object)
		add(res)
	}
	for i, o := range r.Objects {
		if slices.ContainsFunc(workloads, func(w Workload) bool {
			return w.Kind == o.Kind && w.Name == o.Name && w.Namespace == o.Namespace
		}) {
			assigned[i] = true
		}
	}
	for i, o := range r.Objects {
		if o.Kind != "Service" || assigned[i] {
			continue
		}
		for _, res := range resources {
			if res.Workload != nil && CheckServices([]Object{o, res.Workload.Object}) == nil {
				res.Objects = append(res.Objects, o)
				assigned[i] = true
				break
			}
		}
	}
	for _, call := range r.K8sResources {
		var res *Resource
		if call.Workload != "" {
			res = byName[call.Workload]
			if res == nil || res.Local {
				errs = append(errs, fmt.Errorf("k8s_resource(%q): no workload of that name", call.Workload))
				continue
			}
			if call.NewName != "" && call.NewName != res.Name {
				if byName[call.NewName] != nil {
					errs = append(errs, fmt.Errorf("k8s_resource(%q): new_name %q is taken", call.Workload, call.NewName))
				} else {
					delete(byName, res.Name)
					res.Name = call.NewName
					byName[res.Name] = res
				}
			}
		} else {
			res = byName[call.NewName]
			if res == nil {
				res = &Resource{Name: call.NewName, AutoInit: true}
				add(res)
			}
		}
		for _, sel := range call.Objects {
			idx, err := selectObject(r.Objects, sel)
			if err != nil {
				errs = append(errs, fmt.Errorf("k8s_resource(%q): %w", res.Name, err))
				continue
			}
			if assigned[idx] {
				errs = append(errs, fmt.Errorf("k8s_resource(%q): object %q already belongs to a resource", res.Name, sel))
				continue
			}
			assigned[idx] = true
			res.Objects = append(res.Objects, r.Objects[idx])
		}
		res.Deps = append(res.Deps, call.ResourceDeps...)
		res.Labels = append(res.Labels, call.Labels...)
		res.PortForwards = append(res.PortForwards, call.PortForwards...)
		res.Links = append(res.Links, call.Links...)
		res.Manual = res.Manual || call.Manual
		res.AutoInit = res.AutoInit && call.AutoInit
	}
	for _, lr := range r.LocalResources {
		add(&Resource{Name: lr.Name, Local: true, Deps: lr.ResourceDeps, Labels: lr.Labels, Manual: lr.Manual, AutoInit: lr.AutoInit})
	}
	for i, o := range r.Objects {
		if !assigned[i] {
			uncategorized = append(uncategorized, o)
		}
	}
	return resources, uncategorized, errs
}

func selectObject(objects []Object, sel string) (int, error) {
	parts := strings.Split(sel, ":")
	if len(parts) > 3 {
		return -1, fmt.Errorf("object selector %q: want name[:kind[:namespace]]", sel)
	}
	found := -1
	for i, o := range objects {
		if !strings.EqualFold(o.Name, parts[0]) ||
			len(parts) > 1 && !strings.EqualFold(o.Kind, parts[1]) ||
			len(parts) > 2 && !strings.EqualFold(o.Namespace, parts[2]) {
			continue
		}
		if found >= 0 {
			return -1, fmt.Errorf("object selector %q matches more than one object", sel)
		}
		found = i
	}
	if found < 0 {
		return -1, fmt.Errorf("object selector %q matches no object", sel)
	}
	return found, nil
}

// TiltRules are the project's conventions a Tiltfile is checked against.
type TiltRules struct {
	// Labels every resource must carry one of.
	Labels []string
	// ExtensionRepoURL is the only repository extensions may come from.
	ExtensionRepoURL string
}

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Check cross-checks everything the Tiltfile asked for: the oldest Tilt it accepts
// knows every builtin and argument it uses, referenced paths exist,
// extensions come from a pinned commit, every resource, workload, object and
// dependency it names exists, nothing is left uncategorized, images built are images
// deployed (and deployed images are built or pinned), port-forwards reach declared
// container ports, and live updates sync files that are in the image's build context.
func (r *TiltRun) Check(rules TiltRules) []error {
	errs := r.checkVersionFloor()
	for _, p := range r.Paths {
		if _, err := os.Stat(p.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s does not exist", p.Use, r.rel(p.Path)))
		}
	}
	for _, ext := range r.Extensions {
		switch {
		case ext.Repo == nil:
			errs = append(errs, fmt.Errorf("ext://%s is loaded before v1alpha1.extension_repo(name='default') pins its source", ext.Name))
		case ext.Repo.URL != rules.ExtensionRepoURL:
			errs = append(errs, fmt.Errorf("ext://%s comes from %q, want %q", ext.Name, ext.Repo.URL, rules.ExtensionRepoURL))
		case !commitHash.MatchString(ext.Repo.Ref):
			errs = append(errs, fmt.Errorf("ext://%s: extension repo ref %q is not a commit hash, so the extension can change under you", ext.Name, ext.Repo.Ref))
		}
	}

	resources, uncategorized, assembleErrs := r.Assemble()
	errs = append(errs, assembleErrs...)
	for _, o := range uncategorized {
		errs = append(errs, fmt.Errorf("%s belongs to no resource (Tilt would show it as uncategorized and apply it in no particular order)", o))
	}
	byName := map[string]*Resource{}
	for _, res := range resources {
		byName[res.Name] = res
	}
	for _, res := range resources {
		for _, dep := range res.Deps {
			if byName[dep] == nil {
				errs = append(errs, fmt.Errorf("resource %q depends on %q, which does not exist", res.Name, dep))
			}
		}
		if !slices.ContainsFunc(res.Labels, func(l string) bool { return slices.Contains(rules.Labels, l) }) {
			errs = append(errs, fmt.Errorf("resource %q has labels %v, want one of %v", res.Name, res.Labels, rules.Labels))
		}
	}
	if cycle := findCycle(resources); cycle != nil {
		errs = append(errs, fmt.Errorf("resource_deps form a cycle: %s", strings.Join(cycle, " -> ")))
	}
	for _, btn := range r.Buttons {
		if btn.Location == "resource" && byName[btn.Resource] == nil {
			errs = append(errs, fmt.Errorf("button %q is attached to resource %q, which does not exist", btn.Name, btn.Resource))
		}
	}

	local := map[int]string{}
	for _, res := range resources {
		for _, pf := range res.PortForwards {
			if other, dup := local[pf.Local]; dup {
				errs = append(errs, fmt.Errorf("localhost:%d is forwarded by both %q and %q", pf.Local, other, res.Name))
			}
			local[pf.Local] = res.Name
			if res.Workload == nil {
				errs = append(errs, fmt.Errorf("resource %q forwards a port but has no pods", res.Name))
			} else if !slices.Contains(res.Workload.ContainerPorts(), int32(pf.Container)) {
				errs = append(errs, fmt.Errorf("resource %q forwards localhost:%d to container port %d, which %s does not declare", res.Name, pf.Local, pf.Container, res.Workload))
			}
		}
	}

	var built []string
	refs := map[string]bool{}
	for _, img := range r.Images {
		if refs[img.Ref] {
			errs = append(errs, fmt.Errorf("image %q is built twice", img.Ref))
		}
		refs[img.Ref] = true
		built = append(built, img.Ref)
		used := false
		for _, w := range Workloads(r.Objects) {
			for _, c := range Containers(&w.Template.Spec) {
				used = used || c.Image == img.Ref
			}
		}
		if !used {
			errs = append(errs, fmt.Errorf("image %q is built but no deployed container uses it", img.Ref))
		}
		errs = append(errs, checkLiveUpdate(img, r.rel)...)
	}
	errs = append(errs, CheckImages(r.Objects, built)...)
	return errs
}

func checkLiveUpdate(img ImageBuild, rel func(string) string) []error {
	var errs []error
	inContext := func(p string) bool {
		relPath, err := filepath.Rel(img.Context, p)
		if err != nil || relPath == ".." || strings.HasPrefix(relPath, "../") {
			return false
		}
		if len(img.Only) == 0 {
			return true
		}
		return slices.ContainsFunc(img.Only, func(o string) bool {
			o = filepath.Clean(o)
			return relPath == o || strings.HasPrefix(relPath, o+"/") || strings.HasPrefix(o, relPath+"/")
		})
	}
	for _, step := range img.LiveUpdate {
		if step.Kind == "sync" && !inContext(step.Local) {
			errs = append(errs, fmt.Errorf("image %q: sync of %s, which is not in its build context (context and only)", img.Ref, rel(step.Local)))
		}
		for _, t := range step.Triggers {
			if !inContext(t) {
				errs = append(errs, fmt.Errorf("image %q: %s trigger %s is not in its build context", img.Ref, step.Kind, rel(t)))
			}
		}
	}
	return errs
}

func (r *TiltRun) rel(p string) string {
	if rp, err := filepath.Rel(r.Dir, p); err == nil {
		return rp
	}
	return p
}

func findCycle(resources []*Resource) []string {
	deps := map[string][]string{}
	for _, res := range resources {
		deps[res.Name] = res.Deps
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case active:
			i := slices.Index(stack, n)
			return append(slices.Clone(stack[i:]), n)
		case done:
			return nil
		}
		state[n] = active
		stack = append(stack, n)
		for _, d := range deps[n] {
			if c := visit(d); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, res := range resources {
		if c := visit(res.Name); c != nil {
			return c
		}
	}
	return nil
}

// Resource returns the assembled resource of the given name, or nil.
func (r *TiltRun) Resource(name string) *Resource {
	resources, _, _ := r.Assemble()
	for _, res := range resources {
		if res.Name == name {
			return res
		}
	}
	return nil
}

// Image returns the image build with the given ref, or nil.
func (r *TiltRun) Image(ref string) *ImageBuild {
	for i := range r.Images {
		if r.Images[i].Ref == ref {
			return &r.Images[i]
		}
	}
	return nil
}
