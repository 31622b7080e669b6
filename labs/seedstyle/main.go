// Command seedstyle is the "before" of order-api: the order service the way a first tutorial
// writes it. It is the integrated project of the course's original plan (docs/learn/06-system.md)
// — a Flask app that calls the gRPC validator, then publishes with kafka-python and pika —
// translated to Go call for call. It is kept to be measured against labs/reference, which does
// the same job over long-lived connections.
//
// It answers the same contract as the reference (POST /v1/orders, 202 with the same body, 400,
// 422, 503) and publishes the same OrderPlaced event, so the notifier and analytics consume it
// unchanged. What differs is how it talks to the validator and the brokers. For every order:
//
//  1. a NEW gRPC client connection to the validator: a TCP connect and an HTTP/2 handshake
//     before the one ValidateOrder call (2 s deadline), then the connection is closed;
//  2. Kafka, through one shared producer left at librdkafka's defaults — acks=all and a 5 ms
//     linger as order-api, but no idempotence, no compression, and the CRC32 partitioner, so a
//     key may land on another partition than order-api's murmur2 puts it: Produce, then wait
//     until the broker acknowledged the message, the tutorial's producer.send();
//     producer.flush() (confluent-kafka-go's own Flush would add up to 100 ms of idle polling
//     per call, which is this library's cost, not the pattern's);
//  3. RabbitMQ: a NEW connection (TCP connect, AMQP handshake, authentication) and a NEW
//     channel, one publish without publisher confirms (and not mandatory), then channel and
//     connection closed. Nothing says whether the broker stored the message, or whether any
//     queue was bound for it: a 202 here promises less than order-api's.
//
// The steps run one after the other, not concurrently. What that costs: per order, two extra
// connection set-ups and tear-downs (several round trips each, and a connection the broker must
// register and clean up), and latencies that add up instead of overlapping. The program is still correct as far as it goes: every call has
// a deadline (2 s validator, 5 s Kafka, 5 s RabbitMQ), bad input gets a 4xx, and a failure
// gets a 503, never a crash.
//
// Configuration, from the environment, as the reference's:
//
//	HTTP_ADDR                    127.0.0.1:8091
//	VALIDATOR_ADDR               127.0.0.1:50051
//	KAFKA_BOOTSTRAP_SERVERS      127.0.0.1:9092
//	KAFKA_TOPIC                  orders.v1
//	KAFKA_LINGER                 unset: librdkafka's default; a Go duration sets linger.ms
//	RABBITMQ_URL                 amqp://guest:guest@127.0.0.1:5672/
//	RABBITMQ_EXCHANGE            orders
//	RABBITMQ_PUBLISHER_CHANNELS  read and ignored: there is no pool
//
// At start it checks that a Kafka broker answers and that the exchange exists. GET /readyz
// answers 200 once it started. SIGTERM or SIGINT stops it gracefully: the HTTP server finishes
// the requests it has, the producer flushes (bounded), and it exits 0.
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

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
)

const (
	validatorTimeout = 2 * time.Second
	kafkaTimeout     = 5 * time.Second
	rabbitTimeout    = 5 * time.Second
	startTimeout     = 15 * time.Second
	shutdownTimeout  = 15 * time.Second
	maxBodyBytes     = 64 << 10
)

type config struct {
	httpAddr       string
	validatorAddr  string
	kafkaBootstrap string
	kafkaTopic     string
	kafkaLinger    string // "" keeps librdkafka's default
	rabbitURL      string
	rabbitExchange string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seedstyle:", err)
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

	producer, err := newProducer(cfg)
	if err != nil {
		return err
	}
	s := &server{cfg: cfg, producer: producer}
	if err := s.check(ctx); err != nil {
		_ = producer.close()
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.placeOrder)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
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
		_ = producer.close()
		return err
	}
	fmt.Printf("seedstyle: listening on %s (topic %s, exchange %s)\n", ln.Addr(), cfg.kafkaTopic, cfg.rabbitExchange)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		fmt.Println("seedstyle: stopping")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		err = srv.Shutdown(shutdownCtx)
		cancel()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	perr := producer.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err = errors.Join(err, perr); err != nil {
		return err
	}
	fmt.Println("seedstyle: stopped")
	return nil
}

func loadConfig() (config, error) {
	cfg := config{
		httpAddr:       env("HTTP_ADDR", "127.0.0.1:8091"),
		validatorAddr:  env("VALIDATOR_ADDR", "127.0.0.1:50051"),
		kafkaBootstrap: env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
		kafkaTopic:     env("KAFKA_TOPIC", ordersv1.Topic),
		rabbitURL:      env("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		rabbitExchange: env("RABBITMQ_EXCHANGE", ordersv1.Exchange),
	}
	if v := os.Getenv("KAFKA_LINGER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return cfg, fmt.Errorf("KAFKA_LINGER: want a duration of at least 0, got %q", v)
		}
		cfg.kafkaLinger = strconv.FormatInt(d.Milliseconds(), 10)
	}
	if v := os.Getenv("RABBITMQ_PUBLISHER_CHANNELS"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return cfg, fmt.Errorf("RABBITMQ_PUBLISHER_CHANNELS: want an integer of at least 1, got %q", v)
		}
	}
	return cfg, nil
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

// producer is the one shared Kafka producer, at librdkafka's defaults.
type producer struct {
	p      *kafka.Producer
	events sync.WaitGroup
}

func newProducer(cfg config) (*producer, error) {
	conf := kafka.ConfigMap{"bootstrap.servers": cfg.kafkaBootstrap}
	if cfg.kafkaLinger != "" {
		conf["linger.ms"] = cfg.kafkaLinger
	}
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	k := &producer{p: p}
	// What librdkafka reports besides delivery reports must be read, or Flush never sees an
	// empty queue (it counts this channel too). Close ends the loop.
	k.events.Go(func() {
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				fmt.Fprintln(os.Stderr, "seedstyle: kafka:", e)
			}
		}
	})
	return k, nil
}

func (k *producer) close() error {
	var err error
	if left := k.p.Flush(int(shutdownTimeout.Milliseconds())); left > 0 {
		err = fmt.Errorf("kafka: %d messages not delivered by the end of the flush", left)
		_ = k.p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight)
		k.p.Flush(100)
	}
	k.p.Close()
	k.events.Wait()
	return err
}

type server struct {
	cfg      config
	producer *producer
}

// check makes sure, at start, that a Kafka broker answers and that the exchange exists.
func (s *server) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := s.producer.p.GetMetadata(nil, false, int(startTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("kafka %s: no broker answered: %w", s.cfg.kafkaBootstrap, err)
	}
	conn, err := dialRabbit(ctx, s.cfg.rabbitURL)
	if err != nil {
		return err
	}
	// amqp091-go's synchronous methods take no context: dropping the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	defer stop()
	defer func() { _ = conn.CloseDeadline(deadline(ctx)) }()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: channel: %w", err)
	}
	if err := ch.ExchangeDeclarePassive(s.cfg.rabbitExchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			return fmt.Errorf("rabbitmq: exchange %q does not exist: declare it (a durable topic exchange) or start the system that does: %w",
				s.cfg.rabbitExchange, err)
		}
		return fmt.Errorf("rabbitmq: check exchange %q: %w", s.cfg.rabbitExchange, err)
	}
	return nil
}

// dialRabbit opens a connection; the TCP connect and the AMQP handshake end by ctx's deadline.
func dialRabbit(ctx context.Context, url string) (*amqp.Connection, error) {
	left := time.Until(deadline(ctx))
	if left <= 0 {
		return nil, fmt.Errorf("rabbitmq: dial: %w", context.DeadlineExceeded)
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(left)})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial: %w", err)
	}
	return conn, nil
}

type orderRequest struct {
	CustomerID string `json:"customer_id"`
	Items      []struct {
		SKU      string `json:"sku"`
		Quantity int32  `json:"quantity"`
	} `json:"items"`
}

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
	var req orderRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, problem{Type: typeBodyTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("the body must not exceed %d bytes", maxBodyBytes)})
			return
		}
		writeProblem(w, problem{Type: typeMalformed, Title: "Malformed request", Status: http.StatusBadRequest,
			Detail: "the body is not a valid order document: " + err.Error()})
		return
	}

	// 1. A new connection to the validator, for this one call.
	priced, err := s.validate(r.Context(), req)
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
			writeProblem(w, rejected(st))
			return
		}
		unavailable(w, "the order could not be validated right now and was not placed", err)
		return
	}

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

	// 2. Kafka: send, then flush. 3. RabbitMQ: connect, publish, close. One after the other.
	if err := s.sendKafka(event.GetOrderId(), eventID.String(), body); err != nil {
		unavailable(w, "the order was not confirmed by Kafka", err)
		return
	}
	if err := s.sendRabbit(r.Context(), eventID.String(), event.GetPlacedAt().AsTime(), body); err != nil {
		unavailable(w, "the order could not be sent to RabbitMQ, but may still be placed", err)
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

func (s *server) validate(ctx context.Context, req orderRequest) (*ordersv1.ValidateOrderResponse, error) {
	conn, err := grpc.NewClient(s.cfg.validatorAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	vreq := &ordersv1.ValidateOrderRequest{CustomerId: req.CustomerID, Items: make([]*ordersv1.OrderItem, len(req.Items))}
	for i, item := range req.Items {
		vreq.Items[i] = &ordersv1.OrderItem{Sku: item.SKU, Quantity: item.Quantity}
	}
	ctx, cancel := context.WithTimeout(ctx, validatorTimeout)
	defer cancel()
	return ordersv1.NewOrderValidationClient(conn).ValidateOrder(ctx, vreq)
}

// sendKafka produces the event and waits until the broker acknowledged it, as the tutorial's
// send(); flush().
func (s *server) sendKafka(orderID, eventID string, body []byte) error {
	deadlineAt := time.Now().Add(kafkaTimeout)
	delivered := make(chan kafka.Event, 1)
	topic := s.cfg.kafkaTopic
	err := s.producer.p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(orderID),
		Value:          body,
		Headers: []kafka.Header{
			{Key: ordersv1.HeaderContentType, Value: []byte(ordersv1.ContentType)},
			{Key: ordersv1.HeaderEventType, Value: []byte(ordersv1.EventTypeOrderPlaced)},
			{Key: ordersv1.HeaderEventID, Value: []byte(eventID)},
		},
	}, delivered)
	if err != nil {
		return fmt.Errorf("kafka: produce: %w", err)
	}
	// The tutorial's flush() returns once the message is acknowledged. confluent-kafka-go's
	// Flush would wait for every message in flight, other orders' too, and polls in steps of
	// 100 ms, which it would spend idle whenever the producer's own poller took the report
	// first: a cost of this library, not of the tutorial's pattern. So: wait for this message's
	// delivery report.
	timer := time.NewTimer(time.Until(deadlineAt))
	defer timer.Stop()
	select {
	case ev := <-delivered:
		return deliveryError(ev)
	case <-timer.C:
		return fmt.Errorf("kafka: not acknowledged within %s", kafkaTimeout)
	}
}

func deliveryError(ev kafka.Event) error {
	m, ok := ev.(*kafka.Message)
	if !ok {
		return fmt.Errorf("kafka: unexpected delivery event %v", ev)
	}
	if m.TopicPartition.Error != nil {
		return fmt.Errorf("kafka: deliver: %w", m.TopicPartition.Error)
	}
	return nil
}

// sendRabbit connects, publishes once without a confirm, and disconnects.
func (s *server) sendRabbit(ctx context.Context, eventID string, placedAt time.Time, body []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rabbitTimeout)
	defer cancel()
	conn, err := dialRabbit(ctx, s.cfg.rabbitURL)
	if err != nil {
		return err
	}
	// amqp091-go's channel open and close take no context: dropping the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	defer stop()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.PublishWithContext(ctx, s.cfg.rabbitExchange, ordersv1.RoutingKey, false, false, amqp.Publishing{
			Headers: amqp.Table{
				ordersv1.HeaderContentType: ordersv1.ContentType,
				ordersv1.HeaderEventType:   ordersv1.EventTypeOrderPlaced,
				ordersv1.HeaderEventID:     eventID,
			},
			ContentType:  ordersv1.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    eventID,
			Timestamp:    placedAt.UTC(),
			Type:         ordersv1.EventTypeOrderPlaced,
			Body:         body,
		})
	}
	if err == nil {
		err = ch.Close()
	}
	// The broker handles a connection's frames in order: its close-ok comes after it took the
	// publish. That is all this program knows of the message.
	cerr := conn.CloseDeadline(deadline(ctx))
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("rabbitmq: close: %w", cerr)
	}
	return nil
}

// deadline is ctx's deadline; every context this program passes here has one.
func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(startTimeout)
	}
	return d
}

const (
	problemBase      = "https://github.com/backend-prep/backend-prep/blob/main/services/order-api/README.md#"
	typeMalformed    = problemBase + "malformed-request"
	typeBodyTooLarge = problemBase + "body-too-large"
	typeInvalidOrder = problemBase + "invalid-order"
	typeUnavailable  = problemBase + "unavailable"
)

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

func unavailable(w http.ResponseWriter, detail string, err error) {
	fmt.Fprintf(os.Stderr, "seedstyle: 503: %s: %v\n", detail, err)
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
	_ = json.NewEncoder(w).Encode(v)
}
