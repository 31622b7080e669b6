package kafka_test

import (
	"testing"

	"github.com/backend-prep/backend-prep/libs/brokertest"
)

func TestMain(m *testing.M) { brokertest.Main(m) }
