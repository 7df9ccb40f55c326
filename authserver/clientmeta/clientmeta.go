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
// request loop. It only reads documents; it must never send credentials.
package clientmeta

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
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
	cache  *cache
	flight singleflight.Group
	// slots bounds the fetches in flight across all URLs: every distinct
	// client_id an attacker invents costs one, and slow hosts would
	// otherwise pile up connections and goroutines without limit.
	slots chan struct{}
	// anyPort lifts the https-port rule; tests use it to reach the dial
	// check with servers on ephemeral ports.
	anyPort bool
}

// maxConcurrentFetches is how many documents are fetched at once; more
// wait for a slot, within their own deadline.
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
		slots:  make(chan struct{}, maxConcurrentFetches),
		opts:   o,
		client: newHTTPClient(o),
		cache:  newCache(o.CacheSize, o.Now),
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
	if u, err := url.Parse(clientID); err == nil && u.Port() != "" && u.Port() != "443" && !f.opts.AllowPrivateAddresses && !f.anyPort {
		// Only the https port: a client_id must not turn toolgate into a
		// probe of other services (mail, databases) on public hosts.
		return nil, newError("client_id URL must use the default https port", nil)
	}
	if e, ok := f.cache.get(clientID); ok {
		doc, err := e.result()
		return doc.clone(), err
	}
	// The shared fetch must not die with the first caller's context: other
	// callers are waiting on it, and a cancelled fetch would be cached as a
	// failure. It is bounded by Timeout instead.
	ch := f.flight.DoChan(clientID, func() (any, error) {
		return f.fetchAndCache(context.WithoutCancel(ctx), clientID)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Document).clone(), nil
	case <-ctx.Done():
		return nil, newError("fetching the client metadata document was cancelled", ctx.Err())
	}
}

// fetchAndCache runs inside the singleflight group: one per URL at a time.
func (f *Fetcher) fetchAndCache(ctx context.Context, clientID string) (*Document, error) {
	// A caller that missed the cache just before another finished may get
	// here after the answer was stored; don't fetch twice.
	if e, ok := f.cache.get(clientID); ok {
		return e.result()
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-time.After(f.opts.Timeout):
		// Not cached: the URL itself is not at fault.
		return nil, newError("too many client metadata documents are being fetched at once; try again", nil)
	}
	doc, ttl, err := f.fetch(ctx, clientID)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = newError("the client metadata document could not be fetched", err)
		}
		f.cache.put(clientID, nil, e, failureTTL)
		return nil, e
	}
	f.cache.put(clientID, doc, nil, ttl)
	return doc, nil
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
	return &c
}
