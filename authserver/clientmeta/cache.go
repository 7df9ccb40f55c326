package clientmeta

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// cache holds fetched documents (or key sets) and failures by URL. It is bounded: when
// full it drops expired entries, and if none have expired, an arbitrary one.
// Arbitrary eviction is good enough here: a refetch costs one request, and an
// attacker filling the cache with junk client_ids gains nothing from which
// entry goes.
type cache[T any] struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	entries map[string]cacheEntry[T]
}

type cacheEntry[T any] struct {
	val     T
	err     *Error
	expires time.Time
}

func newCache[T any](max int, now func() time.Time) *cache[T] {
	return &cache[T]{max: max, now: now, entries: make(map[string]cacheEntry[T])}
}

// get returns the fresh entry for key, if there is one.
func (c *cache[T]) get(key string) (cacheEntry[T], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[key]
	if !found {
		return cacheEntry[T]{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, key)
		return cacheEntry[T]{}, false
	}
	return e, true
}

// drop forgets key, so the next load fetches it again.
func (c *cache[T]) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// result returns the entry's value or failure. The explicit branch keeps
// a nil *Error from becoming a non-nil error interface.
func (e cacheEntry[T]) result() (T, error) {
	if e.err != nil {
		var zero T
		return zero, e.err
	}
	return e.val, nil
}

func (c *cache[T]) put(key string, val T, err *Error, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = cacheEntry[T]{val: val, err: err, expires: now.Add(ttl)}
}

// evict makes room for one entry. Called with mu held.
func (c *cache[T]) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k)
	}
}

// cacheTTL is how long a document fetched with the given Cache-Control
// header stays cached: its max-age clamped to [min, max], or min when there
// is none. no-store and no-cache still get min, because refetching on every
// authorization request would let any client_id make toolgate fetch in a loop.
func cacheTTL(cacheControl string, min, max time.Duration) time.Duration {
	ttl := min
	for _, directive := range strings.Split(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		if !strings.EqualFold(name, "max-age") {
			continue
		}
		seconds, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
		if err != nil || seconds < 0 {
			return min
		}
		if seconds > int64(max/time.Second) {
			return max
		}
		ttl = time.Duration(seconds) * time.Second
		break
	}
	if ttl < min {
		return min
	}
	return ttl
}
