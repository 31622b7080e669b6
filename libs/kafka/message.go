package kafka

import (
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Header is one record header. Kafka keeps headers in order and allows repeated keys.
type Header struct {
	Key   string
	Value []byte
}

// Message is a Kafka record: what Publish sends and what a Handler receives.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header

	// Partition, Offset and Timestamp describe a consumed message; Publish ignores them because
	// the partition follows from the key and the broker assigns offset and timestamp.
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Header returns the value of the first header named key.
func (m *Message) Header(key string) ([]byte, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

func (m *Message) toKafka() *ckafka.Message {
	topic := m.Topic
	km := &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
		Key:            m.Key,
		Value:          m.Value,
	}
	if len(m.Headers) > 0 {
		km.Headers = make([]ckafka.Header, len(m.Headers))
		for i, h := range m.Headers {
			km.Headers[i] = ckafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return km
}

func messageFromKafka(km *ckafka.Message) *Message {
	m := &Message{
		Key:       km.Key,
		Value:     km.Value,
		Partition: km.TopicPartition.Partition,
		Offset:    int64(km.TopicPartition.Offset),
		Timestamp: km.Timestamp.UTC(),
	}
	if km.TopicPartition.Topic != nil {
		m.Topic = *km.TopicPartition.Topic
	}
	if len(km.Headers) > 0 {
		m.Headers = make([]Header, len(km.Headers))
		for i, h := range km.Headers {
			m.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}
