package auth

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of their bytes, so the
// cache never holds a usable token. It is bounded: when full it first drops
// expired entries, then arbitrary ones (Go's map iteration order is random),
// which costs a later signature check, never correctness.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p     *Principal
	kid   string     // the kid of the key that verified it, for JWTs
	key   *publicKey // that key; nil for tokens judged by a remote service
	err   error      // a remembered rejection (remoteChecks), with p nil
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[[32]byte]cacheEntry)}
}

func (c *tokenCache) get(k [32]byte, now time.Time) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *tokenCache) put(k [32]byte, e cacheEntry, now time.Time) {
	if c == nil || !now.Before(e.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, key)
			}
		}
		// Still full: evict about a tenth, so the sweep is not repeated on
		// every insert under a flood of distinct valid tokens.
		for key := range c.m {
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = e
}

func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
