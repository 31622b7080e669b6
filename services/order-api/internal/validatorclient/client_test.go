package validatorclient_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backend-prep/backend-prep/libs/platform/logging"
	"github.com/backend-prep/backend-prep/services/order-api/internal/orders"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatorclient"
	"github.com/backend-prep/backend-prep/services/order-api/internal/validatortest"
)

func newClient(t *testing.T, addr string, timeout time.Duration) *validatorclient.Client {
	t.Helper()
	c, err := validatorclient.New(addr, timeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func TestValidatePricesTheOrder(t *testing.T) {
	v := &validatortest.Validator{}
	srv := validatortest.Start(t, v)
	c := newClient(t, srv.Addr, 5*time.Second)
	ctx := logging.WithRequestID(context.Background(), "req-123")

	got, err := c.Validate(ctx, orders.Order{CustomerID: "c-42", Items: []orders.Item{
		{SKU: "BOOK-001", Quantity: 2},
		{SKU: "MUG-001", Quantity: 1},
	}})

	require.NoError(t, err)
	assert.Equal(t, orders.PricedOrder{
		Items: []orders.PricedItem{
			{SKU: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
			{SKU: "MUG-001", Quantity: 1, UnitPriceCents: 899, LineTotalCents: 899},
		},
		TotalCents: 3497,
		Currency:   "EUR",
	}, got)
	assert.Equal(t, "req-123", v.LastRequestID(), "the request ID reaches the validator's logs")
}

func TestValidateMapsFieldViolationsToARejection(t *testing.T) {
	srv := validatortest.Start(t, &validatortest.Validator{})
	c := newClient(t, srv.Addr, 5*time.Second)

	_, err := c.Validate(context.Background(), orders.Order{CustomerID: "c-42", Items: []orders.Item{
		{SKU: "NOPE-1", Quantity: 1},
		{SKU: "BOOK-001", Quantity: 1},
		{SKU: "NOPE-2", Quantity: 1},
	}})

	var rejected *orders.RejectedError
	require.ErrorAs(t, err, &rejected)
	assert.Equal(t, []orders.Violation{
		{Field: "items[0].sku", Reason: `unknown SKU "NOPE-1"`},
		{Field: "items[2].sku", Reason: `unknown SKU "NOPE-2"`},
	}, rejected.Violations)
	assert.NotErrorIs(t, err, orders.ErrValidatorUnavailable)
}

func TestValidateReportsEveryOtherFailureAsUnavailable(t *testing.T) {
	tests := []struct {
		name      string
		validator *validatortest.Validator // nil: nothing listens
		wantCode  codes.Code
	}{
		{"nothing listens", nil, codes.Unavailable},
		{"validator unavailable", &validatortest.Validator{Fail: codes.Unavailable}, codes.Unavailable},
		{"validator broken", &validatortest.Validator{Fail: codes.Internal}, codes.Internal},
		{"validator hangs past the deadline", &validatortest.Validator{Block: true}, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := closedAddr(t)
			if tt.validator != nil {
				addr = validatortest.Start(t, tt.validator).Addr
			}
			const timeout = 300 * time.Millisecond
			c := newClient(t, addr, timeout)

			start := time.Now()
			_, err := c.Validate(context.Background(), orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}})

			require.ErrorIs(t, err, orders.ErrValidatorUnavailable)
			assert.Equal(t, tt.wantCode, status.Code(err))
			// The deadline is what bounds a hanging validator; the slack only absorbs scheduling.
			assert.Less(t, time.Since(start), timeout+2*time.Second)
		})
	}
}

func TestValidateWithoutFieldViolationsRejectsTheWholeOrder(t *testing.T) {
	srv := validatortest.Start(t, &validatortest.Validator{Fail: codes.InvalidArgument})
	c := newClient(t, srv.Addr, 5*time.Second)

	_, err := c.Validate(context.Background(), orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}})

	var rejected *orders.RejectedError
	require.ErrorAs(t, err, &rejected)
	assert.Equal(t, []orders.Violation{{Field: "", Reason: "validator stand-in told to fail"}}, rejected.Violations)
}

func TestValidateNarrowsHugeQuantitiesWithoutWrappingAround(t *testing.T) {
	srv := validatortest.Start(t, &validatortest.Validator{})
	c := newClient(t, srv.Addr, 5*time.Second)

	got, err := c.Validate(context.Background(), orders.Order{CustomerID: "c-42", Items: []orders.Item{
		{SKU: "BOOK-001", Quantity: 1<<32 + 1}, // would wrap to 1
	}})

	require.NoError(t, err, "the stand-in does not check quantities")
	assert.Equal(t, int32(2147483647), got.Items[0].Quantity)
}

func TestReadyFollowsTheValidator(t *testing.T) {
	v := &validatortest.Validator{}
	srv := validatortest.Start(t, v)
	c := newClient(t, srv.Addr, time.Second)
	require.NoError(t, c.Ready(context.Background()))

	srv.Stop()
	assert.Error(t, c.Ready(context.Background()), "not ready while the validator is away")
}

func TestClientRecoversWhenTheValidatorComesBack(t *testing.T) {
	v := &validatortest.Validator{}
	srv := validatortest.Start(t, v)
	c := newClient(t, srv.Addr, 500*time.Millisecond)
	order := orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}}
	_, err := c.Validate(context.Background(), order)
	require.NoError(t, err)

	srv.Stop()
	_, err = c.Validate(context.Background(), order)
	require.ErrorIs(t, err, orders.ErrValidatorUnavailable)

	validatortest.StartAt(t, v, srv.Addr)
	// The client's reconnect backoff is capped at one second; give it a few.
	require.Eventually(t, func() bool {
		_, err := c.Validate(context.Background(), order)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the same client works again without a restart")
}

func TestDownOnlyWhileTheValidatorCannotBeReached(t *testing.T) {
	v := &validatortest.Validator{}
	srv := validatortest.Start(t, v)
	c := newClient(t, srv.Addr, 500*time.Millisecond)
	order := orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}}
	require.NoError(t, c.Down(), "not connected yet is not down")
	_, err := c.Validate(context.Background(), order)
	require.NoError(t, err)
	require.NoError(t, c.Down())

	// The call that meets the closing connection leaves the channel IDLE; the next one finds
	// nothing listening, and the channel in TRANSIENT_FAILURE.
	srv.Stop()
	require.Eventually(t, func() bool {
		_, err := c.Validate(context.Background(), order)
		return errors.Is(err, orders.ErrValidatorUnavailable) && c.Down() != nil
	}, 5*time.Second, 10*time.Millisecond)
	assert.ErrorContains(t, c.Down(), "TRANSIENT_FAILURE")

	// No call is made from here: the channel reconnects by itself.
	validatortest.StartAt(t, v, srv.Addr)
	back := time.Now()
	require.Eventually(t, func() bool { return c.Down() == nil }, 10*time.Second, time.Millisecond)
	t.Logf("known up %s after the validator came back, without a call", time.Since(back).Round(time.Millisecond))
	_, err = c.Validate(context.Background(), order)
	require.NoError(t, err)
}

func TestASlowValidatorIsNotDown(t *testing.T) {
	srv := validatortest.Start(t, &validatortest.Validator{Block: true})
	c := newClient(t, srv.Addr, 200*time.Millisecond)
	_, err := c.Validate(context.Background(), orders.Order{CustomerID: "c-42", Items: []orders.Item{{SKU: "BOOK-001", Quantity: 1}}})
	require.ErrorIs(t, err, orders.ErrValidatorUnavailable, "past its deadline")
	assert.NoError(t, c.Down(), "slow, not down")
}
