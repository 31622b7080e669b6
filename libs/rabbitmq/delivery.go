package rabbitmq

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Delivery is a message handed to a Handler. The Consumer settles it from the handler's result,
// so it carries no ack methods.
type Delivery struct {
	Body            []byte
	ContentType     string
	ContentEncoding string
	MessageID       string
	CorrelationID   string
	Type            string
	AppID           string
	Timestamp       time.Time
	Headers         map[string]any

	// Exchange and RoutingKey are those the message was published with (or dead-lettered
	// with, after a dead-letter routing key replaced it).
	Exchange   string
	RoutingKey string
	// Persistent reports delivery mode 2: the message was stored to survive a broker restart.
	Persistent bool
	// Redelivered means the broker delivered this message before, to this or another consumer,
	// without it being acknowledged (a consumer died, or it was requeued).
	Redelivered bool
	// DeliveryCount is the x-delivery-count header that quorum queues set on redeliveries
	// (zero on the first delivery and on classic queues). From RabbitMQ 4.3 only failed
	// deliveries count: a rejection, which is how the Consumer settles handler errors.
	DeliveryCount int64
	// Deaths is the parsed x-death header: the dead-letterings this message went through,
	// most recent first.
	Deaths []Death
}

// Death is one entry of the x-death header that RabbitMQ adds when it dead-letters a message.
type Death struct {
	// Queue is the queue the message was dead-lettered from.
	Queue string
	// Reason is "rejected", "expired", "maxlen" or "delivery_limit".
	Reason      string
	Exchange    string
	RoutingKeys []string
	// Count is how many times the message was dead-lettered from Queue for Reason.
	Count int64
	// Time is when that happened first.
	Time time.Time
}

// DeathCount returns how many times the message was dead-lettered from queue, for any reason:
// with a TTL retry queue, the number of retries it already had.
func (d Delivery) DeathCount(queue string) int64 {
	var n int64
	for _, death := range d.Deaths {
		if death.Queue == queue {
			n += death.Count
		}
	}
	return n
}

func newDelivery(d amqp.Delivery) Delivery {
	count, _ := integer(d.Headers["x-delivery-count"])
	return Delivery{
		Body:            d.Body,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		MessageID:       d.MessageId,
		CorrelationID:   d.CorrelationId,
		Type:            d.Type,
		AppID:           d.AppId,
		Timestamp:       d.Timestamp,
		Headers:         d.Headers,
		Exchange:        d.Exchange,
		RoutingKey:      d.RoutingKey,
		Persistent:      d.DeliveryMode == amqp.Persistent,
		Redelivered:     d.Redelivered,
		DeliveryCount:   count,
		Deaths:          parseDeaths(d.Headers),
	}
}

// parseDeaths reads x-death leniently: entries or fields of an unexpected shape are skipped
// rather than failing the delivery.
func parseDeaths(headers map[string]any) []Death {
	entries, _ := headers["x-death"].([]any)
	var deaths []Death
	for _, entry := range entries {
		table, ok := asMap(entry)
		if !ok {
			continue
		}
		death := Death{}
		death.Queue, _ = table["queue"].(string)
		death.Reason, _ = table["reason"].(string)
		death.Exchange, _ = table["exchange"].(string)
		death.Count, _ = integer(table["count"])
		death.Time, _ = table["time"].(time.Time)
		keys, _ := table["routing-keys"].([]any)
		for _, k := range keys {
			if s, ok := k.(string); ok {
				death.RoutingKeys = append(death.RoutingKeys, s)
			}
		}
		deaths = append(deaths, death)
	}
	return deaths
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case amqp.Table:
		return m, true
	case map[string]any:
		return m, true
	}
	return nil, false
}

// integer accepts the integer types an AMQP table decodes to.
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	}
	return 0, false
}
