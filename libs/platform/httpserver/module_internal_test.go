package httpserver

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func TestReadyOnlyWhileListening(t *testing.T) {
	e, err := New(zap.NewNop(), prometheus.NewRegistry())
	require.NoError(t, err)
	s := NewServer(Config{Addr: "127.0.0.1:0"}, e, zap.NewNop())
	ctx := context.Background()

	require.Error(t, s.listening(ctx), "not ready before Start")
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Stop(ctx) })
	require.NoError(t, s.listening(ctx), "ready once listening")
}
