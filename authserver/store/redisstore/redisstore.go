// Package redisstore is the store.Store for several toolgate replicas: all
// state lives in one Redis server, and each operation is one atomic Redis
// command (or one short Lua script), so Create, Take and CompareAndSwap
// stay atomic across processes.
//
// Every key is stored under the "toolgate:" prefix. Expiries are handed to
// Redis as a time-to-live computed on this host (PX), so clock skew between
// toolgate and Redis does not stretch or shorten them. Precision is one
// millisecond, rounded down: an entry may end up to a millisecond early,
// never late (beyond the time the command takes to reach Redis).
//
// Errors never include the Redis URL's password, nor any stored value.
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/toolgate/toolgate/authserver/store"
)

// keyPrefix namespaces toolgate's keys in a Redis shared with others.
const keyPrefix = "toolgate:"

// pingTimeout bounds the start-up check when the caller's context has no
// earlier deadline, so a black-holed server fails start-up instead of
// hanging it.
const pingTimeout = 5 * time.Second

// Store is a store.Store backed by Redis. Use Open to get one.
type Store struct {
	client *redis.Client
	prefix string
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis server named by a redis://, rediss:// or
// unix:// URL (as go-redis parses it) and pings it once.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return open(ctx, rawURL, keyPrefix)
}

// open is Open with a chosen prefix, so tests can share one server.
func open(ctx context.Context, rawURL, prefix string) (*Store, error) {
	if rawURL == "" {
		return nil, errors.New("redisstore: REDIS_URL is empty")
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // without the URL it quotes
		}
		return nil, fmt.Errorf("redisstore: REDIS_URL %q is not a valid Redis URL: %s",
			redact(rawURL), scrub(err.Error(), rawURL))
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redisstore: REDIS_URL %q does not answer PING: %s",
			redact(rawURL), scrub(err.Error(), rawURL))
	}
	return &Store{client: client, prefix: prefix}, nil
}

// Create implements store.Store with SET NX.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) error {
	ttl, live := ttlMillis(expires)
	if !live {
		// Nothing to store, but a live entry still makes this ErrExists.
		return s.createExpired(ctx, key)
	}
	args := []any{"SET", s.prefix + key, value}
	if ttl > 0 {
		args = append(args, "PX", ttl)
	}
	args = append(args, "NX")
	err := s.client.Do(ctx, args...).Err()
	if errors.Is(err, redis.Nil) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	return nil
}

// createExpired is Create with an expiry already past: it stores nothing.
func (s *Store) createExpired(ctx context.Context, key string) error {
	n, err := s.client.Exists(ctx, s.prefix+key).Result()
	if err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	if n > 0 {
		return store.ErrExists
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.Get(ctx, s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	return v, nil
}

// Take implements store.Store with GETDEL (Redis 6.2 or later).
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.GetDel(ctx, s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: take: %w", err)
	}
	return v, nil
}

// compareAndSwapScript swaps KEYS[1] from ARGV[1] to ARGV[2]. ARGV[3] is
// the time-to-live in milliseconds: 0 for none, -1 for already expired
// (the swap then deletes the key). It returns -1 if the key is missing,
// 0 on a mismatch, 1 after a swap. Lua strings compare byte for byte.
//
//go:embed cas.lua
var compareAndSwapSource string

var compareAndSwapScript = redis.NewScript(compareAndSwapSource)

// CompareAndSwap implements store.Store with one Lua script, which Redis
// runs atomically.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, expires time.Time) (bool, error) {
	ttl, live := ttlMillis(expires)
	if !live {
		ttl = -1
	}
	n, err := compareAndSwapScript.Run(ctx, s.client, []string{s.prefix + key}, old, value, ttl).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: compare and swap: %w", err)
	}
	switch n {
	case -1:
		return false, store.ErrNotFound
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("redisstore: compare and swap: script returned %d", n)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the connections to Redis.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// ttlMillis turns an expiry into a time-to-live in whole milliseconds,
// rounded down. It returns (0, true) for the zero time (no expiry) and
// live false when less than a millisecond is left.
func ttlMillis(expires time.Time) (ms int64, live bool) {
	if expires.IsZero() {
		return 0, true
	}
	ms = time.Until(expires).Milliseconds()
	return ms, ms > 0
}
