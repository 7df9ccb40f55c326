// Package clientmeta fetches and validates OAuth client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document), the way MCP clients
// register with toolgate's embedded authorization server since the
// 2025-11-25 spec: the client_id is an https URL, and the document found
// there says who the client is and where it may be redirected.
//
// The URL is chosen by whoever calls the authorization endpoint, so every
// fetch is attacker-directed. The package therefore never connects to a
// loopback, private or link-local address (checked on the resolved address
// at connect time, so DNS rebinding does not help), never follows redirects,
// never uses an environment proxy, bounds time and size, and caches both
// answers and failures so a hostile client_id cannot turn toolgate into a
// request loop. The JWK Sets that documents name in jwks_uri (for
// private_key_jwt) are fetched the same way. It only reads documents and
// key sets; it must never send credentials.
package clientmeta

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Document is the part of a client ID metadata document toolgate uses.
type Document struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	// JWKS and JWKSURI hold the client's public keys for private_key_jwt
	// (RFC 7523). After validation exactly one is set when the method is
	// private_key_jwt, and both are empty otherwise: keys a public client
	// publishes are never used, so they are dropped rather than trusted
	// unchecked. JWKS is a JSON object with a non-empty "keys" array;
	// JWKSURI is fetched with FetchJWKS.
	JWKS    json.RawMessage `json:"jwks"`
	JWKSURI string          `json:"jwks_uri"`
}

// Options configures a Fetcher. The zero value is the safe production
// setting; AllowPrivateAddresses is the only unsafe switch.
type Options struct {
	// AllowPrivateAddresses lets fetches reach loopback, private and
	// link-local addresses. Development and tests only: in production it
	// turns every client_id into a request into your own network.
	AllowPrivateAddresses bool
	// RootCAs verifies the document server; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the whole fetch (connect, TLS, headers, body).
	// Default 5s.
	Timeout time.Duration
	// MaxBytes caps the document size. Default 16 KiB: real documents
	// are a few hundred bytes, and 16 KiB times the default cache size
	// keeps the worst case memory use around 16 MB.
	MaxBytes int64
	// CacheSize is how many documents and failures are kept. Default 1000.
	CacheSize int
	// MinTTL and MaxTTL bound how long a document is cached; the server's
	// Cache-Control max-age is honoured within them, and MinTTL applies
	// when it sends none. Defaults 5m and 24h.
	MinTTL, MaxTTL time.Duration
	// Now is the clock for cache expiry; default time.Now.
	Now func() time.Time
}

// Defaults applied by New to zero or negative Options fields.
const (
	defaultTimeout   = 5 * time.Second
	defaultMaxBytes  = 16 << 10
	defaultCacheSize = 1000
	defaultMinTTL    = 5 * time.Minute
	defaultMaxTTL    = 24 * time.Hour
	// failureTTL is how long a failed fetch is remembered. Short enough
	// that a client fixing its document is not locked out for long, long
	// enough that a broken or hostile client_id costs one fetch per 30 s.
	failureTTL = 30 * time.Second
)

// Fetcher fetches, validates and caches client ID metadata documents. It is
// safe for concurrent use.
type Fetcher struct {
	opts   Options
	client *http.Client
	cache  *cache[*Document]
	flight singleflight.Group
	// JWK Sets have their own cache and group: a URL may in principle be
	// both a client_id and a jwks_uri, and the answers differ in type.
	jwksCache  *cache[[]byte]
	jwksFlight singleflight.Group
	// refetched is when RefreshJWKS last went to each jwks_uri.
	refetchMu sync.Mutex
	refetched map[string]time.Time
	// slots bounds the fetches in flight across all URLs: every distinct
	// client_id an attacker invents costs one, and slow hosts would
	// otherwise pile up connections and goroutines without limit.
	slots chan struct{}
	// anyPort lifts the https-port rule; tests use it to reach the dial
	// check with servers on ephemeral ports.
	anyPort bool
}

// maxConcurrentFetches is how many documents and key sets are fetched at
// once; more wait for a slot, within their own deadline.
const maxConcurrentFetches = 32

// New returns a Fetcher with defaults filled in for unset Options.
func New(o Options) *Fetcher {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MinTTL <= 0 {
		o.MinTTL = defaultMinTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = defaultMaxTTL
	}
	if o.MaxTTL < o.MinTTL {
		o.MaxTTL = o.MinTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Fetcher{
		slots:     make(chan struct{}, maxConcurrentFetches),
		opts:      o,
		client:    newHTTPClient(o),
		cache:     newCache[*Document](o.CacheSize, o.Now),
		jwksCache: newCache[[]byte](min(o.CacheSize, maxJWKSCacheSize), o.Now),
		refetched: map[string]time.Time{},
	}
}

// Error is returned for every Fetch failure. Description is safe to show
// the user or to put in an OAuth error_description; Err holds detail for
// logs and may name internal addresses, so keep it out of responses.
type Error struct {
	Description string
	Err         error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "clientmeta: " + e.Description
	}
	return "clientmeta: " + e.Description + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func newError(description string, err error) *Error {
	return &Error{Description: description, Err: err}
}

// Fetch returns the validated document for clientID, from the cache when it
// is fresh. A failure is cached for 30 s, so retrying a broken client_id
// immediately returns the same error without a new request. Concurrent
// calls for one URL share one request; each caller still gives up when its
// own ctx ends. The result is a copy the caller may modify.
func (f *Fetcher) Fetch(ctx context.Context, clientID string) (*Document, error) {
	if !IsURL(clientID) {
		return nil, newError("client_id is not a metadata document URL (an https URL with a path, no fragment, no user info, no dot segments)", nil)
	}
	if !f.portAllowed(clientID) {
		// Only the https port: a client_id must not turn toolgate into a
		// probe of other services (mail, databases) on public hosts.
		return nil, newError("client_id URL must use the default https port", nil)
	}
	doc, err := load(ctx, f, f.cache, &f.flight, clientID, documentKind, func(ctx context.Context) (*Document, time.Duration, error) {
		return f.fetchDocument(ctx, clientID)
	})
	return doc.clone(), err
}

// FetchJWKS returns the JWK Set at uri, a document's jwks_uri, as JSON: an
// object with a non-empty "keys" array of objects. The keys themselves are
// not interpreted here; the caller parses and vets them. It is fetched with
// the same safeguards as documents (no private addresses, no redirects, no
// proxy, Timeout, a 64 KiB cap) and cached the same way. The result is a
// copy the caller may modify.
func (f *Fetcher) FetchJWKS(ctx context.Context, uri string) ([]byte, error) {
	if !IsURL(uri) {
		return nil, newError("jwks_uri is not an https URL with a path (no fragment, no user info, no dot segments)", nil)
	}
	if !f.portAllowed(uri) {
		return nil, newError("jwks_uri must use the default https port", nil)
	}
	set, err := load(ctx, f, f.jwksCache, &f.jwksFlight, uri, jwksKind, func(ctx context.Context) ([]byte, time.Duration, error) {
		return f.fetchJWKS(ctx, uri)
	})
	return bytes.Clone(set), err
}

// minJWKSRefetch is how often an unknown kid may send toolgate back to a
// jwks_uri before the cached set expires.
const minJWKSRefetch = time.Minute

// RefreshJWKS is FetchJWKS for a caller that found no key with the kid an
// assertion names: the client may have rotated its keys. It fetches again
// (at most once a minute per jwks_uri, so invented kids cannot make
// toolgate hammer a host) and otherwise answers from the cache.
func (f *Fetcher) RefreshJWKS(ctx context.Context, uri string) ([]byte, error) {
	now := f.opts.Now()
	f.refetchMu.Lock()
	due := now.Sub(f.refetched[uri]) >= minJWKSRefetch
	if due {
		if len(f.refetched) >= maxJWKSCacheSize {
			clear(f.refetched)
		}
		f.refetched[uri] = now
	}
	f.refetchMu.Unlock()
	if due {
		f.jwksCache.drop(uri)
	}
	return f.FetchJWKS(ctx, uri)
}

// portAllowed reports whether rawURL uses the default https port, or the
// Fetcher may use any (development and tests).
func (f *Fetcher) portAllowed(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && (u.Port() == "" || u.Port() == "443" || f.opts.AllowPrivateAddresses || f.anyPort)
}

// load returns key's value from c when it is fresh, and otherwise fetches
// it once for all concurrent callers. The shared fetch must not die with
// the first caller's context: other callers are waiting on it, and a
// cancelled fetch would be cached as a failure. It is bounded by Timeout
// instead, and each caller still gives up when its own ctx ends.
func load[T any](ctx context.Context, f *Fetcher, c *cache[T], g *singleflight.Group, key string, k *kind, fetch func(context.Context) (T, time.Duration, error)) (T, error) {
	var zero T
	if e, ok := c.get(key); ok {
		return e.result()
	}
	ch := g.DoChan(key, func() (any, error) {
		return fetchAndCache(context.WithoutCancel(ctx), f, c, key, k, fetch)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		return zero, newError("fetching "+k.noun+" was cancelled", ctx.Err())
	}
}

// fetchAndCache runs inside the singleflight group: one per URL at a time.
func fetchAndCache[T any](ctx context.Context, f *Fetcher, c *cache[T], key string, k *kind, fetch func(context.Context) (T, time.Duration, error)) (T, error) {
	var zero T
	// A caller that missed the cache just before another finished may get
	// here after the answer was stored; don't fetch twice.
	if e, ok := c.get(key); ok {
		return e.result()
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-time.After(f.opts.Timeout):
		// Not cached: the URL itself is not at fault.
		return zero, newError("too many client metadata documents and key sets are being fetched at once; try again", nil)
	}
	v, ttl, err := fetch(ctx)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = newError(k.noun+" could not be fetched", err)
		}
		c.put(key, zero, e, failureTTL)
		return zero, e
	}
	c.put(key, v, nil, ttl)
	return v, nil
}

// clone copies d so callers cannot change the cached document.
func (d *Document) clone() *Document {
	if d == nil {
		return nil
	}
	c := *d
	c.RedirectURIs = append([]string(nil), d.RedirectURIs...)
	c.GrantTypes = append([]string(nil), d.GrantTypes...)
	c.ResponseTypes = append([]string(nil), d.ResponseTypes...)
	c.JWKS = bytes.Clone(d.JWKS)
	return &c
}
