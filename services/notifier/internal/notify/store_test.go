package notify_test

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/notifier/internal/notify"
)

func sentNotification(orderID string, attempts int) notify.Notification {
	return notify.Notification{
		OrderID:    orderID,
		CustomerID: "c-42",
		Attempts:   attempts,
		SentAt:     time.Date(2025, 3, 1, 12, 0, attempts, 5000, time.UTC),
	}
}

// openStore opens the journaled store at path and closes it when the test ends.
func openStore(t *testing.T, path string, limit int) *notify.Store {
	t.Helper()
	s, err := notify.OpenStore(path, limit)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func TestJournaledStoreRemembersAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notifications.jsonl")
	before := openStore(t, path, 10)
	want := []notify.Notification{sentNotification("o-1", 1), sentNotification("o-2", 3)}
	for _, n := range want {
		require.NoError(t, before.Add(n))
	}
	require.NoError(t, before.Close())

	after := openStore(t, path, 10)

	assert.Equal(t, 2, after.Len())
	for _, n := range want {
		got, ok := after.Get(n.OrderID)
		require.True(t, ok, n.OrderID)
		assert.Equal(t, n, got)
	}
}

func TestJournalSurvivesALineCutShortByACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notifications.jsonl")
	s := openStore(t, path, 10)
	require.NoError(t, s.Add(sentNotification("o-1", 1)))
	require.NoError(t, s.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"order_id":"o-cut","customer_`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	reopened := openStore(t, path, 10)
	require.NoError(t, reopened.Add(sentNotification("o-2", 1)))
	require.NoError(t, reopened.Close())
	last := openStore(t, path, 10)

	for _, id := range []string{"o-1", "o-2"} {
		_, ok := last.Get(id)
		assert.True(t, ok, id)
	}
	_, ok := last.Get("o-cut")
	assert.False(t, ok)
}

func TestJournalStaysWithinTwiceTheLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notifications.jsonl")
	s := openStore(t, path, 3)

	for i := range 20 {
		require.NoError(t, s.Add(sentNotification("o-"+string(rune('a'+i)), 1)))
		assert.LessOrEqual(t, countLines(t, path), 6, "after %d notifications", i+1)
	}
	require.NoError(t, s.Close())
	reopened := openStore(t, path, 3)

	assert.Equal(t, 3, reopened.Len())
	for _, id := range []string{"o-r", "o-s", "o-t"} {
		_, ok := reopened.Get(id)
		assert.True(t, ok, "the newest are kept: %s", id)
	}
}

func TestJournalInAMissingDirectoryFailsToOpen(t *testing.T) {
	_, err := notify.OpenStore(filepath.Join(t.TempDir(), "missing", "notifications.jsonl"), 10)
	assert.Error(t, err)
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	require.NoError(t, sc.Err())
	return n
}
