//go:build !unix

package filestore

import (
	"errors"
	"os"
)

// lockDir fails: without flock the file store cannot keep a second process
// out of its directory, and two writers would lose each other's state.
func lockDir(string) (*os.File, error) {
	return nil, errors.New("filestore: the file store needs flock, which this platform lacks; use the Redis store (STORE=redis)")
}
