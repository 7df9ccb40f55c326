// Package testissuer is a real, in-process OAuth authorization server for
// tests: it publishes RFC 8414 and OpenID Connect metadata and a JWKS over
// httptest on 127.0.0.1, holds real RSA and EC keys, mints signed access
// tokens, and rotates keys on demand. It only exists for tests.
package testissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Issuer is a running test authorization server.
type Issuer struct {
	URL    string // issuer identifier, e.g. http://127.0.0.1:PORT
	Server *httptest.Server

	mu       sync.Mutex
	keys     []*Key // published; keys[0] signs by default
	jwksHits atomic.Int64
	down     atomic.Bool
}

// Key is one signing key.
type Key struct {
	KID     string
	Alg     jwa.SignatureAlgorithm
	Private any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

// New starts an issuer with one RSA key ("rsa-1") and one EC P-256 key
// ("ec-1"). The issuer identifier has the suffix appended (Auth0's issuers
// end in "/"); pass "" for none.
func New(t testing.TB, suffix string) *Issuer {
	t.Helper()
	iss := &Issuer{}
	iss.keys = []*Key{NewRSAKey(t, "rsa-1"), NewECKey(t, "ec-1")}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", iss.metadata)
	mux.HandleFunc("/.well-known/openid-configuration", iss.metadata)
	mux.HandleFunc("/jwks", iss.jwks)
	iss.Server = httptest.NewServer(mux)
	t.Cleanup(iss.Server.Close)
	iss.URL = iss.Server.URL + suffix
	return iss
}

// NewRSAKey makes a 2048-bit RSA key for RS256.
func NewRSAKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: jwa.RS256, Private: k}
}

// NewECKey makes a P-256 key for ES256.
func NewECKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Alg: jwa.ES256, Private: k}
}

// Keys returns the published keys, the default signing key first.
func (i *Issuer) Keys() []*Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]*Key(nil), i.keys...)
}

// SetKeys replaces the published keys (a rotation).
func (i *Issuer) SetKeys(keys ...*Key) {
	i.mu.Lock()
	i.keys = keys
	i.mu.Unlock()
}

// JWKSHits counts JWKS fetches, to prove caching and rate limiting.
func (i *Issuer) JWKSHits() int64 { return i.jwksHits.Load() }

// SetDown makes every endpoint answer 503, as an outage would.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

func (i *Issuer) metadata(w http.ResponseWriter, r *http.Request) {
	if i.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                           i.URL,
		"authorization_endpoint":           i.Server.URL + "/authorize",
		"token_endpoint":                   i.Server.URL + "/token",
		"jwks_uri":                         i.Server.URL + "/jwks",
		"response_types_supported":         []string{"code"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	i.jwksHits.Add(1)
	if i.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	for _, k := range i.Keys() {
		pub, err := jwk.PublicKeyOf(k.Private)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = pub.Set(jwk.KeyIDKey, k.KID)
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		_ = pub.Set(jwk.AlgorithmKey, k.Alg)
		_ = set.AddKey(pub)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// Claims are a token's payload.
type Claims map[string]any

// Claims returns valid RFC 9068 claims for audience, expiring in an hour.
func (i *Issuer) Claims(audience string) Claims {
	now := time.Now()
	return Claims{
		"iss":       i.URL,
		"sub":       "alice",
		"aud":       audience,
		"client_id": "test-client",
		"scope":     "mcp:read mcp:write",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
}

// Sign signs claims with key (default: the first published key) and the
// given "typ" ("" omits it). Header fields in extra are added as given.
func (i *Issuer) Sign(t testing.TB, c Claims, key *Key, typ string, extra map[string]any) string {
	t.Helper()
	if key == nil {
		key = i.Keys()[0]
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, key.KID)
	if typ != "" {
		_ = hdr.Set(jws.TypeKey, typ)
	}
	for k, v := range extra {
		if err := hdr.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(key.Alg, key.Private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Token is Sign with the default key and typ "at+jwt".
func (i *Issuer) Token(t testing.TB, c Claims) string {
	return i.Sign(t, c, nil, "at+jwt", nil)
}
