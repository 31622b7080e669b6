package labs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

// TestReferencePrograms: labs/reference (order-api's job without the framework) and
// labs/seedstyle (the tutorial's way) answer order-api's contract on a real validator and real
// brokers, and publish an OrderPlaced event that the system's consumers accept: keyed by
// order_id on Kafka, with order-api's headers and properties on RabbitMQ. Each runs on a topic,
// an exchange and a queue of the test's own.
func TestReferencePrograms(t *testing.T) {
	kafka, amqpURL := brokertest.KafkaBootstrap(t), brokertest.RabbitMQURL(t)
	validatorAddr := startValidator(t)

	for _, name := range []string{"reference", "seedstyle"} {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), name)
			require.NoError(t, stack.Build(filepath.Join(stack.RepoRoot(), "labs"), bin, "./"+name, buildEnv()...))

			topic := brokertest.UniqueName(t, "labs.ref")
			exchange := brokertest.UniqueName(t, "labs.ref.orders")
			queue := exchange + ".placed"
			ch := amqpChannel(t, amqpURL) // closed after 15 s: for set-up only
			require.NoError(t, ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil))
			_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
			require.NoError(t, err)
			require.NoError(t, ch.QueueBind(queue, ordersv1.RoutingKey, exchange, false, nil))
			t.Cleanup(func() {
				deleteRabbitMQ(t, amqpURL, []string{queue}, []string{exchange})
				r := run(t, 30*time.Second, "kafka-topics", "--bootstrap", kafka, "--topic", topic, "--delete")
				assert.Equal(t, 0, r.code, r.output)
			})
			env := func(exchange string) map[string]string {
				return map[string]string{
					"HTTP_ADDR":               stack.FreeAddr(t),
					"VALIDATOR_ADDR":          validatorAddr,
					"KAFKA_BOOTSTRAP_SERVERS": kafka,
					"KAFKA_TOPIC":             topic,
					"RABBITMQ_URL":            amqpURL,
					"RABBITMQ_EXCHANGE":       exchange,
				}
			}

			t.Run("a missing exchange stops start-up", func(t *testing.T) {
				missing := exchange + ".missing"
				p := stack.StartProcess(t, name, bin, nil, env(missing))
				assert.Equal(t, 1, p.Wait(t, 30*time.Second), p.Output())
				assert.Contains(t, p.Output(), `exchange "`+missing+`" does not exist`)
			})

			e := env(exchange)
			addr := e["HTTP_ADDR"]
			p := stack.StartProcess(t, name, bin, nil, e)
			stack.WaitReady(t, p, addr, 60*time.Second)

			// Refused orders first: nothing of theirs may reach a broker.
			t.Run("a body that is not an order is a 400", func(t *testing.T) {
				for _, body := range []string{
					`{"customer_id":"c-42","items":[`,
					`{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":1}],"coupon":"x"}`,
					`{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":"2"}]}`,
					`{"customer_id":"c-42","items":[]} {}`,
					`[]`,
				} {
					status, header, got := postOrder(t, addr, body)
					assert.Equal(t, http.StatusBadRequest, status, "%s: %s", body, got)
					assert.Equal(t, "application/problem+json", header.Get("Content-Type"))
					assert.Contains(t, string(got), `"type":"https://github.com/backend-prep/backend-prep/blob/main/services/order-api/README.md#malformed-request"`)
				}
			})
			t.Run("an unknown SKU is a 422 naming it", func(t *testing.T) {
				status, header, got := postOrder(t, addr, `{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":1},{"sku":"NOPE-404","quantity":1}]}`)
				require.Equal(t, http.StatusUnprocessableEntity, status, string(got))
				assert.Equal(t, "application/problem+json", header.Get("Content-Type"))
				var p struct {
					Type       string `json:"type"`
					Violations []struct {
						Field string `json:"field"`
					} `json:"violations"`
				}
				require.NoError(t, json.Unmarshal(got, &p), string(got))
				assert.Contains(t, p.Type, "#invalid-order")
				require.Len(t, p.Violations, 1, string(got))
				assert.Equal(t, "items[1].sku", p.Violations[0].Field)
			})

			var placed struct {
				OrderID    string `json:"order_id"`
				Status     string `json:"status"`
				TotalCents int64  `json:"total_cents"`
				Currency   string `json:"currency"`
				Items      []struct {
					SKU            string `json:"sku"`
					Quantity       int32  `json:"quantity"`
					UnitPriceCents int64  `json:"unit_price_cents"`
					LineTotalCents int64  `json:"line_total_cents"`
				} `json:"items"`
			}
			status, header, got := postOrder(t, addr, `{"customer_id":"c-42","items":[{"sku":"BOOK-001","quantity":2}]}`)
			require.Equal(t, http.StatusAccepted, status, "order-api's status for a placed order: %s", got)
			assert.Equal(t, "application/json", header.Get("Content-Type"))
			require.NoError(t, json.Unmarshal(got, &placed), string(got))
			assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, placed.OrderID, "a UUIDv7")
			assert.Equal(t, "accepted", placed.Status)
			assert.Equal(t, "USD", placed.Currency)
			require.Len(t, placed.Items, 1)
			assert.Equal(t, "BOOK-001", placed.Items[0].SKU)
			assert.Equal(t, int32(2), placed.Items[0].Quantity)
			assert.Equal(t, 2*placed.Items[0].UnitPriceCents, placed.Items[0].LineTotalCents)
			assert.Equal(t, placed.Items[0].LineTotalCents, placed.TotalCents)

			t.Run("the event is on the exchange's bound queue, as order-api sends it", func(t *testing.T) {
				ch := amqpChannel(t, amqpURL)
				d := getOne(t, ch, queue, 10*time.Second)
				event, err := ordersv1.UnmarshalOrderPlaced(d.Body)
				require.NoError(t, err, string(d.Body))
				assert.Equal(t, placed.OrderID, event.GetOrderId())
				assert.Equal(t, "c-42", event.GetCustomerId())
				assert.Equal(t, placed.TotalCents, event.GetTotalCents())
				assert.Equal(t, ordersv1.RoutingKey, d.RoutingKey)
				assert.Equal(t, ordersv1.ContentType, d.ContentType)
				assert.Equal(t, ordersv1.EventTypeOrderPlaced, d.Type)
				assert.Equal(t, amqp.Persistent, d.DeliveryMode)
				assert.NotEmpty(t, d.MessageId)
				assert.Equal(t, amqp.Table{
					ordersv1.HeaderContentType: ordersv1.ContentType,
					ordersv1.HeaderEventType:   ordersv1.EventTypeOrderPlaced,
					ordersv1.HeaderEventID:     d.MessageId,
				}, d.Headers)
				assert.WithinDuration(t, event.GetPlacedAt().AsTime(), d.Timestamp, time.Second)

				_, more, err := ch.Get(queue, true)
				require.NoError(t, err)
				assert.False(t, more, "one message: the refused orders published nothing")
			})

			t.Run("the event is on the topic, keyed by order_id", func(t *testing.T) {
				r := run(t, 90*time.Second, "kafka-consumer", "--bootstrap", kafka, "--topic", topic,
					"--group", brokertest.UniqueName(t, "labs.ref.readers"), "--max", "1", "--timeout", "60s")
				require.Equal(t, 0, r.code, r.output)
				m := consumed.FindStringSubmatch(r.output)
				require.NotNil(t, m, r.output)
				value, err := strconv.Unquote(m[1])
				require.NoError(t, err, m[1])
				assert.Equal(t, placed.OrderID, m[2], "the record's key")
				event, err := ordersv1.UnmarshalOrderPlaced([]byte(value))
				require.NoError(t, err, value)
				assert.Equal(t, placed.OrderID, event.GetOrderId())
				assert.Equal(t, placed.TotalCents, event.GetTotalCents())
			})

			t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
				assert.Equal(t, 0, p.Terminate(t, 30*time.Second), p.Output())
				assert.Contains(t, p.Output(), name+": stopped")
			})
		})
	}
}

// consumed is the line labs/examples/kafka/consumer prints for a record: its value (Go-quoted)
// and its key.
var consumed = regexp.MustCompile(`received ("(?:[^"\\]|\\.)*") with key (\S+): partition`)

// startValidator builds and runs the validator service on free ports and returns its gRPC
// address once it is ready.
func startValidator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "validator")
	require.NoError(t, stack.Build(stack.RepoRoot(), bin, "./services/validator"))
	grpcAddr, admin := stack.FreeAddr(t), stack.FreeAddr(t)
	p := stack.StartProcess(t, "validator", bin, nil, map[string]string{
		"GRPC_ADDR": grpcAddr, "ADMIN_ADDR": admin, "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
	})
	stack.WaitReady(t, p, admin, 60*time.Second)
	return grpcAddr
}

// postOrder sends body to POST /v1/orders with a deadline.
func postOrder(t *testing.T, addr, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/orders", bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := stack.Client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, got
}

// getOne polls queue until a message is there, and takes it.
func getOne(t *testing.T, ch *amqp.Channel, queue string, timeout time.Duration) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on queue %s within %s", queue, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
