// Command reference is the framework-free reference for order-api: the smallest program that
// does order-api's job, kept as a lesson and used as a yardstick.
//
// For an order without an Idempotency-Key it performs the external I/O order-api performs, and
// nothing else:
//
//  1. read POST /v1/orders and decode the JSON body with encoding/json;
//  2. one ValidateOrder call to the validator over a long-lived gRPC connection, with a 2 s
//     deadline (order-api's VALIDATOR_TIMEOUT);
//  3. build the OrderPlaced event as order-api does: a UUIDv7 order_id and event-id, the
//     protojson body of libs/genproto, the headers content-type, event-type and event-id;
//  4. publish it to Kafka (key = order_id, through one idempotent producer with acks=all,
//     linger 5 ms, lz4: order-api's librdkafka settings) and to RabbitMQ (exchange "orders",
//     routing key order.placed, persistent, mandatory, on a pool of confirm-mode channels of one
//     connection) at the same time, and wait for both confirms under one 5 s deadline;
//  5. answer 202 with the same body as order-api: order_id, status, total_cents, currency, items.
//
// The notifier and analytics consume its events unchanged: same bytes, same key, same headers,
// same AMQP properties.
//
// What it leaves out, compared to order-api, and why that is fine for a yardstick:
//
//   - Idempotency-Key and PostgreSQL: the header is ignored and every order gets a new order_id.
//     order-api talks to PostgreSQL only for requests that carry the header, so for orders
//     without one the I/O is the same.
//   - Logging, metrics, tracing, request IDs: nothing is written for a placed order (a 503 gets
//     one line on stderr), no span is started, no traceparent travels. order-api also sends its
//     request ID to the validator (gRPC metadata x-request-id) and to the client (X-Request-Id);
//     the reference sends neither.
//   - Dependency health: no /readyz checks beyond "started and still connected", no fail-fast
//     503 while a dependency is known to be down, no reconnecting: a lost RabbitMQ connection
//     makes every later order a 503 until the program is restarted.
//   - Topology: it declares nothing. The topic (or the broker's auto-creation) and the exchange
//     must exist; a missing exchange stops start-up.
//   - The finer HTTP contract: no Content-Type check (415), encoding/json's decoding rather than
//     order-api's strict one (a null, 2.0 or 1e30 may get another 4xx than order-api gives), no
//     rule checks of its own: the validator judges every decoded order, so an order with no
//     items costs a validator call here (422 either way) where order-api refuses it alone.
//   - Frameworks: net/http instead of echo, no fx, no zap, no configuration library.
//
// So it measures what the job costs: the validator's answer, both brokers' confirms, JSON and
// protobuf encoding, and Go's HTTP server. The difference between order-api's throughput and
// latency and this program's, on the same machine and brokers, is what order-api's extra
// guarantees and observability cost.
//
// Configuration, all from the environment:
//
//	HTTP_ADDR                    127.0.0.1:8090
//	VALIDATOR_ADDR               127.0.0.1:50051
//	KAFKA_BOOTSTRAP_SERVERS      127.0.0.1:9092
//	KAFKA_TOPIC                  orders.v1
//	KAFKA_LINGER                 5ms (a Go duration)
//	RABBITMQ_URL                 amqp://guest:guest@127.0.0.1:5672/
//	RABBITMQ_EXCHANGE            orders
//	RABBITMQ_PUBLISHER_CHANNELS  32
//
// GET /readyz answers 200 once the program started (it listens only after a Kafka broker answered
// and the exchange was found), and 503 once its RabbitMQ connection is lost. SIGTERM or SIGINT
// stops it: the HTTP server finishes the requests it has, the producer flushes (bounded), the
// channels and the connection close, and it exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

// The deadlines order-api uses by default.
const (
	validatorTimeout = 2 * time.Second  // VALIDATOR_TIMEOUT
	publishTimeout   = 5 * time.Second  // PUBLISH_TIMEOUT: both brokers together
	startTimeout     = 15 * time.Second // connecting at start
	shutdownTimeout  = 15 * time.Second // SHUTDOWN_TIMEOUT: HTTP, then the producer's flush
	maxBodyBytes     = 64 << 10
)

type config struct {
	httpAddr       string
	validatorAddr  string
	kafkaBootstrap string
	kafkaTopic     string
	kafkaLinger    time.Duration
	rabbitURL      string
	rabbitExchange string
	rabbitChannels int
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	// grpc.NewClient does not connect: the first order does, and the channel stays open.
	conn, err := grpc.NewClient(cfg.validatorAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("validator %s: %w", cfg.validatorAddr, err)
	}
	defer conn.Close()

	producer, err := newKafka(startCtx, cfg)
	if err != nil {
		return err
	}
	rabbit, err := newRabbit(startCtx, cfg)
	if err != nil {
		_ = producer.close(shutdownTimeout)
		return err
	}

	s := &server{
		validator: ordersv1.NewOrderValidationClient(conn),
		kafka:     producer,
		rabbit:    rabbit,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.placeOrder)
	mux.HandleFunc("GET /readyz", s.readyz)
	srv := &http.Server{
		Addr:              cfg.httpAddr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.httpAddr)
	if err != nil {
		_ = rabbit.close(shutdownTimeout)
		_ = producer.close(shutdownTimeout)
		return err
	}
	fmt.Printf("reference: listening on %s (topic %s, exchange %s)\n", ln.Addr(), cfg.kafkaTopic, cfg.rabbitExchange)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
		fmt.Println("reference: stopping")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		err = srv.Shutdown(shutdownCtx) // waits for the requests in flight, each bounded
		cancel()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	// No request runs any more: nothing publishes from here on.
	perr := producer.close(shutdownTimeout)
	rerr := rabbit.close(shutdownTimeout)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err = errors.Join(err, perr, rerr); err != nil {
		return err
	}
	fmt.Println("reference: stopped")
	return nil
}

func loadConfig() (config, error) {
	cfg := config{
		httpAddr:       env("HTTP_ADDR", "127.0.0.1:8090"),
		validatorAddr:  env("VALIDATOR_ADDR", "127.0.0.1:50051"),
		kafkaBootstrap: env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
		kafkaTopic:     env("KAFKA_TOPIC", ordersv1.Topic),
		rabbitURL:      env("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		rabbitExchange: env("RABBITMQ_EXCHANGE", ordersv1.Exchange),
	}
	var err error
	if cfg.kafkaLinger, err = time.ParseDuration(env("KAFKA_LINGER", "5ms")); err != nil || cfg.kafkaLinger < 0 {
		return cfg, fmt.Errorf("KAFKA_LINGER: want a duration of at least 0, got %q", os.Getenv("KAFKA_LINGER"))
	}
	if cfg.rabbitChannels, err = strconv.Atoi(env("RABBITMQ_PUBLISHER_CHANNELS", "32")); err != nil || cfg.rabbitChannels < 1 {
		return cfg, fmt.Errorf("RABBITMQ_PUBLISHER_CHANNELS: want an integer of at least 1, got %q",
			os.Getenv("RABBITMQ_PUBLISHER_CHANNELS"))
	}
	return cfg, nil
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

type server struct {
	validator ordersv1.OrderValidationClient
	kafka     *kafkaProducer
	rabbit    *rabbitPool
}

// orderRequest is the body of POST /v1/orders.
type orderRequest struct {
	CustomerID string `json:"customer_id"`
	Items      []struct {
		SKU      string `json:"sku"`
		Quantity int32  `json:"quantity"`
	} `json:"items"`
}

// accepted is the body of a 202, member for member order-api's.
type accepted struct {
	OrderID    string         `json:"order_id"`
	Status     string         `json:"status"`
	TotalCents int64          `json:"total_cents"`
	Currency   string         `json:"currency"`
	Items      []acceptedItem `json:"items"`
}

type acceptedItem struct {
	SKU            string `json:"sku"`
	Quantity       int32  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

func (s *server) placeOrder(w http.ResponseWriter, r *http.Request) {
	req, err := decode(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, problem{Type: typeBodyTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("the body must not exceed %d bytes", maxBodyBytes)})
			return
		}
		writeProblem(w, problem{Type: typeMalformed, Title: "Malformed request", Status: http.StatusBadRequest, Detail: err.Error()})
		return
	}

	// 1. The validator judges and prices the order.
	vreq := &ordersv1.ValidateOrderRequest{CustomerId: req.CustomerID, Items: make([]*ordersv1.OrderItem, len(req.Items))}
	for i, item := range req.Items {
		vreq.Items[i] = &ordersv1.OrderItem{Sku: item.SKU, Quantity: item.Quantity}
	}
	vctx, cancel := context.WithTimeout(r.Context(), validatorTimeout)
	priced, err := s.validator.ValidateOrder(vctx, vreq)
	cancel()
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
			writeProblem(w, rejected(st))
			return
		}
		unavailable(w, "the order could not be validated right now and was not placed", err)
		return
	}

	// 2. The event, as order-api builds it (without an Idempotency-Key).
	orderID, err := uuid.NewV7()
	if err != nil {
		unavailable(w, "no order id", err)
		return
	}
	eventID, err := uuid.NewV7()
	if err != nil {
		unavailable(w, "no event id", err)
		return
	}
	event := &ordersv1.OrderPlaced{
		OrderId:    orderID.String(),
		CustomerId: req.CustomerID,
		Items:      priced.GetItems(),
		TotalCents: priced.GetTotalCents(),
		Currency:   priced.GetCurrency(),
		PlacedAt:   timestamppb.New(time.Now().UTC()),
	}
	body, err := ordersv1.MarshalOrderPlaced(event)
	if err != nil {
		unavailable(w, "the event could not be encoded", err)
		return
	}

	// 3. Both brokers at once, under one deadline that the client's going away does not cut
	// short: a publish abandoned half-way helps nobody.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeout)
	defer cancel()
	var kafkaErr, rabbitErr error
	var wg sync.WaitGroup
	wg.Go(func() { kafkaErr = s.kafka.publish(pctx, event.GetOrderId(), eventID.String(), body) })
	wg.Go(func() { rabbitErr = s.rabbit.publish(pctx, eventID.String(), event.GetPlacedAt().AsTime(), body) })
	wg.Wait()
	if err := errors.Join(kafkaErr, rabbitErr); err != nil {
		unavailable(w, "the order was not confirmed by every message broker, but may still be placed", err)
		return
	}

	resp := accepted{
		OrderID:    event.GetOrderId(),
		Status:     "accepted",
		TotalCents: event.GetTotalCents(),
		Currency:   event.GetCurrency(),
		Items:      make([]acceptedItem, len(event.GetItems())),
	}
	for i, item := range event.GetItems() {
		resp.Items[i] = acceptedItem{
			SKU:            item.GetSku(),
			Quantity:       item.GetQuantity(),
			UnitPriceCents: item.GetUnitPriceCents(),
			LineTotalCents: item.GetLineTotalCents(),
		}
	}
	writeJSON(w, http.StatusAccepted, "application/json", resp)
}

// decode reads one JSON object of the documented members, and nothing after it.
func decode(w http.ResponseWriter, r *http.Request) (orderRequest, error) {
	var req orderRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, err
		}
		return req, fmt.Errorf("the body is not a valid order document: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, err
		}
		return req, errors.New("unexpected data after the JSON object")
	}
	return req, nil
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.rabbit.down(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// The problem types are order-api's, so a client sees the same answers.
const (
	problemBase      = "https://github.com/backend-prep/backend-prep/blob/main/services/order-api/README.md#"
	typeMalformed    = problemBase + "malformed-request"
	typeBodyTooLarge = problemBase + "body-too-large"
	typeInvalidOrder = problemBase + "invalid-order"
	typeUnavailable  = problemBase + "unavailable"
)

// problem is an RFC 9457 problem details body, with the violations of a 422.
type problem struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail,omitempty"`
	Violations []violation `json:"violations,omitempty"`
}

type violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// rejected is the 422 of an order the validator refused, one violation per broken rule.
func rejected(st *status.Status) problem {
	p := problem{Type: typeInvalidOrder, Title: "Invalid order", Status: http.StatusUnprocessableEntity,
		Detail: "the order breaks the rules listed in violations; correct them before sending it again"}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				p.Violations = append(p.Violations, violation{Field: fv.GetField(), Reason: fv.GetDescription()})
			}
		}
	}
	if len(p.Violations) == 0 {
		p.Violations = []violation{{Field: "", Reason: st.Message()}}
	}
	return p
}

// unavailable answers 503 and writes why on stderr: the one line a request can cause.
func unavailable(w http.ResponseWriter, detail string, err error) {
	fmt.Fprintf(os.Stderr, "reference: 503: %s: %v\n", detail, err)
	w.Header().Set("Retry-After", "1")
	writeProblem(w, problem{Type: typeUnavailable, Title: "Service unavailable", Status: http.StatusServiceUnavailable,
		Detail: detail + "; retry after Retry-After"})
}

func writeProblem(w http.ResponseWriter, p problem) {
	writeJSON(w, p.Status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, code int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}
