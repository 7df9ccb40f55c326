// Package store is the state of toolgate's embedded authorization server:
// authorization codes, pending sign-ins, refresh-token families and the
// server's own keys. Everything the server keeps goes through the small
// Store interface, which a local file store and a Redis store implement
// alike; storetest is the conformance suite both must pass.
//
// Keys are short ASCII strings chosen by the caller ("code:<hash>",
// "family:<id>", "key:signing"); values are opaque bytes. Every entry has an
// expiry; the zero time means it never expires. An expired entry is absent
// for every operation, whether or not it has been swept yet.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound: no live entry under the key.
var ErrNotFound = errors.New("store: not found")

// ErrExists: Create found a live entry under the key.
var ErrExists = errors.New("store: already exists")

// Store is the authorization server's state. Implementations are safe for
// concurrent use by many goroutines and, for shared stores, many processes:
// Create, Take and CompareAndSwap are atomic across all of them.
type Store interface {
	// Create stores value under key until expires, unless a live entry is
	// there already, in which case it returns ErrExists and changes nothing.
	Create(ctx context.Context, key string, value []byte, expires time.Time) error
	// Get returns the live value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the live value under key and removes it, atomically: of
	// any number of concurrent Takes of one key, exactly one gets the value
	// and the rest get ErrNotFound. Single-use codes and states rely on it.
	Take(ctx context.Context, key string) ([]byte, error)
	// CompareAndSwap replaces the value under key with value (and its
	// expiry with expires) only if the live value equals old byte for byte.
	// It reports whether it swapped; a missing key is ErrNotFound.
	CompareAndSwap(ctx context.Context, key string, old, value []byte, expires time.Time) (bool, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store can serve (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store's resources; a file store flushes first.
	Close() error
}
