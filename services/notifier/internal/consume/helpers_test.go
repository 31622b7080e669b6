package consume_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	ordersv1 "github.com/backend-prep/backend-prep/libs/genproto/orders/v1"
	"github.com/backend-prep/backend-prep/libs/rabbitmq"
	"github.com/backend-prep/backend-prep/services/notifier/internal/consume"
	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

// orderPlaced is a valid event for orderID.
func orderPlaced(orderID string) *ordersv1.OrderPlaced {
	return &ordersv1.OrderPlaced{
		OrderId:    orderID,
		CustomerId: "c-42",
		Items: []*ordersv1.PricedItem{
			{Sku: "BOOK-001", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
		},
		TotalCents: 2598,
		Currency:   "EUR",
		PlacedAt:   timestamppb.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)),
	}
}

// eventMessage is e as order-api publishes it.
func eventMessage(t *testing.T, e *ordersv1.OrderPlaced) rabbitmq.Message {
	t.Helper()
	body, err := ordersv1.MarshalOrderPlaced(e)
	require.NoError(t, err)
	return rabbitmq.Message{
		Body:        body,
		ContentType: ordersv1.ContentType,
		MessageID:   "evt-" + e.GetOrderId(),
		Type:        ordersv1.EventTypeOrderPlaced,
		Headers: map[string]any{
			ordersv1.HeaderContentType: ordersv1.ContentType,
			ordersv1.HeaderEventType:   ordersv1.EventTypeOrderPlaced,
			ordersv1.HeaderEventID:     "evt-" + e.GetOrderId(),
			ordersv1.HeaderTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
}

// delivered is msg as the broker would deliver it.
func delivered(msg rabbitmq.Message) rabbitmq.Delivery {
	return rabbitmq.Delivery{
		Body:          msg.Body,
		ContentType:   msg.ContentType,
		MessageID:     msg.MessageID,
		CorrelationID: msg.CorrelationID,
		Type:          msg.Type,
		Timestamp:     msg.Timestamp,
		Headers:       msg.Headers,
		Persistent:    true,
	}
}

// scriptedSender fails the first failures[orderID] sends of each order (always, when negative).
type scriptedSender struct {
	mu       sync.Mutex
	failures map[string]int
	calls    map[string]int
	panics   bool // the first failing send panics instead of returning an error
}

func newScriptedSender(failures map[string]int) *scriptedSender {
	return &scriptedSender{failures: failures, calls: map[string]int{}}
}

func (s *scriptedSender) Send(_ context.Context, o notify.Order) error {
	s.mu.Lock()
	s.calls[o.ID]++
	n, fail := s.calls[o.ID], s.failures[o.ID]
	panics := s.panics
	s.mu.Unlock()
	if fail < 0 || n <= fail {
		if panics {
			panic("gateway client crashed")
		}
		return notify.ErrUnavailable
	}
	return nil
}

func (s *scriptedSender) Calls(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[orderID]
}

// service is the notifier's domain side, with its metrics on a registry of its own.
type service struct {
	store    *notify.Store
	notifier *notify.Notifier
	metrics  *consume.Metrics
	registry *prometheus.Registry
}

func newService(t *testing.T, sender notify.Sender) service {
	t.Helper()
	reg := prometheus.NewRegistry()
	store, err := notify.NewStore(100)
	require.NoError(t, err)
	nm, err := notify.NewMetrics(reg)
	require.NoError(t, err)
	cm, err := consume.NewMetrics(reg)
	require.NoError(t, err)
	return service{
		store:    store,
		notifier: notify.NewNotifier(sender, store, nm, zaptest.NewLogger(t)),
		metrics:  cm,
		registry: reg,
	}
}
