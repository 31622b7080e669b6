package consume_test

import (
	"testing"

	"github.com/backend-prep/backend-prep/libs/brokertest"
)

// TestMain removes the broker containers the tests started, when they ran on Docker.
func TestMain(m *testing.M) { brokertest.Main(m) }
