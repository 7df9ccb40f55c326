package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/time/rate"

	"github.com/toolgate/toolgate/authserver/clientmeta"
)

// Clients of the private_key_jwt tests: one with its keys inline in its
// document (RS256), one with a jwks_uri (ES256), and a public one.
const (
	inlineKeyClient = "https://chatgpt.example/oauth/client.json"
	uriKeyClient    = "https://app.example.net/oauth/client.json"
	uriKeyJWKS      = "https://app.example.net/oauth/jwks.json"
	publicDocClient = "https://public.example.net/client.json"
	keyRedirect     = "https://chatgpt.example/connector_platform_oauth_redirect"
)

// signingKey is a client's private key as a JWK, with kid and alg.
type signingKey struct {
	priv jwk.Key
	alg  jwa.SignatureAlgorithm
}

func newRSAKey(t *testing.T, kid string) signingKey {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return toSigningKey(t, raw, kid, jwa.RS256)
}

func newECKey(t *testing.T, kid string) signingKey {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return toSigningKey(t, raw, kid, jwa.ES256)
}

func toSigningKey(t *testing.T, raw any, kid string, alg jwa.SignatureAlgorithm) signingKey {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
		t.Fatal(err)
	}
	return signingKey{priv: k, alg: alg}
}

// publicSet is the JWK Set a client publishes for keys.
func publicSet(t *testing.T, keys ...signingKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := k.priv.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes a compact JWS of claims with k, its kid in the header.
func (k signingKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, k.priv.KeyID()); err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// keyEnv is a server with metadata-document clients that use keys.
type keyEnv struct {
	*env
	rsa, ec signingKey
	md      *fakeMetadata
	logs    *observer.ObservedLogs
}

func newKeyEnv(t *testing.T) *keyEnv {
	t.Helper()
	k := &keyEnv{rsa: newRSAKey(t, "rsa1"), ec: newECKey(t, "ec1")}
	k.md = &fakeMetadata{
		docs: map[string]*clientmeta.Document{
			inlineKeyClient: {ClientID: inlineKeyClient, ClientName: "ChatGPT", RedirectURIs: []string{keyRedirect}, TokenEndpointAuthMethod: "private_key_jwt", JWKS: publicSet(t, k.rsa)},
			uriKeyClient:    {ClientID: uriKeyClient, RedirectURIs: []string{keyRedirect}, TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: uriKeyJWKS},
			publicDocClient: {ClientID: publicDocClient, RedirectURIs: []string{keyRedirect}, TokenEndpointAuthMethod: "none"},
		},
		jwks: map[string][]byte{uriKeyJWKS: publicSet(t, k.ec)},
	}
	core, logs := observer.New(zap.DebugLevel)
	k.logs = logs
	k.env = newEnv(t, func(o *Options) {
		o.Metadata = k.md
		o.Log = zap.New(core)
	})
	return k
}

// claims are valid assertion claims for clientID, changed by edits.
func (k *keyEnv) claims(clientID string, edits ...func(map[string]any)) map[string]any {
	now := k.clock.Now()
	c := map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": k.iss + "/token",
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"jti": randomToken(16),
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

func withAssertion(form url.Values, assertion string) url.Values {
	out := url.Values{}
	for key, v := range form {
		out[key] = slices.Clone(v)
	}
	out.Set("client_assertion_type", assertionTypeJWTBearer)
	out.Set("client_assertion", assertion)
	return out
}

// codeFlow signs in and approves for clientID and returns the token
// request that would redeem the code, without client authentication.
func (k *keyEnv) codeFlow(clientID string) url.Values {
	k.t.Helper()
	p := newPKCE()
	code := k.browser().signInAndApprove(k.authzParams(clientID, keyRedirect, p)).Get("code")
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {keyRedirect},
		"code_verifier": {p.verifier},
		"resource":      {k.res},
	}
}

// The whole flow for both kinds of key source, then refresh and revoke,
// each authenticated with a fresh assertion.
func TestPrivateKeyJWTFlow(t *testing.T) {
	k := newKeyEnv(t)
	for _, tc := range []struct {
		client string
		key    signingKey
	}{
		{inlineKeyClient, k.rsa},
		{uriKeyClient, k.ec},
	} {
		t.Run(tc.client, func(t *testing.T) {
			k.t = t
			form := k.codeFlow(tc.client)
			// Without an assertion the code is not redeemed, and stays usable.
			k.postForm("/token", url.Values{"client_id": {tc.client}}).wantError(t, http.StatusUnauthorized, "invalid_client")
			f := withAssertion(form, tc.key.sign(t, k.claims(tc.client)))
			f.Set("client_id", tc.client)
			tok := k.postForm("/token", f).wantOK(t)
			if k.verifyAccessToken(tok.str("access_token"))["client_id"] != tc.client || tok.str("refresh_token") == "" {
				t.Fatalf("tokens: %v", tok.body)
			}
			refreshed := k.postForm("/token", withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}},
				tc.key.sign(t, k.claims(tc.client, func(c map[string]any) { c["aud"] = []string{"https://elsewhere.example", k.iss} })))).wantOK(t)
			rt := refreshed.str("refresh_token")
			k.postForm("/revoke", withAssertion(url.Values{"token": {rt}}, tc.key.sign(t, k.claims(tc.client)))).wantOK(t)
			k.postForm("/token", withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}},
				tc.key.sign(t, k.claims(tc.client)))).wantError(t, http.StatusBadRequest, "invalid_grant")
		})
	}
}

// Every way an assertion can be wrong is invalid_client with a 401. The
// request is a refresh with a made-up token, so an assertion that passed
// would get invalid_grant instead: the first case checks exactly that.
func TestPrivateKeyJWTRefusals(t *testing.T) {
	k := newKeyEnv(t)
	other := newRSAKey(t, "rsa1") // same kid, different key
	now := k.clock.Now()
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_bogus.bogus"}}
	claims := k.claims
	edit := func(key string, v any) func(map[string]any) { return func(c map[string]any) { c[key] = v } }
	drop := func(key string) func(map[string]any) { return func(c map[string]any) { delete(c, key) } }

	hsConfusion := func() string {
		// The classic: alg HS256, "secret" = the public key the server holds.
		var raw rsa.PrivateKey
		if err := k.rsa.priv.Raw(&raw); err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&raw.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		payload, _ := json.Marshal(claims(inlineKeyClient))
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, "rsa1")
		out, err := jws.Sign(payload, jws.WithKey(jwa.HS256, pemKey, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}()
	algNone := func() string {
		enc := base64.RawURLEncoding.EncodeToString
		payload, _ := json.Marshal(claims(inlineKeyClient))
		return enc([]byte(`{"alg":"none","kid":"rsa1"}`)) + "." + enc(payload) + "."
	}()
	replayed := k.rsa.sign(t, claims(inlineKeyClient))
	k.postForm("/token", withAssertion(grant, replayed)).wantError(t, http.StatusBadRequest, "invalid_grant")
	dynamicID := k.publicClient(keyRedirect)

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
		desc   string
	}{
		{"valid (control)", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient))), 400, "invalid_grant", ""},
		{"valid over jwks_uri (control)", withAssertion(grant, k.ec.sign(t, claims(uriKeyClient))), 400, "invalid_grant", ""},
		{"wrong key", withAssertion(grant, other.sign(t, claims(inlineKeyClient))), 401, "invalid_client", "does not verify"},
		{"HS256 with the public key", withAssertion(grant, hsConfusion), 401, "invalid_client", `signed with "HS256"`},
		{"alg none", withAssertion(grant, algNone), 401, "invalid_client", `signed with "none"`},
		{"key of another client", withAssertion(grant, k.ec.sign(t, claims(inlineKeyClient))), 401, "invalid_client", "no ES256 key"},
		{"unknown kid", withAssertion(grant, newRSAKey(t, "rsa2").sign(t, claims(inlineKeyClient))), 401, "invalid_client", `kid "rsa2"`},
		{"wrong iss", withAssertion(grant, k.rsa.sign(t, claims(uriKeyClient, edit("sub", inlineKeyClient)))), 401, "invalid_client", "no RS256 key"},
		{"wrong sub", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("sub", "someone")))), 401, "invalid_client", "iss and sub"},
		{"wrong aud", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("aud", "https://other.example/token")))), 401, "invalid_client", "aud"},
		{"aud of the resource", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("aud", k.res)))), 401, "invalid_client", "aud"},
		{"no aud", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, drop("aud")))), 401, "invalid_client", "aud"},
		{"expired", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("exp", now.Add(-2*time.Minute).Unix())))), 401, "invalid_client", "expired"},
		{"exp too far ahead", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("exp", now.Add(30*time.Minute).Unix())))), 401, "invalid_client", "more than 10m0s ahead"},
		{"lives too long", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("iat", now.Add(-8*time.Minute).Unix())))), 401, "invalid_client", "exp - iat"},
		{"no exp", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, drop("exp")))), 401, "invalid_client", "no exp"},
		{"nbf ahead", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("nbf", now.Add(3*time.Minute).Unix())))), 401, "invalid_client", "nbf"},
		{"iat ahead", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, edit("iat", now.Add(3*time.Minute).Unix())))), 401, "invalid_client", "iat"},
		{"no jti", withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient, drop("jti")))), 401, "invalid_client", "no jti"},
		{"replayed jti", withAssertion(grant, replayed), 401, "invalid_client", "used before"},
		{"client_id differs from iss", withAssertion(url.Values{"client_id": {uriKeyClient}, "grant_type": grant["grant_type"], "refresh_token": grant["refresh_token"]}, k.rsa.sign(t, claims(inlineKeyClient))), 401, "invalid_client", "client_id does not match"},
		{"wrong assertion type", func() url.Values {
			f := withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient)))
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}(), 401, "invalid_client", "client_assertion_type must be"},
		{"type without assertion", withAssertion(grant, ""), 401, "invalid_client", "client_assertion is missing"},
		{"not a JWS", withAssertion(grant, "abc.def"), 401, "invalid_client", "compact serialization"},
		{"no assertion", url.Values{"client_id": {inlineKeyClient}, "grant_type": grant["grant_type"], "refresh_token": grant["refresh_token"]}, 401, "invalid_client", "declares private_key_jwt"},
		{"a secret instead", url.Values{"client_id": {inlineKeyClient}, "client_secret": {"0123456789abcdef0123"}, "grant_type": grant["grant_type"], "refresh_token": grant["refresh_token"]}, 401, "invalid_client", "declares private_key_jwt"},
		{"assertion and secret", func() url.Values {
			f := withAssertion(grant, k.rsa.sign(t, claims(inlineKeyClient)))
			f.Set("client_secret", "0123456789abcdef0123")
			return f
		}(), 400, "invalid_request", "authenticated twice"},
		{"public document client", withAssertion(grant, k.rsa.sign(t, claims(publicDocClient))), 401, "invalid_client", "does not authenticate with private_key_jwt"},
		{"dynamic client", withAssertion(grant, k.rsa.sign(t, claims(dynamicID))), 401, "invalid_client", "does not authenticate with private_key_jwt"},
		{"unknown document", withAssertion(grant, k.rsa.sign(t, claims("https://missing.example/client.json"))), 401, "invalid_client", "client metadata document"},
	}
	var assertions []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k.t = t
			r := k.postForm("/token", tt.form)
			r.wantError(t, tt.status, tt.code)
			if !strings.Contains(r.str("error_description"), tt.desc) {
				t.Errorf("error_description %q, want it to mention %q", r.str("error_description"), tt.desc)
			}
			if a := tt.form.Get("client_assertion"); a != "" {
				assertions = append(assertions, a)
				if strings.Contains(fmt.Sprint(r.body), a) {
					t.Error("the answer repeats the assertion")
				}
			}
		})
	}
	// Nothing of an assertion reaches the logs, refused or not.
	for _, entry := range k.logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		for _, a := range assertions {
			if sig := a[strings.LastIndex(a, ".")+1:]; strings.Contains(line, a) || (sig != "" && strings.Contains(line, sig)) {
				t.Errorf("log entry %q contains an assertion", entry.Message)
			}
		}
	}
}

// A jwks_uri that cannot be fetched fails client authentication, and the
// answer says why without being a server error.
func TestPrivateKeyJWTKeysUnavailable(t *testing.T) {
	k := newKeyEnv(t)
	delete(k.md.jwks, uriKeyJWKS)
	r := k.postForm("/revoke", withAssertion(url.Values{"token": {"x"}}, k.ec.sign(t, k.claims(uriKeyClient))))
	r.wantError(t, http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(r.str("error_description"), "status 404") {
		t.Errorf("error_description %q", r.str("error_description"))
	}
}

// Revocation authenticates the same way: a bad assertion revokes nothing.
func TestPrivateKeyJWTRevokeRefusals(t *testing.T) {
	k := newKeyEnv(t)
	tok := k.postForm("/token", withAssertion(k.codeFlow(inlineKeyClient), k.rsa.sign(t, k.claims(inlineKeyClient)))).wantOK(t)
	rt := tok.str("refresh_token")
	k.postForm("/revoke", url.Values{"client_id": {inlineKeyClient}, "token": {rt}}).wantError(t, http.StatusUnauthorized, "invalid_client")
	other := newRSAKey(t, "rsa1")
	k.postForm("/revoke", withAssertion(url.Values{"token": {rt}}, other.sign(t, k.claims(inlineKeyClient)))).wantError(t, http.StatusUnauthorized, "invalid_client")
	// Still alive: the refresh works.
	k.postForm("/token", withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, k.rsa.sign(t, k.claims(inlineKeyClient)))).wantOK(t)
}

func TestMetadataAdvertisesPrivateKeyJWTOnlyWithCIMD(t *testing.T) {
	for _, cimd := range []bool{false, true} {
		e := newEnv(t, func(o *Options) {
			if cimd {
				o.Metadata = &fakeMetadata{}
			}
		})
		r := e.do(mustRequest(t, "GET", e.iss+"/.well-known/oauth-authorization-server"))
		for _, field := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			methods, _ := r.body[field].([]any)
			if got := slices.Contains(methods, any("private_key_jwt")); got != cimd {
				t.Errorf("CIMD %v: %s = %v", cimd, field, methods)
			}
		}
		for _, field := range []string{"token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
			algs, present := r.body[field].([]any)
			if present != cimd {
				t.Errorf("CIMD %v: %s = %v", cimd, field, r.body[field])
			}
			if cimd && (!slices.Contains(algs, any("RS256")) || !slices.Contains(algs, any("ES256")) || !slices.Contains(algs, any("EdDSA")) ||
				slices.Contains(algs, any("HS256")) || slices.Contains(algs, any("none"))) {
				t.Errorf("%s = %v", field, algs)
			}
		}
	}
}

// A client that rotated its keys signs with a kid the cached set lacks:
// the server asks the fetcher to go back to the jwks_uri once, and the new
// key is accepted. A kid the cached set has never costs a refresh.
func TestPrivateKeyJWTRotatedKey(t *testing.T) {
	k := newKeyEnv(t)
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_bogus.bogus"}}
	k.postForm("/token", withAssertion(grant, k.ec.sign(t, k.claims(uriKeyClient)))).wantError(t, http.StatusBadRequest, "invalid_grant")
	if k.md.jwksRefreshes != 0 {
		t.Fatalf("a known kid caused %d refreshes", k.md.jwksRefreshes)
	}
	rotated := newECKey(t, "ec2")
	k.md.mu.Lock()
	k.md.rotatedJWKS = map[string][]byte{uriKeyJWKS: publicSet(t, rotated)}
	k.md.mu.Unlock()
	// FetchJWKS still serves the old set, as a cache would; RefreshJWKS
	// (rate-limited in the real fetcher, see clientmeta) has the new one.
	k.postForm("/token", withAssertion(grant, rotated.sign(t, k.claims(uriKeyClient)))).wantError(t, http.StatusBadRequest, "invalid_grant")
	if k.md.jwksRefreshes != 1 {
		t.Fatalf("an unknown kid caused %d refreshes, want 1", k.md.jwksRefreshes)
	}
}

// Client assertions are rate-limited per address before anything is
// recorded: each accepted one is a store entry until it expires.
func TestPrivateKeyJWTRateLimit(t *testing.T) {
	k := newKeyEnv(t)
	k.srv.assertionLimit = newLimiter(rate.Every(time.Hour), 2)
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_bogus.bogus"}}
	for range 2 {
		k.postForm("/token", withAssertion(grant, k.ec.sign(t, k.claims(uriKeyClient)))).wantError(t, http.StatusBadRequest, "invalid_grant")
	}
	jtis := len(k.store.keysWithPrefix("jti:"))
	r := k.postForm("/token", withAssertion(grant, k.ec.sign(t, k.claims(uriKeyClient))))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third assertion: %d %v, want 429 with Retry-After", r.status, r.body)
	}
	if got := len(k.store.keysWithPrefix("jti:")); got != jtis {
		t.Fatalf("a refused assertion was recorded: %d jti entries, want %d", got, jtis)
	}
}
