package platform

import (
	"errors"
	"fmt"
	"go/types"
	"os"
	"reflect"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// EnvVar is one environment variable a service's configuration reads.
type EnvVar struct {
	Name     string
	Field    string // Go path to the field, e.g. Config.Kafka.Brokers
	Required bool   // the env tag says required or notEmpty
	Default  bool   // an envDefault tag gives it a value when unset
}

// ConfigEnv loads the Go package pattern (e.g. "./internal/config") of the module in
// moduleDir and returns the environment variables read by its type Config, following
// the struct tags of github.com/caarlos0/env: `env:"NAME,required"`, `envDefault:"…"`,
// and `envPrefix:"P_"` on nested or embedded structs. It type-checks the package
// (dependencies from compiled export data), so fields embedded from other modules'
// config structs are included.
func ConfigEnv(moduleDir, pattern string) ([]EnvVar, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes,
		Dir:  moduleDir,
		// Each module builds on its own, exactly as the image build does.
		Env: append(os.Environ(), "GOWORK=off"),
	}
	pkgs, err := packages.Load(cfg, pattern)
	if err != nil {
		return nil, fmt.Errorf("load %s in %s: %w", pattern, moduleDir, err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("load %s in %s: got %d packages, want 1", pattern, moduleDir, len(pkgs))
	}
	pkg := pkgs[0]
	var loadErrs []error
	for _, e := range pkg.Errors {
		loadErrs = append(loadErrs, e)
	}
	if len(loadErrs) > 0 {
		return nil, fmt.Errorf("load %s in %s on its own (GOWORK=off, as the image build does: its go.mod must require, and replace, every module it imports): %w",
			pattern, moduleDir, errors.Join(loadErrs...))
	}
	obj := pkg.Types.Scope().Lookup("Config")
	if obj == nil {
		return nil, fmt.Errorf("package %s declares no type Config", pkg.PkgPath)
	}
	st, ok := obj.Type().Underlying().(*types.Struct)
	if !ok {
		return nil, fmt.Errorf("%s.Config is not a struct", pkg.PkgPath)
	}
	var vars []EnvVar
	walkEnv(st, "", "Config", map[*types.Struct]bool{}, &vars)
	slices.SortFunc(vars, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return vars, nil
}

// walkEnv collects the variables of a struct: a field with an env name is a variable
// (whatever its type: the library parses it as one value); a struct field without one
// is walked into, with its envPrefix prepended.
func walkEnv(st *types.Struct, prefix, path string, seen map[*types.Struct]bool, out *[]EnvVar) {
	if seen[st] {
		return
	}
	seen[st] = true
	defer delete(seen, st)
	for i := 0; i < st.NumFields(); i++ {
		field := st.Field(i)
		if !field.Exported() {
			continue
		}
		tag := reflect.StructTag(st.Tag(i))
		envTag := tag.Get("env")
		name, opts, _ := strings.Cut(envTag, ",")
		if name == "-" {
			continue
		}
		fieldPath := path + "." + field.Name()
		if name != "" {
			options := strings.Split(opts, ",")
			_, hasDefault := tag.Lookup("envDefault")
			*out = append(*out, EnvVar{
				Name:     prefix + name,
				Field:    fieldPath,
				Required: slices.Contains(options, "required") || slices.Contains(options, "notEmpty"),
				Default:  hasDefault,
			})
			continue
		}
		if nested := structOf(field.Type()); nested != nil {
			walkEnv(nested, prefix+tag.Get("envPrefix"), fieldPath, seen, out)
		}
	}
}

// structOf returns the struct a field holds directly or through a pointer, or nil.
func structOf(t types.Type) *types.Struct {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	st, _ := t.Underlying().(*types.Struct)
	return st
}

// RuntimeEnv are variables read by the Go runtime rather than by a service's
// configuration; a Deployment may set them.
var RuntimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "GOTRACEBACK"}

// CheckEnv compares what a container sets with what its configuration reads: every
// variable set must be read (a typo would be silently ignored otherwise) and every
// required variable without a default must be set (the service would not start).
func CheckEnv(container string, set []EnvSource, reads []EnvVar) []error {
	var errs []error
	readNames := make(map[string]bool, len(reads))
	for _, v := range reads {
		readNames[v.Name] = true
	}
	setNames := make(map[string]bool, len(set))
	for _, s := range set {
		setNames[s.Name] = true
		if !readNames[s.Name] && !slices.Contains(RuntimeEnv, s.Name) {
			errs = append(errs, fmt.Errorf("%s: sets %s (from %s), which its configuration does not read", container, s.Name, s.From))
		}
	}
	for _, v := range reads {
		if v.Required && !v.Default && !setNames[v.Name] {
			errs = append(errs, fmt.Errorf("%s: does not set %s, which %s requires", container, v.Name, v.Field))
		}
	}
	return errs
}
