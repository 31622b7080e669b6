package notify

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// journal is an append-only file of notifications, one JSON object per line.
//
// Appends are not synced to disk: a write survives the process being killed (it is in the
// kernel's page cache), not the machine losing power. That matches what it is for, remembering
// across restarts of the notifier, at the cost of one write call per notification.
type journal struct {
	path  string
	file  *os.File
	lines int // lines in the file, for deciding when to rewrite it
}

// record is a notification as written to the journal.
type record struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Attempts   int       `json:"attempts"`
	SentAt     time.Time `json:"sent_at"`
}

// openJournal reads the notifications in the file at path, oldest first. Lines it cannot read
// (a write cut short by a crash) are skipped. A missing file is an empty journal.
func openJournal(path string) (*journal, []Notification, error) {
	var loaded []Notification
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("notify: open journal: %w", err)
	default:
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024) // lines are small; leave room anyway
		for sc.Scan() {
			var r record
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.OrderID == "" {
				continue
			}
			loaded = append(loaded, Notification(r))
		}
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("notify: read journal %s: %w", path, err)
		}
	}
	return &journal{path: path}, loaded, nil
}

func (j *journal) append(n Notification) error {
	line, err := json.Marshal(record(n))
	if err != nil {
		return fmt.Errorf("notify: journal: %w", err)
	}
	// One write call per line: with O_APPEND it lands whole, after every earlier line.
	if _, err := j.file.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("notify: append to journal %s: %w", j.path, err)
	}
	j.lines++
	return nil
}

// rewrite replaces the file with ns, atomically: a crash leaves either the old file or the new.
func (j *journal) rewrite(ns []Notification) error {
	tmp, err := os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("notify: rewrite journal: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for _, n := range ns {
		if err := enc.Encode(record(n)); err != nil {
			return errors.Join(fmt.Errorf("notify: rewrite journal: %w", err), tmp.Close())
		}
	}
	if err := errors.Join(w.Flush(), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("notify: rewrite journal: %w", err)
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("notify: rewrite journal: %w", err)
	}
	file, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("notify: reopen journal: %w", err)
	}
	if j.file != nil {
		_ = j.file.Close() // it was only appended to, and everything it had is in the new file
	}
	j.file, j.lines = file, len(ns)
	return nil
}

func (j *journal) close() error {
	if j.file == nil {
		return nil
	}
	if err := j.file.Close(); err != nil {
		return fmt.Errorf("notify: close journal: %w", err)
	}
	return nil
}
