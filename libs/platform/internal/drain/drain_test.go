package drain_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/platform/internal/drain"
)

func TestContextLeavesTimeForLaterHooks(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parentDeadline, _ := parent.Deadline()

	ctx, stop := drain.Context(parent)
	defer stop()

	deadline, ok := ctx.Deadline()
	require.True(t, ok)
	left := time.Until(deadline)
	assert.InDelta(t, 20*time.Second, left, float64(time.Second), "two thirds of 30s")
	assert.True(t, deadline.Before(parentDeadline))
}

func TestContextWithoutDeadlineFollowsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := drain.Context(parent)
	defer stop()

	_, ok := ctx.Deadline()
	assert.False(t, ok)
	cancel()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
}
