package grpcapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
	"github.com/backend-prep/backend-prep/services/validator/internal/grpcapi"
	"github.com/backend-prep/backend-prep/services/validator/internal/validation"
)

// serverGiveUp bounds how long a test waits for the server to notice a cancelled call. It is a
// liveness bound, not a performance target: a server that ignores cancellation never returns.
const serverGiveUp = 10 * time.Second

// callResult is how a handler ended, as seen by a server interceptor.
type callResult struct {
	err  error
	sent int64 // stream messages sent
}

// fixture is a validator served over an in-memory connection, with the server's view of every
// call reported on results.
type fixture struct {
	client  ordersv1.OrderValidationClient
	catalog *catalog.Catalog
	results chan callResult
}

func newFixture(t *testing.T, delay time.Duration) *fixture {
	t.Helper()
	c, err := catalog.Default()
	require.NoError(t, err)
	f := &fixture{catalog: c, results: make(chan callResult, 16)}

	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			resp, err := handler(ctx, req)
			f.results <- callResult{err: err}
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			counted := &countingStream{ServerStream: ss}
			err := handler(srv, counted)
			f.results <- callResult{err: err, sent: counted.sent.Load()}
			return err
		}),
	)
	grpcapi.NewServer(c, validation.New(c), delay).Register(srv)

	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///validator",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	f.client = ordersv1.NewOrderValidationClient(conn)
	return f
}

// serverResult waits for the server's view of the next call to end.
func (f *fixture) serverResult(t *testing.T) callResult {
	t.Helper()
	select {
	case r := <-f.results:
		return r
	case <-time.After(serverGiveUp):
		t.Fatalf("the server did not return within %s", serverGiveUp)
		return callResult{}
	}
}

type countingStream struct {
	grpc.ServerStream
	sent atomic.Int64
}

func (s *countingStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Add(1)
	}
	return err
}

func callContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestValidateOrderPricesAValidOrder(t *testing.T) {
	f := newFixture(t, 0)

	resp, err := f.client.ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{
		CustomerId: "c-42",
		Items: []*ordersv1.OrderItem{
			{Sku: "BOOK-001", Quantity: 2},
			{Sku: "OFFC-003", Quantity: 1000},
		},
	})

	require.NoError(t, err)
	assert.Equal(t, "USD", resp.GetCurrency())
	require.Len(t, resp.GetItems(), 2)
	assertPriced(t, resp.GetItems()[0], "BOOK-001", 2, 1299, 2598)
	assertPriced(t, resp.GetItems()[1], "OFFC-003", 1000, 699, 699_000)
	assert.Equal(t, int64(2598+699_000), resp.GetTotalCents())
}

func assertPriced(t *testing.T, got *ordersv1.PricedItem, sku string, quantity int32, unit, line int64) {
	t.Helper()
	assert.Equal(t, sku, got.GetSku())
	assert.Equal(t, quantity, got.GetQuantity())
	assert.Equal(t, unit, got.GetUnitPriceCents())
	assert.Equal(t, line, got.GetLineTotalCents())
}

func TestValidateOrderRejectsWithFieldViolations(t *testing.T) {
	type violation struct{ field, description string }
	tests := []struct {
		name        string
		req         *ordersv1.ValidateOrderRequest
		wantMessage string
		want        []violation
	}{
		{
			name:        "empty request",
			req:         &ordersv1.ValidateOrderRequest{},
			wantMessage: "invalid order: customer_id: customer_id is required (and 1 more)",
			want: []violation{
				{"customer_id", "customer_id is required"},
				{"items", "an order needs at least 1 item"},
			},
		},
		{
			name: "one violation per broken rule, with paths into the request",
			req: &ordersv1.ValidateOrderRequest{
				CustomerId: "\u0441-42", // Cyrillic 'с'
				Items: []*ordersv1.OrderItem{
					{Sku: "BOOK-001", Quantity: 1},
					{Sku: "BOOK-999", Quantity: 0},
					{Sku: "BOOK-001", Quantity: 1001},
				},
			},
			wantMessage: "invalid order: customer_id: customer_id may contain only letters A-Z and a-z, digits, '_' and '-' (and 4 more)",
			want: []violation{
				{"customer_id", "customer_id may contain only letters A-Z and a-z, digits, '_' and '-'"},
				{"items[1].sku", "no product with this sku in the catalog"},
				{"items[1].quantity", "quantity must be at least 1"},
				{"items[2].sku", "sku BOOK-001 is already ordered in items[0]; put the whole quantity on one line"},
				{"items[2].quantity", "quantity must be at most 1000"},
			},
		},
		{
			name:        "negative quantity",
			req:         &ordersv1.ValidateOrderRequest{CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: -3}}},
			wantMessage: "invalid order: items[0].quantity: quantity must be at least 1",
			want:        []violation{{"items[0].quantity", "quantity must be at least 1"}},
		},
		{
			name:        "51 items",
			req:         &ordersv1.ValidateOrderRequest{CustomerId: "c-42", Items: books(51)},
			wantMessage: "invalid order: items: an order has at most 50 items, this one has 51",
			want:        []violation{{"items", "an order has at most 50 items, this one has 51"}},
		},
		{
			name:        "customer_id of 65 characters",
			req:         &ordersv1.ValidateOrderRequest{CustomerId: strings.Repeat("c", 65), Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 1}}},
			wantMessage: "invalid order: customer_id: customer_id must be at most 64 characters, it has 65",
			want:        []violation{{"customer_id", "customer_id must be at most 64 characters, it has 65"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)

			resp, err := f.client.ValidateOrder(callContext(t), tt.req)

			require.Error(t, err)
			assert.Nil(t, resp)
			st := status.Convert(err)
			assert.Equal(t, codes.InvalidArgument, st.Code())
			assert.Equal(t, tt.wantMessage, st.Message())

			require.Len(t, st.Details(), 1, "exactly one detail: the BadRequest")
			badRequest, ok := st.Details()[0].(*errdetails.BadRequest)
			require.True(t, ok, "detail is a google.rpc.BadRequest, got %T", st.Details()[0])
			var got []violation
			for _, fv := range badRequest.GetFieldViolations() {
				got = append(got, violation{fv.GetField(), fv.GetDescription()})
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestValidateOrderHonoursTheClientDeadline(t *testing.T) {
	f := newFixture(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	_, err := f.client.ValidateOrder(ctx, &ordersv1.ValidateOrderRequest{
		CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 1}},
	})

	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	server := f.serverResult(t) // within serverGiveUp, not after VALIDATOR_DELAY's hour
	assert.Contains(t, []codes.Code{codes.DeadlineExceeded, codes.Canceled}, status.Code(server.err),
		"the server stops waiting when the caller's deadline passes: %v", server.err)
}

func TestValidateOrderAnswersAfterTheDelay(t *testing.T) {
	f := newFixture(t, 50*time.Millisecond)

	resp, err := f.client.ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{
		CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 1}},
	})

	require.NoError(t, err, "a deadline longer than the delay is met")
	assert.Equal(t, int64(1299), resp.GetTotalCents())
}

// TestValidateOrderEndsWithTheContext calls the handler directly, so the context the handler
// sees is exactly the one given, and the status it returns can be checked exactly.
func TestValidateOrderEndsWithTheContext(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)
	req := &ordersv1.ValidateOrderRequest{CustomerId: "c-42", Items: []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 1}}}

	tests := []struct {
		name  string
		delay time.Duration
		ctx   func() (context.Context, context.CancelFunc)
		want  codes.Code
	}{
		{
			name: "deadline passes during the delay", delay: time.Hour, want: codes.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Millisecond)
			},
		},
		{
			name: "cancelled during the delay", delay: time.Hour, want: codes.Canceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(10*time.Millisecond, cancel)
				return ctx, cancel
			},
		},
		{
			name: "already cancelled, no delay", delay: 0, want: codes.Canceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
		},
		{
			name: "deadline already passed, no delay", delay: 0, want: codes.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()

			srv := grpcapi.NewServer(c, validation.New(c), tt.delay)
			done := make(chan error, 1)
			go func() {
				resp, err := srv.ValidateOrder(ctx, req)
				assert.Nil(t, resp)
				done <- err
			}()

			select {
			case err := <-done:
				assert.Equal(t, tt.want, status.Code(err), "%v", err)
			case <-time.After(serverGiveUp):
				t.Fatalf("ValidateOrder did not return within %s of its context ending", serverGiveUp)
			}
		})
	}
}

func TestListProducts(t *testing.T) {
	f := newFixture(t, 0)
	tests := []struct {
		name     string
		category string
	}{
		{name: "every product", category: ""},
		{name: "books only", category: "books"},
		{name: "electronics only", category: "electronics"},
		{name: "an unknown category is an empty stream", category: "garden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := f.client.ListProducts(callContext(t), &ordersv1.ListProductsRequest{Category: tt.category})
			require.NoError(t, err)

			got := receiveAll(t, stream)

			want := f.catalog.Products(tt.category)
			require.Len(t, got, len(want))
			for i, p := range want {
				assert.Equal(t, p.SKU, got[i].GetSku(), "by sku")
				assert.Equal(t, p.Name, got[i].GetName())
				assert.Equal(t, p.Category, got[i].GetCategory())
				assert.Equal(t, p.UnitPriceCents, got[i].GetUnitPriceCents())
				assert.Equal(t, "USD", got[i].GetCurrency())
				assert.EqualValues(t, p.MaxQuantity, got[i].GetMaxQuantity())
			}
			assert.Equal(t, int64(len(want)), f.serverResult(t).sent, "one message per product")
		})
	}
}

func TestListProductsStreamsTheWholeDefaultCatalog(t *testing.T) {
	f := newFixture(t, 0)
	stream, err := f.client.ListProducts(callContext(t), &ordersv1.ListProductsRequest{})
	require.NoError(t, err)

	got := receiveAll(t, stream)

	assert.Len(t, got, f.catalog.Len())
	assert.Equal(t, "BOOK-001", got[0].GetSku())
	categories := map[string]bool{}
	for _, p := range got {
		categories[p.GetCategory()] = true
	}
	assert.GreaterOrEqual(t, len(categories), 3)
}

func TestListProductsStopsWhenTheClientCancels(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond) // a pause between messages, so the stream is still going
	ctx, cancel := context.WithCancel(callContext(t))
	stream, err := f.client.ListProducts(ctx, &ordersv1.ListProductsRequest{})
	require.NoError(t, err)

	first, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, "BOOK-001", first.GetProduct().GetSku())
	cancel()

	_, err = stream.Recv()
	assert.Equal(t, codes.Canceled, status.Code(err), "the client sees its own cancellation: %v", err)
	server := f.serverResult(t)
	assert.Equal(t, codes.Canceled, status.Code(server.err), "the server stopped because of it: %v", server.err)
	assert.Less(t, server.sent, int64(f.catalog.Len()), "and did not send the rest of the catalog")
}

func TestListProductsHonoursTheClientDeadline(t *testing.T) {
	f := newFixture(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stream, err := f.client.ListProducts(ctx, &ordersv1.ListProductsRequest{})
	require.NoError(t, err)

	_, err = stream.Recv()

	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	server := f.serverResult(t)
	assert.Contains(t, []codes.Code{codes.DeadlineExceeded, codes.Canceled}, status.Code(server.err), "%v", server.err)
	assert.Zero(t, server.sent)
}

// books returns n order lines of one book each.
func books(n int) []*ordersv1.OrderItem {
	items := make([]*ordersv1.OrderItem, n)
	for i := range items {
		items[i] = &ordersv1.OrderItem{Sku: "BOOK-001", Quantity: 1}
	}
	return items
}

func receiveAll(t *testing.T, stream grpc.ServerStreamingClient[ordersv1.ListProductsResponse]) []*ordersv1.Product {
	t.Helper()
	var out []*ordersv1.Product
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, msg.GetProduct())
	}
}

// fieldViolations reads the google.rpc.BadRequest detail of an INVALID_ARGUMENT error as
// "field: description" lines.
func fieldViolations(t *testing.T, err error) []string {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "a gRPC status, got %v", err)
	require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
	require.Len(t, st.Details(), 1)
	badRequest, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok, "detail is a google.rpc.BadRequest, got %T", st.Details()[0])
	var out []string
	for _, v := range badRequest.GetFieldViolations() {
		out = append(out, v.GetField()+": "+v.GetDescription())
	}
	return out
}

// priceOrder streams lines to PriceOrder, the customer on the first message only.
func priceOrder(t *testing.T, f *fixture, customer string, lines ...*ordersv1.OrderItem) (*ordersv1.PriceOrderResponse, error) {
	t.Helper()
	stream, err := f.client.PriceOrder(callContext(t))
	require.NoError(t, err)
	for i, line := range lines {
		req := &ordersv1.PriceOrderRequest{Item: line}
		if i == 0 {
			req.CustomerId = customer
		}
		if err := stream.Send(req); err != nil {
			break // the server ended the call: CloseAndRecv says how
		}
	}
	return stream.CloseAndRecv()
}

func TestPriceOrderAnswersAStreamedOrderAsValidateOrder(t *testing.T) {
	f := newFixture(t, 0)
	lines := []*ordersv1.OrderItem{{Sku: "BOOK-001", Quantity: 2}, {Sku: "OFFC-003", Quantity: 1000}}

	streamed, err := priceOrder(t, f, "c-42", lines...)
	require.NoError(t, err)
	unary, err := f.client.ValidateOrder(callContext(t), &ordersv1.ValidateOrderRequest{CustomerId: "c-42", Items: lines})
	require.NoError(t, err)

	assert.Equal(t, unary.GetCurrency(), streamed.GetCurrency())
	assert.Equal(t, unary.GetTotalCents(), streamed.GetTotalCents())
	require.Len(t, streamed.GetItems(), 2)
	assertPriced(t, streamed.GetItems()[0], "BOOK-001", 2, 1299, 2598)
	assertPriced(t, streamed.GetItems()[1], "OFFC-003", 1000, 699, 699_000)
}

func TestPriceOrderRejectsLikeValidateOrder(t *testing.T) {
	f := newFixture(t, 0)

	_, err := priceOrder(t, f, "c-42", &ordersv1.OrderItem{Sku: "BOOK-001", Quantity: 1}, &ordersv1.OrderItem{Sku: "BOOK-999", Quantity: 1})
	assert.Equal(t, []string{"items[1].sku: no product with this sku in the catalog"}, fieldViolations(t, err))

	_, err = priceOrder(t, f, "")
	assert.Equal(t, []string{"customer_id: customer_id is required", "items: an order needs at least 1 item"}, fieldViolations(t, err),
		"an empty stream is an empty order")
}

func TestPriceOrderRefusesACustomerChangedMidStream(t *testing.T) {
	f := newFixture(t, 0)
	stream, err := f.client.PriceOrder(callContext(t))
	require.NoError(t, err)
	require.NoError(t, stream.Send(&ordersv1.PriceOrderRequest{CustomerId: "c-42", Item: &ordersv1.OrderItem{Sku: "BOOK-001", Quantity: 1}}))
	require.NoError(t, stream.Send(&ordersv1.PriceOrderRequest{CustomerId: "c-42", Item: &ordersv1.OrderItem{Sku: "BOOK-002", Quantity: 1}}))
	_ = stream.Send(&ordersv1.PriceOrderRequest{CustomerId: "c-7", Item: &ordersv1.OrderItem{Sku: "BOOK-003", Quantity: 1}})
	_, err = stream.CloseAndRecv()
	assert.Equal(t, []string{`customer_id: customer_id changed from "c-42" to "c-7" on line 2: set it on the first message only`}, fieldViolations(t, err))
}

func TestPriceOrderStopsReadingAfterTheLastLineAnOrderMayHave(t *testing.T) {
	f := newFixture(t, 0)
	stream, err := f.client.PriceOrder(callContext(t))
	require.NoError(t, err)
	sent := 0
	for range 10 * validation.MaxItems { // far more than an order may have
		if err := stream.Send(&ordersv1.PriceOrderRequest{CustomerId: "c-42", Item: &ordersv1.OrderItem{Sku: "BOOK-001", Quantity: 1}}); err != nil {
			require.ErrorIs(t, err, io.EOF, "a send after the server ended the call")
			break
		}
		sent++
	}
	_, err = stream.CloseAndRecv()
	assert.Equal(t, []string{"items: an order has at most 50 items, this stream sent more"}, fieldViolations(t, err))
	assert.Equal(t, codes.InvalidArgument, status.Code(f.serverResult(t).err), "the server ended the call itself")
	t.Logf("the client sent %d lines before it learnt the call was over", sent)
}

func TestQuoteOrderPricesTheBasketAfterEveryChange(t *testing.T) {
	f := newFixture(t, 0)
	stream, err := f.client.QuoteOrder(callContext(t))
	require.NoError(t, err)

	quote := func(sku string, quantity int32) *ordersv1.QuoteOrderResponse {
		t.Helper()
		require.NoError(t, stream.Send(&ordersv1.QuoteOrderRequest{Sku: sku, Quantity: quantity}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		assert.Equal(t, "USD", resp.GetCurrency())
		return resp
	}

	q := quote("BOOK-002", 1)
	require.Len(t, q.GetItems(), 1)
	assert.Equal(t, int64(4599), q.GetTotalCents())

	q = quote("BOOK-001", 2) // the basket is kept by sku
	require.Len(t, q.GetItems(), 2)
	assertPriced(t, q.GetItems()[0], "BOOK-001", 2, 1299, 2598)
	assertPriced(t, q.GetItems()[1], "BOOK-002", 1, 4599, 4599)
	assert.Equal(t, int64(2598+4599), q.GetTotalCents())
	assert.Empty(t, q.GetViolations())

	q = quote("BOOK-001", 3) // a change replaces the line's quantity
	assert.Equal(t, int64(3*1299+4599), q.GetTotalCents())

	q = quote("BOOK-999", 1) // refused: the basket stays as it was, and the stream goes on
	require.Len(t, q.GetViolations(), 1)
	assert.Equal(t, "sku", q.GetViolations()[0].GetField())
	assert.Equal(t, "no product with this sku in the catalog", q.GetViolations()[0].GetDescription())
	assert.Equal(t, int64(3*1299+4599), q.GetTotalCents())
	require.Len(t, q.GetItems(), 2)

	q = quote("BOOK-001", 101) // above the product's max_quantity
	require.Len(t, q.GetViolations(), 1)
	assert.Equal(t, "quantity", q.GetViolations()[0].GetField())

	q = quote("BOOK-001", 0) // removes the line
	require.Len(t, q.GetItems(), 1)
	assert.Equal(t, int64(4599), q.GetTotalCents())
	q = quote("BOOK-002", 0)
	assert.Empty(t, q.GetItems())
	assert.Zero(t, q.GetTotalCents())
	assert.Empty(t, q.GetViolations(), "an empty basket is a quote of nothing, not an invalid order")

	// The client closes its side: the server ends the stream with OK.
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF)
	r := f.serverResult(t)
	require.NoError(t, r.err)
	assert.Equal(t, int64(7), r.sent, "one quote per change")
}

func TestQuoteOrderEndsWithTheClientDeadline(t *testing.T) {
	f := newFixture(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	stream, err := f.client.QuoteOrder(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&ordersv1.QuoteOrderRequest{Sku: "BOOK-001", Quantity: 1}))
	_, err = stream.Recv()
	require.NoError(t, err)

	_, err = stream.Recv() // no more changes: the stream waits until the deadline
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	server := f.serverResult(t) // the server's handler ended with the call, whichever it heard of first
	assert.Contains(t, []codes.Code{codes.DeadlineExceeded, codes.Canceled}, status.Code(server.err), "%v", server.err)
	assert.Equal(t, int64(1), server.sent)
}
