package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/authserver/store"
	"github.com/toolgate/toolgate/authserver/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, t.TempDir())
	})
}

func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestReopenKeepsLiveEntriesAndDropsExpired(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	expires := time.Now().Add(100 * time.Millisecond)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for key, exp := range map[string]time.Time{
		"key:signing": {},
		"family:1":    time.Now().Add(time.Hour),
		"code:brief":  expires,
	} {
		if err := s.Create(ctx, key, all, exp); err != nil {
			t.Fatalf("Create(%q): %v", key, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	time.Sleep(time.Until(expires) + 10*time.Millisecond)

	s = mustOpen(t, dir)
	defer s.Close()
	for _, key := range []string{"key:signing", "family:1"} {
		got, err := s.Get(ctx, key)
		if err != nil || string(got) != string(all) {
			t.Errorf("Get(%q) after reopen = (%x, %v), want the stored bytes", key, got, err)
		}
	}
	if _, ok := s.entries["code:brief"]; ok {
		t.Errorf("expired entry was loaded on reopen")
	}
}

func TestWriteSweepsExpiredEntries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	expires := time.Now().Add(50 * time.Millisecond)
	if err := s.Create(ctx, "code:old", []byte("v"), expires); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expires) + 10*time.Millisecond)
	if err := s.Create(ctx, "code:new", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	if _, ok := st.Entries["code:old"]; ok {
		t.Errorf("expired entry still in the state file after a write")
	}
	if _, ok := st.Entries["code:new"]; !ok {
		t.Errorf("new entry missing from the state file")
	}
}

func readState(t *testing.T, dir string) stateFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file is not valid JSON: %v", err)
	}
	return st
}

func TestOpenRefusesBadStateFile(t *testing.T) {
	tests := map[string]string{
		"not json":      "{this is not json",
		"truncated":     `{"version":1,"entries":{"k":{"value":"AAE`,
		"bad base64":    `{"version":1,"entries":{"k":{"value":"!!!"}}}`,
		"wrong version": `{"version":2,"entries":{}}`,
		"no version":    `{"entries":{}}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, stateName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a bad state file")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
			if got, _ := os.ReadFile(path); string(got) != content {
				t.Errorf("Open changed the bad state file")
			}
			// The failed Open must not keep the directory locked.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			mustOpen(t, dir).Close()
		})
	}
}

func TestOpenRefusesUnreadableStateFile(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read as one.
	if err := os.Mkdir(filepath.Join(dir, stateName), 0o700); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir); err == nil {
		s.Close()
		t.Fatal("Open accepted an unreadable state file")
	}
	// The failed Open must not keep the directory locked.
	if err := os.Remove(filepath.Join(dir, stateName)); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir).Close()
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	s2, err := Open(dir)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held directory succeeded")
	}
	for _, want := range []string{dir, "in use by another toolgate process", "STORE=redis"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir).Close()
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	s := mustOpen(t, dir)
	defer s.Close()
	if err := s.Create(context.Background(), "key:signing", []byte("secret"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700|os.ModeDir)
	checkMode(t, filepath.Join(dir, stateName), 0o600)
	checkMode(t, filepath.Join(dir, lockName), 0o600)
	leftovers, _ := filepath.Glob(filepath.Join(dir, tempPattern))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestOpenRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "state-123.tmp")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir).Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived Open: %v", err)
	}
}

// A write that fails undoes the change in memory, reports the error, and
// turns Ping false until a write succeeds again.
func TestFailedWriteIsUndone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	if err := s.Create(ctx, "code:1", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Rename cannot replace a non-empty directory, so writes now fail.
	blocker := filepath.Join(dir, stateName)
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}

	if err := s.Create(ctx, "code:2", []byte("v"), time.Time{}); err == nil {
		t.Fatal("Create succeeded although the state file cannot be written")
	}
	if _, err := s.Get(ctx, "code:2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed Create left the entry in memory: err = %v", err)
	}
	if _, err := s.Take(ctx, "code:1"); err == nil {
		t.Fatal("Take succeeded although the state file cannot be written")
	}
	if _, err := s.Get(ctx, "code:1"); err != nil {
		t.Errorf("failed Take removed the entry from memory: %v", err)
	}
	if ok, err := s.CompareAndSwap(ctx, "code:1", []byte("v"), []byte("w"), time.Time{}); ok || err == nil {
		t.Fatalf("CompareAndSwap = (%v, %v) although the state file cannot be written", ok, err)
	}
	if got, _ := s.Get(ctx, "code:1"); string(got) != "v" {
		t.Errorf("failed CompareAndSwap changed the value to %q", got)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping is healthy although writes fail")
	}

	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "code:3", []byte("v"), time.Time{}); err != nil {
		t.Fatalf("Create after the disk recovered: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after a successful write: %v", err)
	}
}

func TestClosedStoreRefusesOperations(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, errClosed) {
		t.Errorf("Get after Close: err = %v, want errClosed", err)
	}
	if err := s.Create(ctx, "k", nil, time.Time{}); !errors.Is(err, errClosed) {
		t.Errorf("Create after Close: err = %v, want errClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, errClosed) {
		t.Errorf("Ping after Close: err = %v, want errClosed", err)
	}
}

func TestOpenRefusesEmptyDir(t *testing.T) {
	if _, err := Open(""); err == nil || !strings.Contains(err.Error(), "DATA_DIR") {
		t.Fatalf("Open(\"\") = %v, want an error naming DATA_DIR", err)
	}
}
