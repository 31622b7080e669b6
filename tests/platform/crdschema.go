package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// CRDSchemas validates objects of custom kinds against the openAPIV3Schema their
// CustomResourceDefinitions give the API server: types, required fields, enumerations,
// patterns, lengths and bounds, and, as `kubectl apply` (whose validation is strict by
// default) does, no field the schema does not declare, except where the schema says
// x-kubernetes-preserve-unknown-fields. Not checked: the CEL rules
// (x-kubernetes-validations), which only the API server evaluates, and defaults.
type CRDSchemas struct {
	byGVK map[schema.GroupVersionKind]*jsonschema.Schema
}

// GatewayAPICRDDir is the directory of the standard channel's CRDs in the module cache:
// sigs.k8s.io/gateway-api at the version this module requires, the same module whose Go
// types the manifests decode into. `go list -m` reads go.mod and the module cache only.
func GatewayAPICRDDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("go list -m sigs.k8s.io/gateway-api: %w: %s", err, exit.Stderr)
		}
		return "", fmt.Errorf("go list -m sigs.k8s.io/gateway-api: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("go list -m sigs.k8s.io/gateway-api: the module is not in the module cache (go mod download)")
	}
	return filepath.Join(dir, "config", "crd", "standard"), nil
}

// LoadCRDSchemas compiles the schema of every served version of the CRDs in files.
func LoadCRDSchemas(files ...string) (*CRDSchemas, error) {
	s := &CRDSchemas{byGVK: map[schema.GroupVersionKind]*jsonschema.Schema{}}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read CRD: %w", err)
		}
		if err := s.add(file, data); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(file), err)
		}
	}
	return s, nil
}

// crd is the part of a CustomResourceDefinition (apiextensions.k8s.io/v1) read here.
type crd struct {
	Kind string `json:"kind"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Served bool   `json:"served"`
			Schema struct {
				OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

func (s *CRDSchemas) add(file string, data []byte) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var c crd
		if err := yaml.Unmarshal(doc, &c); err != nil {
			return err
		}
		// A file may hold other objects too (gateway-api ships a ValidatingAdmissionPolicy
		// next to its CRDs); only CRDs count.
		if c.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range c.Spec.Versions {
			if !v.Served || len(v.Schema.OpenAPIV3Schema) == 0 {
				continue
			}
			gvk := schema.GroupVersionKind{Group: c.Spec.Group, Version: v.Name, Kind: c.Spec.Names.Kind}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.Schema.OpenAPIV3Schema))
			if err != nil {
				return err
			}
			root, ok := doc.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: openAPIV3Schema is not an object", gvk)
			}
			// A name for the schema within its compiler, as problems quote it: the CRD's
			// file name, version and kind.
			url := "file:///" + filepath.Base(file) + "/" + gvk.Version + "/" + gvk.Kind
			c := jsonschema.NewCompiler()
			// OpenAPI v3 schemas are close to JSON Schema draft 4; x-kubernetes-* keywords
			// are unknown to it and ignored.
			c.DefaultDraft(jsonschema.Draft4)
			if err := c.AddResource(url, closeObjects(root)); err != nil {
				return err
			}
			sch, err := c.Compile(url)
			if err != nil {
				return fmt.Errorf("compile the schema of %s: %w", gvk, err)
			}
			s.byGVK[gvk] = sch
		}
	}
}

// closeObjects marks every object schema that declares its properties as allowing no
// others (additionalProperties: false), unless it preserves unknown fields or already
// says what other properties may be: what the API server's strict field validation does.
func closeObjects(node map[string]any) map[string]any {
	out := make(map[string]any, len(node)+1)
	for k, v := range node {
		out[k] = closeValue(v)
	}
	_, hasProps := node["properties"]
	_, hasAdditional := node["additionalProperties"]
	preserve, _ := node["x-kubernetes-preserve-unknown-fields"].(bool)
	if hasProps && !hasAdditional && !preserve {
		out["additionalProperties"] = false
	}
	return out
}

func closeValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return closeObjects(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = closeValue(e)
		}
		return out
	default:
		return v
	}
}

// Kinds lists the kinds there are schemas for.
func (s *CRDSchemas) Kinds() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for gvk := range s.byGVK {
		out = append(out, gvk)
	}
	return out
}

// Check validates every object whose group there are schemas for against its kind's
// schema; an object of such a group whose kind or version has none is a problem too.
func (s *CRDSchemas) Check(objects []Object) []error {
	groups := map[string]bool{}
	for gvk := range s.byGVK {
		groups[gvk.Group] = true
	}
	var errs []error
	for _, o := range objects {
		gv, err := schema.ParseGroupVersion(o.APIVersion)
		if err != nil || !groups[gv.Group] {
			continue
		}
		sch, ok := s.byGVK[gv.WithKind(o.Kind)]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no CRD schema for %s %s", o, o.APIVersion, o.Kind))
			continue
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.JSON))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, err))
			continue
		}
		if err := sch.Validate(inst); err != nil {
			errs = append(errs, fmt.Errorf("%s does not match its CRD schema: %w", o, err))
		}
	}
	return errs
}
