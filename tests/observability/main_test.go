package observability_test

import (
	"os"
	"testing"

	"github.com/backend-prep/backend-prep/tests/internal/stack"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stack.RemoveBinaries()
	os.Exit(code)
}
