//go:build unix

package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on <dir>/lock and returns
// the open lock file; closing it releases the lock. The kernel drops the
// lock when the process dies, so a crash never leaves the directory held.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: open lock file %s: %w", path, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("filestore: DATA_DIR %s is in use by another toolgate process; use the Redis store (STORE=redis) for several replicas", dir)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("filestore: lock %s: %w", path, err)
	}
	return f, nil
}
