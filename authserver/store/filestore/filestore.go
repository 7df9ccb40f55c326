// Package filestore is toolgate's default store.Store: one process, state
// kept in memory and written to a single file in the data directory so that
// it survives restarts.
//
// Mutations (new codes, refresh rotations, keys) are rare, so every one
// rewrites the whole state file at once: a temporary file in the same
// directory, fsync, rename. A crash leaves either the old state or the new,
// never a mix. A mutation whose write fails is undone in memory and
// reported, so memory never promises what the disk does not hold.
//
// The state file holds the server's signing key. Open therefore refuses a
// state file it cannot read or parse instead of starting empty, which would
// silently replace the key and sign everybody out. An exclusive lock on
// <dir>/lock keeps a second toolgate process out of the same directory;
// several replicas need the Redis store.
//
// Contexts: an operation whose context is already done returns its error
// and changes nothing. Once started, an operation runs to the end; it only
// touches local disk.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/toolgate/toolgate/authserver/store"
)

// Names inside the data directory.
const (
	stateName   = "state.json"
	lockName    = "lock"
	tempPattern = "state-*.tmp"
)

// stateVersion is the format of the state file; Open refuses others.
const stateVersion = 1

// errClosed is returned by every operation after Close.
var errClosed = errors.New("filestore: store is closed")

// Store is a store.Store kept in one directory. Use Open to get one.
type Store struct {
	path string   // <dir>/state.json
	lock *os.File // held open, and flocked, until Close

	mu      sync.Mutex
	entries map[string]entry
	closed  bool
	lastErr error // the last failed write, until a write succeeds; for Ping
}

var _ store.Store = (*Store)(nil)

// entry is one value; the zero Expires means it never expires.
type entry struct {
	Value   []byte    `json:"value"`
	Expires time.Time `json:"expires,omitzero"`
}

func (e entry) live(now time.Time) bool {
	return e.Expires.IsZero() || now.Before(e.Expires)
}

// stateFile is the JSON layout of state.json. Values are base64 (the
// encoding/json form of []byte), so any bytes round-trip.
type stateFile struct {
	Version int              `json:"version"`
	Entries map[string]entry `json:"entries"`
}

// Open opens the store in dir, creating dir (mode 0700) if it is missing.
// It fails if another process holds dir, or if the state file exists but
// cannot be read or parsed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("filestore: DATA_DIR is empty; it must name a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create DATA_DIR %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{path: filepath.Join(dir, stateName), lock: lock}
	if s.entries, err = load(s.path, time.Now()); err != nil {
		lock.Close() // releases the flock too
		return nil, err
	}
	removeStaleTemps(dir)
	return s, nil
}

// load reads the state file, dropping expired entries. A missing file is
// an empty store; anything else that goes wrong is an error naming the file.
func load(path string, now time.Time) (map[string]entry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: read state file %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("filestore: state file %s is corrupt (%v); restore it from a backup or move it away to start empty, which replaces the signing key", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("filestore: state file %s has format version %d, this toolgate reads version %d", path, st.Version, stateVersion)
	}
	entries := make(map[string]entry, len(st.Entries))
	for k, e := range st.Entries {
		if e.live(now) {
			entries[k] = e
		}
	}
	return entries, nil
}

// removeStaleTemps deletes temporary files a crash left behind. They hold
// nothing the state file lacks; failing to remove them is harmless.
func removeStaleTemps(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, tempPattern))
	for _, name := range stale {
		os.Remove(name)
	}
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) error {
	return s.mutate(ctx, func(now time.Time) (func(), error) {
		prev, had := s.entries[key]
		if had && prev.live(now) {
			return nil, store.ErrExists
		}
		s.entries[key] = entry{Value: clone(value), Expires: expires}
		return s.restorer(key, prev, had), nil
	})
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	e, ok := s.entries[key]
	if !ok || !e.live(time.Now()) {
		return nil, store.ErrNotFound
	}
	return clone(e.Value), nil
}

// Take implements store.Store.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	err := s.mutate(ctx, func(now time.Time) (func(), error) {
		prev, had := s.entries[key]
		if !had || !prev.live(now) {
			return nil, store.ErrNotFound
		}
		delete(s.entries, key)
		value = clone(prev.Value)
		return s.restorer(key, prev, had), nil
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}

// CompareAndSwap implements store.Store.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, expires time.Time) (bool, error) {
	swapped := false
	err := s.mutate(ctx, func(now time.Time) (func(), error) {
		prev, had := s.entries[key]
		if !had || !prev.live(now) {
			return nil, store.ErrNotFound
		}
		if string(prev.Value) != string(old) {
			return nil, nil
		}
		s.entries[key] = entry{Value: clone(value), Expires: expires}
		swapped = true
		return s.restorer(key, prev, had), nil
	})
	if err != nil {
		return false, err
	}
	return swapped, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.mutate(ctx, func(time.Time) (func(), error) {
		prev, had := s.entries[key]
		if !had {
			return nil, nil
		}
		delete(s.entries, key)
		return s.restorer(key, prev, had), nil
	})
}

// Ping reports the last failed write until a write succeeds again, so
// readiness turns false while the disk refuses the state file.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return s.lastErr
}

// Close releases the directory lock. Every mutation is already on disk,
// so there is nothing left to flush. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.entries = nil
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("filestore: release lock: %w", err)
	}
	return nil
}

// mutate runs change under the lock and then writes the state file.
// change returns a function that undoes it, or nil if it changed nothing
// (then nothing is written). If the write fails, the change is undone.
func (s *Store) mutate(ctx context.Context, change func(now time.Time) (undo func(), err error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	undo, err := change(time.Now())
	if err != nil || undo == nil {
		return err
	}
	if err := s.write(); err != nil {
		undo()
		s.lastErr = err
		return err
	}
	s.lastErr = nil
	return nil
}

// restorer returns a function that puts key back as it was.
func (s *Store) restorer(key string, prev entry, had bool) func() {
	return func() {
		if had {
			s.entries[key] = prev
		} else {
			delete(s.entries, key)
		}
	}
}

// write sweeps expired entries and replaces the state file atomically.
// The sweep costs one pass over the entries, which encoding needs anyway.
// The caller holds s.mu.
func (s *Store) write() error {
	now := time.Now()
	for k, e := range s.entries {
		if !e.live(now) {
			delete(s.entries, k)
		}
	}
	data, err := json.Marshal(stateFile{Version: stateVersion, Entries: s.entries})
	if err != nil {
		return fmt.Errorf("filestore: encode state: %w", err)
	}
	return replaceFile(s.path, data)
}

// replaceFile writes data to path via a synced temporary file (mode 0600)
// in the same directory and a rename, then syncs the directory so the
// rename itself survives a crash.
func replaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPattern) // mode 0600
	if err != nil {
		return fmt.Errorf("filestore: write state file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmpName, path)
	}
	if err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("filestore: write state file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("filestore: sync DATA_DIR %s: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// clone copies b, keeping a non-nil empty slice for an empty value.
func clone(b []byte) []byte {
	return append([]byte{}, b...)
}
