// Package openapitest keeps a service's OpenAPI document true to its handlers, in the
// service's own tests: it loads the document, requires it to be valid OpenAPI 3.1, and gives
// the validator the tests hold real responses against, with the statuses each operation
// declares so a test can require that every one of them is produced.
package openapitest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/errors"
	"github.com/stretchr/testify/require"
)

// Document is an OpenAPI document loaded for a test.
type Document struct {
	validator.Validator
	// Statuses are the explicit statuses each operation declares, keyed by "METHOD /path",
	// in the document's order.
	Statuses map[string][]int
	// Defaults are the operations that also declare a default response.
	Defaults []string
}

// Load reads the document at path, requires it to be valid OpenAPI 3.1 whose statuses are
// explicit codes (no ranges such as 4XX), and returns it with a validator built with opts
// (config.WithFormatAssertions() to check formats such as date-time).
func Load(t testing.TB, path string, opts ...config.Option) *Document {
	t.Helper()
	spec, err := os.ReadFile(path)
	require.NoError(t, err)
	doc, err := libopenapi.NewDocument(spec)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())

	v, errs := validator.NewValidator(doc, opts...)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	require.True(t, ok, "the document is valid OpenAPI 3.1:\n%s", Describe(verrs))

	model, err := doc.BuildV3Model()
	require.NoError(t, err)
	d := &Document{Validator: v, Statuses: map[string][]int{}}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			key := strings.ToUpper(method) + " " + path
			if op.Responses.Default != nil {
				d.Defaults = append(d.Defaults, key)
			}
			for code := range op.Responses.Codes.KeysFromOldest() {
				status, err := strconv.Atoi(code)
				require.NoError(t, err, "%s: explicit status codes only, not ranges: %s", key, code)
				d.Statuses[key] = append(d.Statuses[key], status)
			}
		}
	}
	return d
}

// Describe formats validation errors for a failure message.
func Describe(errs []*errors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s: %s\n", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s: %s\n", se.FieldPath+" "+se.KeywordLocation, se.Reason)
		}
	}
	return b.String()
}
