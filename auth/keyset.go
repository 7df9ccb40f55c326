package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/sync/singleflight"

	"github.com/toolgate/toolgate/discovery"
)

// maxJWKSBytes bounds a key set document.
const maxJWKSBytes = 1 << 20

// publicKey is one verification key with the algorithms it may verify.
// Binding each key to its algorithms (RFC 8725 §3.1) is what makes key
// confusion, e.g. an RSA public key used as an HMAC secret, impossible.
type publicKey struct {
	raw  any                             // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs map[jwa.SignatureAlgorithm]bool // allowed "alg" header values
}

type keyMap struct {
	byKID map[string]*publicKey
	only  *publicKey // the single key, when the set has exactly one
}

// RemoteKeySet caches an issuer's JWKS. Its first load is the Issuer's job;
// after that, An unknown kid triggers a refetch,
// collapsed into one in-flight request and at most one per MinRefetch, so a
// flood of tokens with invented kids cannot make toolgate hammer the issuer.
// When a refresh fails, the keys already loaded keep serving.
type RemoteKeySet struct {
	Client     *http.Client
	MinRefetch time.Duration
	Now        func() time.Time

	keys atomic.Pointer[keyMap]
	// static sets (NewStaticKeySet) never fetch.
	static bool
	group  singleflight.Group
	mu     sync.Mutex
	url    string
	// lastMiss is when an unknown kid last caused a refetch. Scheduled
	// refreshes do not count: a key rotated in just after one must still be
	// picked up at the first token that uses it.
	lastMiss time.Time
}

// NewRemoteKeySet returns a key set for url; nothing is fetched until the
// first Refresh or lookup.
func NewRemoteKeySet(url string, client *http.Client) *RemoteKeySet {
	return &RemoteKeySet{url: url, Client: client, MinRefetch: 10 * time.Second, Now: time.Now}
}

// NewStaticKeySet returns a key set that holds exactly the keys of the JWK
// Set document jwks and never fetches: toolgate's embedded authorization
// server hands its own public keys to the gateway this way, so verifying
// its tokens needs no request to itself. An unknown kid is simply unknown.
func NewStaticKeySet(jwks []byte) (*RemoteKeySet, error) {
	km, err := parseKeySet(jwks)
	if err != nil {
		return nil, err
	}
	s := &RemoteKeySet{static: true, Now: time.Now}
	s.keys.Store(km)
	return s, nil
}

// SetURL points the set at a key set URL learnt by discovery.
func (s *RemoteKeySet) SetURL(url string) {
	s.mu.Lock()
	s.url = url
	s.mu.Unlock()
}

// Loaded reports whether at least one successful fetch has happened.
func (s *RemoteKeySet) Loaded() bool { return s.keys.Load() != nil }

// Refresh fetches the key set now; concurrent callers share one fetch.
func (s *RemoteKeySet) Refresh(ctx context.Context) error {
	_, err, _ := s.group.Do("jwks", func() (any, error) {
		s.mu.Lock()
		url := s.url
		s.mu.Unlock()
		if url == "" {
			return nil, errors.New("no JWKS URL known yet")
		}
		km, err := s.fetch(ctx, url)
		if err != nil {
			return nil, err
		}
		s.keys.Store(keepUnchanged(s.keys.Load(), km))
		return nil, nil
	})
	return err
}

// key returns the key for kid, refetching once (rate-limited) when kid is
// unknown, so that rotation at the issuer needs no restart.
func (s *RemoteKeySet) key(ctx context.Context, kid string) (*publicKey, error) {
	if k := s.lookup(kid); k != nil || s.static {
		return k, nil
	}
	if !s.Loaded() {
		// The first load belongs to Issuer.Run, which retries with backoff;
		// requests must not turn an unreachable issuer into a fetch storm.
		return nil, ErrNotReady
	}
	s.mu.Lock()
	now := s.Now()
	allowed := s.lastMiss.IsZero() || now.Sub(s.lastMiss) >= s.MinRefetch
	if allowed {
		s.lastMiss = now
	}
	s.mu.Unlock()
	if allowed {
		// The refetch must outlive one client's cancelled request: other
		// requests are waiting on the same flight.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = s.Refresh(fctx) // on failure the cached keys keep serving
		cancel()
	}
	return s.lookup(kid), nil
}

// still reports whether k is still the key published under kid; the token
// cache asks it so a key the issuer withdraws or replaces (even under the
// same kid) stops vouching for tokens verified with it. Refresh keeps the
// pointer of a key whose material did not change, so this is a pointer test.
func (s *RemoteKeySet) still(kid string, k *publicKey) bool {
	return k != nil && s.lookup(kid) == k
}

func (s *RemoteKeySet) lookup(kid string) *publicKey {
	km := s.keys.Load()
	if km == nil {
		return nil
	}
	if kid == "" {
		return km.only
	}
	return km.byKID[kid]
}

func (s *RemoteKeySet) fetch(ctx context.Context, url string) (*keyMap, error) {
	body, err := discovery.GetDocument(ctx, s.Client, url, maxJWKSBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return parseKeySet(body)
}

// keepUnchanged carries over the old *publicKey for every key whose kid,
// material and algorithms are the same in the new set, so cached tokens
// verified with it stay cached across routine refreshes.
func keepUnchanged(old, km *keyMap) *keyMap {
	if old == nil {
		return km
	}
	for kid, k := range km.byKID {
		if o := old.byKID[kid]; o != nil && sameKey(o, k) {
			if km.only == k {
				km.only = o
			}
			km.byKID[kid] = o
		}
	}
	if km.only != nil && old.only != nil && km.only != old.only && sameKey(old.only, km.only) {
		km.only = old.only
	}
	return km
}

func sameKey(a, b *publicKey) bool {
	eq, ok := a.raw.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b.raw) && maps.Equal(a.algs, b.algs)
}

// parseKeySet keeps only asymmetric signature keys. A set with no usable key
// is an error: serving from it would reject every token.
func parseKeySet(body []byte) (*keyMap, error) {
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	km := &keyMap{byKID: make(map[string]*publicKey, set.Len())}
	var usable []*publicKey
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if u := k.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
			continue
		}
		pk, err := toPublicKey(k)
		if err != nil {
			continue // an unsupported key must not take the good ones down with it
		}
		usable = append(usable, pk)
		if kid := k.KeyID(); kid != "" {
			km.byKID[kid] = pk
		}
	}
	if len(usable) == 0 {
		return nil, errors.New("JWKS holds no usable RSA, EC or Ed25519 signature key")
	}
	if len(usable) == 1 {
		km.only = usable[0]
	}
	return km, nil
}

func toPublicKey(k jwk.Key) (*publicKey, error) {
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, err
	}
	var algs []jwa.SignatureAlgorithm
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("RSA key shorter than 2048 bits")
		}
		algs = []jwa.SignatureAlgorithm{jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			algs = []jwa.SignatureAlgorithm{jwa.ES256}
		case elliptic.P384():
			algs = []jwa.SignatureAlgorithm{jwa.ES384}
		case elliptic.P521():
			algs = []jwa.SignatureAlgorithm{jwa.ES512}
		default:
			return nil, errors.New("unsupported EC curve")
		}
	case ed25519.PublicKey:
		algs = []jwa.SignatureAlgorithm{jwa.EdDSA}
	default:
		// Private keys, symmetric secrets and anything else are never used
		// to verify: an "oct" key in a JWKS would enable HMAC forgery.
		return nil, fmt.Errorf("unsupported key type %T", raw)
	}
	pk := &publicKey{raw: raw, algs: make(map[jwa.SignatureAlgorithm]bool, len(algs))}
	declared := jwa.SignatureAlgorithm(k.Algorithm().String())
	for _, a := range algs {
		// A key that declares its "alg" may verify that algorithm only.
		if declared == "" || declared == a {
			pk.algs[a] = true
		}
	}
	if len(pk.algs) == 0 {
		return nil, fmt.Errorf("key declares alg %q that does not fit its type", declared)
	}
	return pk, nil
}
