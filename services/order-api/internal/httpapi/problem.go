package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
)

// ProblemTypeBase prefixes the type URI of every problem order-api defines; the README
// explains each one under the heading named by the fragment.
const ProblemTypeBase = "https://github.com/backend-prep/backend-prep/blob/main/services/order-api/README.md#"

// Problem types of POST /v1/orders.
const (
	TypeMalformedRequest     = ProblemTypeBase + "malformed-request"
	TypeBodyTooLarge         = ProblemTypeBase + "body-too-large"
	TypeUnsupportedMediaType = ProblemTypeBase + "unsupported-media-type"
	TypeInvalidOrder         = ProblemTypeBase + "invalid-order"
	TypeUnavailable          = ProblemTypeBase + "unavailable"
	TypeIdempotencyKeyReused = ProblemTypeBase + "idempotency-key-reused"
	TypeIdempotencyKeyInUse  = ProblemTypeBase + "idempotency-key-in-flight"
)

// problem is an RFC 9457 problem details body, with the violations of a 422.
type problem struct {
	httpserver.Problem
	Violations []violation `json:"violations,omitempty"`
}

type violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// The request problems found before the order reaches package orders.
type (
	contentTypeError    struct{ reason string }
	idempotencyKeyError struct{ reason string }
)

func (e *contentTypeError) Error() string    { return e.reason }
func (e *idempotencyKeyError) Error() string { return e.reason }

// outcome is how a failed request is answered and counted.
type outcome struct {
	problem problem
	// retry is set for 503s and 409s: the request may succeed later.
	retry bool
	// metric is orders_rejected_total's reason for a 4xx, orders_failed_total's for a 5xx.
	metric string
}

// outcomeOf maps an error of placing an order to its answer. It is the only place where errors
// become HTTP statuses.
func outcomeOf(err error) outcome {
	var (
		contentType *contentTypeError
		key         *idempotencyKeyError
		tooLarge    *http.MaxBytesError
		bad         *malformedError
		rejected    *orders.RejectedError
	)
	switch {
	case errors.As(err, &contentType):
		return outcome{problem: newProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType, "Unsupported media type", contentType.reason), metric: "unsupported_media_type"}
	case errors.As(err, &key):
		return outcome{problem: newProblem(http.StatusBadRequest, TypeMalformedRequest, "Malformed request", key.reason), metric: "malformed"}
	case errors.As(err, &tooLarge):
		return outcome{problem: newProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Request body too large",
			fmt.Sprintf("the body must not exceed %d bytes", tooLarge.Limit)), metric: "too_large"}
	case errors.As(err, &bad):
		return outcome{problem: newProblem(http.StatusBadRequest, TypeMalformedRequest, "Malformed request", bad.Error()), metric: "malformed"}
	case errors.As(err, &rejected):
		p := newProblem(http.StatusUnprocessableEntity, TypeInvalidOrder, "Invalid order",
			"the order breaks the rules listed in violations; correct them before sending it again")
		p.Violations = make([]violation, len(rejected.Violations))
		for i, v := range rejected.Violations {
			p.Violations[i] = violation{Field: v.Field, Reason: v.Reason}
		}
		return outcome{problem: p, metric: "invalid"}
	case errors.Is(err, idempotency.ErrKeyReused):
		return outcome{problem: newProblem(http.StatusUnprocessableEntity, TypeIdempotencyKeyReused, "Idempotency-Key already used",
			"this Idempotency-Key was already used for a different order; an Idempotency-Key must not be reused with another request. Send the original order unchanged to get its answer, or use a new key for a new order"),
			metric: "idempotency_key_reused"}
	case errors.Is(err, idempotency.ErrInFlight):
		return outcome{problem: newProblem(http.StatusConflict, TypeIdempotencyKeyInUse, "Request in progress",
			"a request with this Idempotency-Key and the same order is still being processed; retry it unchanged once that one has finished"),
			retry: true, metric: "idempotency_key_in_flight"}
	case errors.Is(err, orders.ErrValidatorUnavailable):
		return outcome{problem: newProblem(http.StatusServiceUnavailable, TypeUnavailable, "Service unavailable",
			"the order could not be validated right now and was not placed; retry after Retry-After with the same Idempotency-Key"),
			retry: true, metric: "validator_unavailable"}
	case errors.Is(err, orders.ErrNotPublished):
		return outcome{problem: newProblem(http.StatusServiceUnavailable, TypeUnavailable, "Service unavailable",
			"the order was not confirmed by every message broker, but may still be placed; retry after Retry-After with the same Idempotency-Key, which places it once — without a key, a retry may place a second order"),
			retry: true, metric: "broker_unavailable"}
	// After the order's own failures: a failed record of their outcome must not hide them.
	case errors.Is(err, idempotency.ErrUnavailable):
		return outcome{problem: newProblem(http.StatusServiceUnavailable, TypeUnavailable, "Service unavailable",
			"the order's Idempotency-Key could not be recorded right now, so the order was not placed; retry later with the same Idempotency-Key"),
			retry: true, metric: "idempotency_store_unavailable"}
	default:
		return outcome{problem: newProblem(http.StatusInternalServerError, "about:blank", http.StatusText(http.StatusInternalServerError), ""), metric: "internal"}
	}
}

func newProblem(status int, typ, title, detail string) problem {
	return problem{Problem: httpserver.Problem{Type: typ, Title: title, Status: status, Detail: detail}}
}

// checkContentType accepts application/json, with an optional charset that must be UTF-8
// (RFC 8259: JSON exchanged between systems is UTF-8).
func checkContentType(value string) error {
	if value == "" {
		return &contentTypeError{"the Content-Type header is missing; send application/json"}
	}
	mediaType, params, err := mime.ParseMediaType(value)
	if err != nil {
		return &contentTypeError{fmt.Sprintf("Content-Type %q is not a valid media type; send application/json", value)}
	}
	if mediaType != "application/json" {
		return &contentTypeError{fmt.Sprintf("Content-Type must be application/json, got %s", mediaType)}
	}
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
		return &contentTypeError{fmt.Sprintf("the body must be UTF-8 encoded, got charset=%s", charset)}
	}
	return nil
}

// MaxIdempotencyKeyLength bounds the Idempotency-Key header.
const MaxIdempotencyKeyLength = 255

// idempotencyKey returns the Idempotency-Key header, "" when there is none: 1 to 255 printable
// ASCII characters (space to tilde), sent at most once.
func idempotencyKey(h http.Header) (string, error) {
	values := h.Values("Idempotency-Key")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &idempotencyKeyError{"send at most one Idempotency-Key header"}
	}
	key := values[0]
	if len(key) < 1 || len(key) > MaxIdempotencyKeyLength {
		return "", &idempotencyKeyError{fmt.Sprintf("the Idempotency-Key header must be 1 to %d characters long, got %d", MaxIdempotencyKeyLength, len(key))}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < ' ' || c > '~' {
			return "", &idempotencyKeyError{fmt.Sprintf("the Idempotency-Key header may contain only printable ASCII characters, found byte 0x%02x at position %d", c, i)}
		}
	}
	return key, nil
}
