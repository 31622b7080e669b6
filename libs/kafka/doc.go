// Package kafka adapts confluent-kafka-go (librdkafka) to the services of this repository.
//
// It offers one long-lived idempotent [Producer] whose Publish waits for the broker's
// acknowledgement, an [Admin] that declares topics idempotently, and a consumer-group [Consumer]
// that commits an offset only after its handler accepted the message. [Module] wires the producer
// into an fx application.
//
// The package uses cgo: librdkafka is linked statically from the confluent-kafka-go module, so
// builds need CGO_ENABLED=1 and a C toolchain (and `-tags musl` on musl-based images).
package kafka
