package main

// partitionOf is the partition a record with this key lands in, as order-api's producer
// chooses it (libs/kafka: partitioner murmur2_random, the Java client's default): the
// murmur2 hash of the key, made positive, modulo the partition count. The same key always
// gives the same partition, which is what keeps one order's events in order.
func partitionOf(key string, partitions int) int32 {
	return int32(int(murmur2([]byte(key))&0x7fffffff) % partitions)
}

// murmur2 is Kafka's 32-bit murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2).
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
