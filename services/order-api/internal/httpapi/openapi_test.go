package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documentPath is the service's OpenAPI document, relative to this package.
const documentPath = "../../openapi.yaml"

// loadDocument parses the OpenAPI document, checks it against the OpenAPI 3.1 schema, and
// returns a validator of requests and responses, and the statuses POST /v1/orders declares.
func loadDocument(t *testing.T) (validator.Validator, []int) {
	t.Helper()
	spec, err := os.ReadFile(documentPath)
	require.NoError(t, err)
	doc, err := libopenapi.NewDocument(spec)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())

	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	require.True(t, ok, "the document is valid OpenAPI 3.1:\n%s", describe(verrs))

	model, err := doc.BuildV3Model()
	require.NoError(t, err)
	post := model.Model.Paths.PathItems.GetOrZero("/v1/orders").Post
	require.NotNil(t, post, "the document describes POST /v1/orders")
	var declared []int
	for code := range post.Responses.Codes.KeysFromOldest() {
		status, err := strconv.Atoi(code)
		require.NoError(t, err, "explicit status codes only, not ranges: %s", code)
		declared = append(declared, status)
	}
	return v, declared
}

// TestOpenAPIDocumentMatchesTheHandler keeps openapi.yaml true: every response the handler
// gives in the bad-input, valid-input and unavailability tables conforms to the document
// (status declared, media type, schema — which forbids undeclared members — and required
// headers such as Retry-After), every declared status is one the handler gives, and the
// document's request schema refuses what the handler refuses and accepts what it accepts,
// bar the listed exceptions.
func TestOpenAPIDocumentMatchesTheHandler(t *testing.T) {
	doc, declared := loadDocument(t)
	given := map[int]bool{}

	checkResponse := func(t *testing.T, a *api, request func() *http.Request) int {
		t.Helper()
		resp := a.serve(request())
		defer resp.Body.Close()
		ok, errs := doc.ValidateHttpResponse(request(), resp)
		assert.True(t, ok, "the %d response conforms to the document:\n%s", resp.StatusCode, describe(errs))
		assert.Contains(t, declared, resp.StatusCode, "the status is declared explicitly, not only by the default response")
		given[resp.StatusCode] = true
		return resp.StatusCode
	}

	t.Run("bad input", func(t *testing.T) {
		a := newAPI(t, apiOptions{})
		for _, in := range badInputs {
			t.Run(in.name, func(t *testing.T) {
				require.Equal(t, in.wantStatus, checkResponse(t, a, in.request))

				accepted, errs := doc.ValidateHttpRequest(in.request())
				switch {
				case in.askValidator:
					assert.True(t, accepted, "only the validator can tell; the document accepts it:\n%s", describe(errs))
				case in.documentCannotTell != "":
					assert.True(t, accepted, "the document accepts it (%s)", in.documentCannotTell)
				default:
					assert.False(t, accepted, "the document refuses what the handler refuses")
				}
			})
		}
	})

	t.Run("valid input", func(t *testing.T) {
		for _, in := range validInputs {
			t.Run(in.name, func(t *testing.T) {
				a := newAPI(t, apiOptions{})
				require.Equal(t, http.StatusAccepted, checkResponse(t, a, in.request))

				accepted, errs := doc.ValidateHttpRequest(in.request())
				assert.True(t, accepted, "the document accepts what the handler accepts:\n%s", describe(errs))
			})
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		for _, sc := range unavailableScenarios {
			t.Run(sc.name, func(t *testing.T) {
				a := newAPI(t, sc.opts(t))
				require.Equal(t, http.StatusServiceUnavailable, checkResponse(t, a, post(validBody)))
			})
		}
	})

	for _, status := range declared {
		assert.True(t, given[status], "the document declares %d, which none of the handler's tests produced", status)
	}
	assert.True(t, slices.IsSorted(declared), "statuses are declared in ascending order")
}

func describe(errs []*errors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s: %s\n", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s: %s\n", se.FieldPath+" "+se.KeywordLocation, se.Reason)
		}
	}
	return b.String()
}
