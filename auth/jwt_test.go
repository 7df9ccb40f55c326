package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/toolgate/toolgate/internal/testissuer"
)

const resource = "https://mcp.example.com/mcp"

func newVerifier(t *testing.T, iss *testissuer.Issuer, mod func(*JWTOptions)) *JWTVerifier {
	t.Helper()
	keys := NewRemoteKeySet(iss.Server.URL+"/jwks", iss.Server.Client())
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := JWTOptions{Issuer: iss.URL, Audiences: []string{resource}, Keys: keys, CacheSize: 100}
	if mod != nil {
		mod(&o)
	}
	v, err := NewJWTVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// b64 encodes one compact-JWS segment.
func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifyAcceptsAndRejects(t *testing.T) {
	iss := testissuer.New(t, "")
	rsaKey, ecKey := iss.Keys()[0], iss.Keys()[1]
	stranger := testissuer.NewRSAKey(t, "rsa-1") // same kid, different key
	now := time.Now()

	with := func(edit func(testissuer.Claims)) testissuer.Claims {
		c := iss.Claims(resource)
		edit(c)
		return c
	}
	attackerJWK, _ := jwk.PublicKeyOf(stranger.Private)

	tests := []struct {
		name   string
		token  func() string
		reason string // "" means accepted; else a substring of TokenError.Reason
	}{
		{"RS256 at+jwt", func() string { return iss.Token(t, iss.Claims(resource)) }, ""},
		{"ES256", func() string { return iss.Sign(t, iss.Claims(resource), ecKey, "at+jwt", nil) }, ""},
		{"typ JWT as Auth0 sends", func() string { return iss.Sign(t, iss.Claims(resource), nil, "JWT", nil) }, ""},
		{"typ application/at+jwt", func() string { return iss.Sign(t, iss.Claims(resource), nil, "application/at+jwt", nil) }, ""},
		{"no typ", func() string { return iss.Sign(t, iss.Claims(resource), nil, "", nil) }, ""},
		{"aud array containing resource", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["aud"] = []string{"https://x.auth0.com/userinfo", resource} }))
		}, ""},
		{"expired within skew", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-30 * time.Second).Unix() }))
		}, ""},
		{"scp array", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { delete(c, "scope"); c["scp"] = []string{"a", "b"} }))
		}, ""},

		{"typ of another kind of JWT", func() string { return iss.Sign(t, iss.Claims(resource), nil, "logout+jwt", nil) }, "not an access token"},
		{"wrong issuer", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["iss"] = iss.URL + "/" }))
		}, "iss does not match"},
		{"wrong audience", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["aud"] = "https://other.example.com/mcp" }))
		}, "aud does not contain"},
		{"ID token: audience is a client id", func() string {
			return iss.Sign(t, with(func(c testissuer.Claims) { c["aud"] = "test-client" }), nil, "JWT", nil)
		}, "aud does not contain"},
		{"no audience", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { delete(c, "aud") }))
		}, "aud does not contain"},
		{"expired beyond skew", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-61 * time.Second).Unix() }))
		}, "expired"},
		{"no exp", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { delete(c, "exp") }))
		}, "no expiry"},
		{"nbf in the future", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["nbf"] = now.Add(2 * time.Minute).Unix() }))
		}, "not valid yet"},
		{"iat in the future", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { c["iat"] = now.Add(2 * time.Minute).Unix() }))
		}, "issued in the future"},
		{"no sub", func() string {
			return iss.Token(t, with(func(c testissuer.Claims) { delete(c, "sub") }))
		}, "no subject"},
		{"unknown kid", func() string {
			return iss.Sign(t, iss.Claims(resource), testissuer.NewRSAKey(t, "nobody"), "at+jwt", nil)
		}, "does not publish"},
		{"right kid, wrong key", func() string {
			return iss.Sign(t, iss.Claims(resource), stranger, "at+jwt", nil)
		}, "signature"},
		{"embedded jwk header is ignored", func() string {
			return iss.Sign(t, iss.Claims(resource), stranger, "at+jwt", map[string]any{"jwk": attackerJWK})
		}, "signature"},
		{"jku header is ignored", func() string {
			return iss.Sign(t, iss.Claims(resource), stranger, "at+jwt", map[string]any{"jku": "http://127.0.0.1:1/evil"})
		}, "signature"},
		{"alg does not fit the key", func() string {
			// An EC key's kid with an RSA signature.
			k := *rsaKey
			k.KID = ecKey.KID
			return iss.Sign(t, iss.Claims(resource), &k, "at+jwt", nil)
		}, "does not fit"},
		{"alg none", func() string {
			return b64(map[string]string{"alg": "none", "kid": "rsa-1"}) + "." + b64(iss.Claims(resource)) + "."
		}, "alg none"},
		{"HS256 with the RSA public key as secret", func() string {
			pub, _ := x509.MarshalPKIXPublicKey(&rsaKey.Private.(*rsa.PrivateKey).PublicKey)
			signing := b64(map[string]string{"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}) + "." + b64(iss.Claims(resource))
			m := hmac.New(sha256.New, pub)
			m.Write([]byte(signing))
			return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}, "symmetric"},
		{"crit header", func() string {
			return iss.Sign(t, iss.Claims(resource), nil, "at+jwt", map[string]any{"crit": []string{"exp"}, "exp": 1})
		}, "critical"},
		{"opaque token", func() string { return "a1b2c3d4e5f6" }, "not a JWT"},
		{"JWE", func() string { return "aaa.bbb.ccc.ddd.eee" }, "encrypted"},
		{"JSON serialisation", func() string { return `{"payload":"x","signatures":[]}` }, "not a JWT"},
		{"garbage segments", func() string { return "a.b.c" }, "signature or encoding"},
	}
	v := newVerifier(t, iss, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token())
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if p.Subject != "alice" {
					t.Fatalf("subject = %q", p.Subject)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("want *TokenError containing %q, got %v (principal %v)", tc.reason, err, p)
			}
			if !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("reason %q does not contain %q", te.Reason, tc.reason)
			}
			if strings.ContainsAny(te.Reason, "\"\\") {
				t.Fatalf("reason %q is not safe in a quoted-string", te.Reason)
			}
		})
	}
}

func TestPrincipalClaims(t *testing.T) {
	iss := testissuer.New(t, "/")
	v := newVerifier(t, iss, nil)
	c := iss.Claims(resource)
	c["email"] = "alice@example.com"
	delete(c, "client_id")
	c["azp"] = "auth0-client"
	p, err := v.Verify(context.Background(), iss.Sign(t, c, nil, "JWT", nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.Email != "alice@example.com" || p.ClientID != "auth0-client" || !p.HasScope("mcp:read") || p.HasScope("MCP:READ") {
		t.Fatalf("principal = %+v", p)
	}
	if got := p.Missing([]string{"mcp:read", "admin", "mcp:write", "root"}); strings.Join(got, " ") != "admin root" {
		t.Fatalf("missing = %v", got)
	}
}

func TestTokenAudienceList(t *testing.T) {
	iss := testissuer.New(t, "")
	v := newVerifier(t, iss, func(o *JWTOptions) { o.Audiences = []string{"https://api.example.com", resource} })
	if _, err := v.Verify(context.Background(), iss.Token(t, iss.Claims("https://api.example.com"))); err != nil {
		t.Fatal(err)
	}
}

func TestCacheSkipsSignatureCheckAndHonoursExpiry(t *testing.T) {
	iss := testissuer.New(t, "")
	now := time.Now()
	clock := func() time.Time { return now }
	v := newVerifier(t, iss, func(o *JWTOptions) { o.Now = clock })
	c := iss.Claims(resource)
	c["exp"] = now.Add(2 * time.Minute).Unix()
	tok := iss.Token(t, c)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// Forbid every algorithm on the very key that verified the token (same
	// pointer, as a routine refresh keeps it): a fresh check now fails, so
	// only the cache can still accept the token.
	km := v.opt.Keys.keys.Load()
	rsaKey := km.byKID["rsa-1"]
	saved := rsaKey.algs
	rsaKey.algs = map[jwa.SignatureAlgorithm]bool{}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("cached token rejected: %v", err)
	}
	if _, err := v.Verify(context.Background(), iss.Token(t, iss.Claims(resource))); err == nil {
		t.Fatal("an uncached token skipped the signature check")
	}
	rsaKey.algs = saved
	// The entry dies with the token, not later.
	if _, ok := v.cache.get(sha256.Sum256([]byte(tok)), now.Add(2*time.Minute+time.Second)); ok {
		t.Fatal("cache served an expired token")
	}

	// A refresh that republishes the same key keeps the entry.
	if err := v.opt.Keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v.opt.Keys.keys.Load().byKID["rsa-1"] != rsaKey {
		t.Fatal("an unchanged key got a new identity on refresh")
	}
	// New material under the same kid: the cached token is checked again,
	// against the new key, and fails.
	iss.SetKeys(testissuer.NewRSAKey(t, "rsa-1"), iss.Keys()[1])
	if err := v.opt.Keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("cached token still accepted after its key was replaced under the same kid")
	}
	// A withdrawn key stops vouching for the tokens it verified.
	tok2 := iss.Token(t, c)
	if _, err := v.Verify(context.Background(), tok2); err != nil {
		t.Fatal(err)
	}
	iss.SetDown(true) // the refetch the unknown kid triggers finds nothing new
	v.opt.Keys.keys.Store(&keyMap{byKID: map[string]*publicKey{"other": km.byKID["ec-1"]}})
	if _, err := v.Verify(context.Background(), tok2); err == nil {
		t.Fatal("cached token still accepted after its key was withdrawn")
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newTokenCache(50)
	now := time.Now()
	for i := 0; i < 500; i++ {
		var k [32]byte
		_, _ = rand.Read(k[:])
		c.put(k, cacheEntry{p: &Principal{}, until: now.Add(time.Minute)}, now)
	}
	if n := c.len(); n > 50 {
		t.Fatalf("cache holds %d entries, bound is 50", n)
	}
}

func TestKeyRotationWithoutRestart(t *testing.T) {
	iss := testissuer.New(t, "")
	v := newVerifier(t, iss, nil) // fetched just now; MinRefetch is 10 s
	next := testissuer.NewRSAKey(t, "rsa-2")
	iss.SetKeys(next)
	p, err := v.Verify(context.Background(), iss.Sign(t, iss.Claims(resource), next, "at+jwt", nil))
	if err != nil || p.Subject != "alice" {
		t.Fatalf("token from rotated key: %v", err)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	iss := testissuer.New(t, "")
	v := newVerifier(t, iss, nil) // MinRefetch 10s
	before := iss.JWKSHits()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok := iss.Sign(t, iss.Claims(resource), testissuer.NewECKey(t, "bogus-"+string(rune('a'+i%26))), "at+jwt", nil)
			if _, err := v.Verify(context.Background(), tok); !IsTokenError(err) {
				t.Errorf("bogus kid: %v", err)
			}
		}(i)
	}
	wg.Wait()
	// The first miss may refetch; every other one within MinRefetch may not.
	if hits := iss.JWKSHits() - before; hits > 1 {
		t.Fatalf("%d JWKS fetches for 50 bogus kids within MinRefetch; want at most 1", hits)
	}
}

func TestConcurrentRefetchIsSingleFlight(t *testing.T) {
	iss := testissuer.New(t, "")
	v := newVerifier(t, iss, nil)
	v.opt.Keys.MinRefetch = 0
	v.opt.Keys.Now = func() time.Time { return time.Now().Add(time.Hour) } // every miss may refetch
	before := iss.JWKSHits()
	var wg sync.WaitGroup
	tok := iss.Sign(t, iss.Claims(resource), testissuer.NewECKey(t, "bogus"), "at+jwt", nil)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = v.Verify(context.Background(), tok) }()
	}
	wg.Wait()
	if hits := iss.JWKSHits() - before; hits < 1 || hits > 20 {
		t.Fatalf("%d JWKS fetches for 40 concurrent misses; want collapsed flights", hits)
	}
}

func TestKeysKeepServingWhileIssuerDown(t *testing.T) {
	iss := testissuer.New(t, "")
	v := newVerifier(t, iss, nil)
	iss.SetDown(true)
	if err := v.opt.Keys.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a down issuer succeeded")
	}
	v.opt.Keys.MinRefetch = 0
	if _, err := v.Verify(context.Background(), iss.Token(t, iss.Claims(resource))); err != nil {
		t.Fatalf("cached keys stopped serving: %v", err)
	}
}

func TestNotReadyBeforeFirstLoad(t *testing.T) {
	iss := testissuer.New(t, "")
	keys := NewRemoteKeySet(iss.Server.URL+"/jwks", iss.Server.Client())
	v, _ := NewJWTVerifier(JWTOptions{Issuer: iss.URL, Audiences: []string{resource}, Keys: keys})
	_, err := v.Verify(context.Background(), iss.Token(t, iss.Claims(resource)))
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("want ErrNotReady, got %v", err)
	}
	if iss.JWKSHits() != 0 {
		t.Fatal("a request triggered the first JWKS load")
	}
}

func TestKeySetParsing(t *testing.T) {
	tests := []struct {
		name, jwks string
		want       int // usable keys; -1 means error
	}{
		{"symmetric key only", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`, -1},
		{"encryption key skipped", `{"keys":[{"kty":"EC","crv":"P-256","use":"enc","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, -1},
		{"EC signature key", `{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, 1},
		{"alg that does not fit", `{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, -1},
		{"not JSON", `<html>`, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			km, err := parseKeySet([]byte(tc.jwks))
			if tc.want < 0 {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil || len(km.byKID) != tc.want {
				t.Fatalf("got %v, %v", km, err)
			}
		})
	}
}
