package notify

import (
	"errors"
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Store remembers the most recent notifications, at most a fixed number of them: enough to
// recognise an order redelivered after it was notified, and to answer which orders were
// notified recently.
//
// A store from NewStore lives in memory only and forgets everything when the process ends.
// One from OpenStore also appends every notification to a journal file and reloads it on the
// next start, so that a restarted notifier still knows what it sent before.
//
// It is safe for concurrent use.
type Store struct {
	limit int

	mu      sync.Mutex // serialises journal writes with the memory they mirror
	recent  *lru.Cache[string, Notification]
	journal *journal // nil: memory only
}

// NewStore returns an in-memory store that keeps the last limit notifications.
func NewStore(limit int) (*Store, error) {
	if limit < 1 {
		return nil, fmt.Errorf("notify: store limit must be at least 1, got %d", limit)
	}
	recent, err := lru.New[string, Notification](limit)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return &Store{limit: limit, recent: recent}, nil
}

// OpenStore returns a store that keeps the last limit notifications in memory and in the
// journal file at path, loading what the file already holds. Close it when done.
func OpenStore(path string, limit int) (*Store, error) {
	s, err := NewStore(limit)
	if err != nil {
		return nil, err
	}
	j, loaded, err := openJournal(path)
	if err != nil {
		return nil, err
	}
	for _, n := range loaded {
		s.recent.Add(n.OrderID, n)
	}
	// Rewritten at once: the file may end with a line cut short by a crash, and holds more
	// than the limit when the limit was lowered.
	if err := j.rewrite(s.recent.Values()); err != nil {
		return nil, errors.Join(err, j.close())
	}
	s.journal = j
	return s, nil
}

// Add records n, forgetting the oldest notification when the store is full. The error is
// about the journal only: n is remembered in memory in any case.
func (s *Store) Add(n Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent.Add(n.OrderID, n)
	if s.journal == nil {
		return nil
	}
	if err := s.journal.append(n); err != nil {
		return err
	}
	// The file holds every notification since its last rewrite; keep it within twice the limit.
	if s.journal.lines > 2*s.limit {
		return s.journal.rewrite(s.recent.Values())
	}
	return nil
}

// Get returns the notification sent for orderID, if it is still remembered. Looking an order
// up does not make it more recent: the store forgets in the order notifications were sent.
func (s *Store) Get(orderID string) (Notification, bool) {
	return s.recent.Peek(orderID)
}

// Limit is how many notifications the store remembers at most: the most recent ones.
func (s *Store) Limit() int {
	return s.limit
}

// Len is how many notifications are remembered.
func (s *Store) Len() int {
	return s.recent.Len()
}

// Close closes the journal, if any. The memory stays readable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.close()
	s.journal = nil
	return err
}
