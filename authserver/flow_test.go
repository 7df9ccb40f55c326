package authserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

func TestMetadataExactFields(t *testing.T) {
	e := newEnv(t)
	r := e.do(mustRequest(t, "GET", e.iss+"/.well-known/oauth-authorization-server"))
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	methods := []any{"none", "client_secret_basic", "client_secret_post"}
	want := map[string]any{
		"issuer":                                         e.iss,
		"authorization_endpoint":                         e.iss + "/authorize",
		"token_endpoint":                                 e.iss + "/token",
		"registration_endpoint":                          e.iss + "/register",
		"revocation_endpoint":                            e.iss + "/revoke",
		"jwks_uri":                                       e.iss + "/jwks.json",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []any{"S256"},
		"token_endpoint_auth_methods_supported":          methods,
		"revocation_endpoint_auth_methods_supported":     methods,
		"scopes_supported":                               []any{"tools:read", "tools:write"},
		"client_id_metadata_document_supported":          false,
		"authorization_response_iss_parameter_supported": true,
	}
	if !reflect.DeepEqual(r.body, want) {
		t.Errorf("metadata:\n got %v\nwant %v", r.body, want)
	}

	withCIMD := newEnv(t, func(o *Options) { o.Metadata = &fakeMetadata{} })
	r = withCIMD.do(mustRequest(t, "GET", withCIMD.iss+"/.well-known/oauth-authorization-server"))
	if r.body["client_id_metadata_document_supported"] != true {
		t.Errorf("client_id_metadata_document_supported = %v with a fetcher", r.body["client_id_metadata_document_supported"])
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/jwks.json", "/token", "/register", "/revoke"} {
		req := mustRequest(t, "OPTIONS", e.iss+path)
		req.Header.Set("Origin", "http://localhost:6274")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("OPTIONS %s: %d %v", path, resp.StatusCode, h)
		}
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// verifyAccessToken checks an access token the way toolgate's gateway
// will: against JWKS(), then every RFC 9068 claim; it returns the claims.
func (e *env) verifyAccessToken(tok string) map[string]any {
	e.t.Helper()
	set, err := jwk.Parse(e.srv.JWKS())
	if err != nil {
		e.t.Fatalf("JWKS: %v", err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		e.t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if hdr.Type() != "at+jwt" {
		e.t.Errorf("typ = %q, want at+jwt", hdr.Type())
	}
	if _, ok := set.LookupKeyID(hdr.KeyID()); !ok {
		e.t.Errorf("kid %q is not in the JWKS", hdr.KeyID())
	}
	if _, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(e.clock.Now)), jwt.WithIssuer(e.iss), jwt.WithAudience(e.res)); err != nil {
		e.t.Fatalf("access token does not verify: %v", err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		e.t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	if claims["aud"] != e.res {
		e.t.Errorf("aud = %#v, want the string %q", claims["aud"], e.res)
	}
	for _, k := range []string{"sub", "client_id", "jti", "iat", "exp"} {
		if claims[k] == nil || claims[k] == "" {
			e.t.Errorf("claim %s is missing", k)
		}
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); time.Duration(exp-iat)*time.Second != e.srv.opt.AccessTokenTTL {
		e.t.Errorf("exp-iat = %vs, want %v", exp-iat, e.srv.opt.AccessTokenTTL)
	}
	return claims
}

func TestFullFlowDynamicPublicClient(t *testing.T) {
	e := newEnv(t)
	const registered = "http://127.0.0.1/callback"
	id := e.publicClient(registered)
	if !strings.HasPrefix(id, "tgc1.") {
		t.Fatalf("client_id %q", id)
	}
	// A native app listens on a port of its choosing (RFC 8252 §7.3).
	redirect := "http://127.0.0.1:49152/callback"
	p := newPKCE()
	q := e.authzParams(id, redirect, p)
	got := e.browser().signInAndApprove(q)
	if got.Get("state") != q.Get("state") {
		t.Errorf("state = %q, want %q", got.Get("state"), q.Get("state"))
	}

	tok := e.codeGrant(id, got.Get("code"), redirect, p.verifier).wantOK(t)
	if tok.header.Get("Cache-Control") != "no-store" || tok.header.Get("Pragma") != "no-cache" {
		t.Errorf("token response cache headers: %v", tok.header)
	}
	if tok.str("token_type") != "Bearer" || tok.body["expires_in"] != float64(3600) || tok.str("scope") != "tools:read tools:write" || tok.str("refresh_token") == "" {
		t.Errorf("token response %v", tok.body)
	}
	claims := e.verifyAccessToken(tok.str("access_token"))
	if claims["iss"] != e.iss || claims["client_id"] != id || claims["scope"] != "tools:read tools:write" || claims["sub"] != testUser || claims["preferred_username"] != testUser {
		t.Errorf("claims %v", claims)
	}

	// Rotate twice; each answer carries a new refresh token that works.
	rt := tok.str("refresh_token")
	for i := range 2 {
		e.clock.Advance(time.Minute)
		next := e.refreshGrant(id, rt).wantOK(t)
		if next.str("refresh_token") == "" || next.str("refresh_token") == rt {
			t.Fatalf("refresh %d: refresh token not rotated: %v", i, next.body)
		}
		c := e.verifyAccessToken(next.str("access_token"))
		if c["sub"] != testUser || c["scope"] != "tools:read tools:write" {
			t.Errorf("refresh %d: claims %v", i, c)
		}
		rt = next.str("refresh_token")
	}

	// A refresh may narrow the scope, never widen it.
	narrow := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {rt}, "scope": {"tools:read"}}).wantOK(t)
	if narrow.str("scope") != "tools:read" || e.verifyAccessToken(narrow.str("access_token"))["scope"] != "tools:read" {
		t.Errorf("narrowed refresh: %v", narrow.body)
	}
	// A scope this server does not offer at all is ignored, as at /authorize.
	ignored := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {narrow.str("refresh_token")}, "scope": {"tools:read offline_access"}}).wantOK(t)
	if ignored.str("scope") != "tools:read" {
		t.Errorf("refresh asking for an unoffered scope too: %v", ignored.body)
	}
}

// A refresh cannot widen the grant to a scope the server offers but the
// user did not grant.
func TestRefreshCannotWiden(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	pk := newPKCE()
	q := e.authzParams(id, redirect, pk)
	q.Set("scope", "tools:read")
	code := e.browser().signInAndApprove(q).Get("code")
	rt := e.codeGrant(id, code, redirect, pk.verifier).wantOK(t).str("refresh_token")
	e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {rt}, "scope": {"tools:read tools:write"}}).
		wantError(t, 400, "invalid_scope")
}

func TestPreRegisteredConfidentialClient(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	const redirect = "https://app.example.com/oauth/callback"
	e := newEnv(t, func(o *Options) {
		o.Clients = []Client{{ID: "app", Name: "Example App", Secret: secret, RedirectURIs: []string{redirect}}}
	})
	flow := func() (url.Values, pkce) {
		p := newPKCE()
		q := e.authzParams("app", redirect, p)
		return e.browser().signInAndApprove(q), p
	}
	tokenForm := func(code, verifier string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	}

	// client_secret_basic
	got, p := flow()
	e.postForm("/token", tokenForm(got.Get("code"), p.verifier), "app", "wrong-secret-wrong").wantError(t, 401, "invalid_client")
	r := e.postForm("/token", tokenForm(got.Get("code"), p.verifier), "app", "wrong-secret-wrong")
	if r.header.Get("WWW-Authenticate") != `Basic realm="toolgate"` {
		t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	tok := e.postForm("/token", tokenForm(got.Get("code"), p.verifier), "app", secret).wantOK(t)
	if e.verifyAccessToken(tok.str("access_token"))["client_id"] != "app" {
		t.Error("client_id claim")
	}

	// client_secret_post
	got, p = flow()
	f := tokenForm(got.Get("code"), p.verifier)
	f.Set("client_id", "app")
	f.Set("client_secret", "nope-nope-nope-nope")
	e.postForm("/token", f).wantError(t, 401, "invalid_client")
	f.Del("client_secret")
	e.postForm("/token", f).wantError(t, 401, "invalid_client") // a confidential client must authenticate
	f.Set("client_secret", secret)
	e.postForm("/token", f).wantOK(t)
}

func TestPKCERequired(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	b := e.browser()
	cases := []struct {
		name   string
		change func(url.Values)
		code   string
		desc   string
	}{
		{"no challenge", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request", "PKCE is required"},
		{"plain", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request", "S256"},
		{"no method", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request", "S256"},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request", "43-character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := e.authzParams(id, redirect, newPKCE())
			c.change(q)
			got := e.clientRedirect(b.get(e.authorizeURL(q)), redirect)
			if got.Get("error") != c.code || !strings.Contains(got.Get("error_description"), c.desc) || got.Get("state") != q.Get("state") {
				t.Errorf("redirect %v", got)
			}
		})
	}

	// A wrong verifier fails and does not burn the code for the client
	// that holds the right one.
	p := newPKCE()
	got := b.signInAndApprove(e.authzParams(id, redirect, p))
	e.codeGrant(id, got.Get("code"), redirect, newPKCE().verifier).wantError(t, 400, "invalid_grant")
	e.codeGrant(id, got.Get("code"), redirect, "short").wantError(t, 400, "invalid_request")
	e.codeGrant(id, got.Get("code"), redirect, p.verifier).wantOK(t)
}

func TestAuthorizeErrorsRedirectWithIss(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	b := e.browser()
	cases := []struct {
		name   string
		change func(url.Values)
		code   string
	}{
		{"wrong resource", func(q url.Values) { q.Set("resource", e.iss+"/other") }, "invalid_target"},
		{"two resources", func(q url.Values) { q.Add("resource", e.res) }, "invalid_target"},
		{"malformed scope", func(q url.Values) { q.Set("scope", "tools:read ad\"min") }, "invalid_scope"},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"no response type", func(q url.Values) { q.Del("response_type") }, "invalid_request"},
		{"duplicated scope param", func(q url.Values) { q.Add("scope", "tools:read") }, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := e.authzParams(id, redirect, newPKCE())
			c.change(q)
			got := e.clientRedirect(b.get(e.authorizeURL(q)), redirect)
			if got.Get("error") != c.code || got.Get("error_description") == "" || got.Get("state") != q.Get("state") {
				t.Errorf("redirect %v, want error=%s with state", got, c.code)
			}
		})
	}

	// A duplicated state is not echoed.
	q := e.authzParams(id, redirect, newPKCE())
	q.Add("state", "other")
	got := e.clientRedirect(b.get(e.authorizeURL(q)), redirect)
	if got.Get("error") != "invalid_request" || got.Has("state") {
		t.Errorf("duplicated state: %v", got)
	}

	// No resource: clients that predate RFC 8707 get a token for ours.
	p := newPKCE()
	q = e.authzParams(id, redirect, p)
	q.Del("resource")
	code := b.signInAndApprove(q).Get("code")
	tok := e.postForm("/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {p.verifier}}).wantOK(t)
	e.verifyAccessToken(tok.str("access_token"))

	// No scope: the default scopes.
	p = newPKCE()
	q = e.authzParams(id, redirect, p)
	q.Del("scope")
	code = b.signInAndApprove(q).Get("code") // signed in already: straight to consent
	tok = e.codeGrant(id, code, redirect, p.verifier).wantOK(t)
	if tok.str("scope") != "tools:read" {
		t.Errorf("default scope: %q", tok.str("scope"))
	}
}

func TestAuthorizeNeverRedirectsToUnverifiedURI(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	tampered := id[:len(id)-3] + "AAA"
	payloadSwap := strings.Replace(id, ".", ".e30", 1) // changes the signed part
	b := e.browser()
	cases := []struct {
		name   string
		change func(url.Values)
	}{
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }},
		{"other loopback path", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1/other") }},
		{"tampered client_id mac", func(q url.Values) { q.Set("client_id", tampered) }},
		{"tampered client_id payload", func(q url.Values) { q.Set("client_id", payloadSwap) }},
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }},
		{"metadata URL without fetcher", func(q url.Values) { q.Set("client_id", "https://app.example/client.json") }},
		{"two client_ids", func(q url.Values) { q.Add("client_id", id) }},
		{"two redirect_uris", func(q url.Values) { q.Add("redirect_uri", redirect) }},
		{"missing client_id", func(q url.Values) { q.Del("client_id") }},
		// Also a bad response type: the redirect URI check comes first.
		{"unregistered redirect and bad response type", func(q url.Values) {
			q.Set("redirect_uri", "https://evil.example/cb")
			q.Set("response_type", "token")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := e.authzParams(id, redirect, newPKCE())
			c.change(q)
			p := b.get(e.authorizeURL(q))
			if p.StatusCode != http.StatusBadRequest || p.Header.Get("Location") != "" {
				t.Fatalf("got %d Location=%q, want a 400 error page", p.StatusCode, p.Header.Get("Location"))
			}
			if !strings.Contains(p.body, "<h1>") {
				t.Errorf("not an error page:\n%s", p.body)
			}
		})
	}
	e.codeGrant(tampered, "x", redirect, newPKCE().verifier).wantError(t, 401, "invalid_client")
}

func TestTokenRedirectURIMismatch(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	p := newPKCE()
	q := e.authzParams(id, "http://127.0.0.1:5000/cb", p)
	got := e.browser().signInAndApprove(q)
	e.codeGrant(id, got.Get("code"), "http://127.0.0.1:5001/cb", p.verifier).wantError(t, 400, "invalid_grant")
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {got.Get("code")}, "code_verifier": {p.verifier}}
	e.postForm("/token", f).wantError(t, 400, "invalid_grant") // omitted although the request named it
	e.codeGrant(id, got.Get("code"), "http://127.0.0.1:5000/cb", p.verifier).wantOK(t)
}

func TestCodeReuseRevokesFamily(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	p := newPKCE()
	code := e.browser().signInAndApprove(e.authzParams(id, redirect, p)).Get("code")
	first := e.codeGrant(id, code, redirect, p.verifier).wantOK(t)
	e.codeGrant(id, code, redirect, p.verifier).wantError(t, 400, "invalid_grant")
	e.refreshGrant(id, first.str("refresh_token")).wantError(t, 400, "invalid_grant")
}

func TestExpiredCode(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	p := newPKCE()
	code := e.browser().signInAndApprove(e.authzParams(id, redirect, p)).Get("code")
	e.clock.Advance(61 * time.Second)
	e.codeGrant(id, code, redirect, p.verifier).wantError(t, 400, "invalid_grant")
}

func TestCodeBoundToClient(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	other := e.publicClient(redirect)
	p := newPKCE()
	code := e.browser().signInAndApprove(e.authzParams(id, redirect, p)).Get("code")
	e.codeGrant(other, code, redirect, p.verifier).wantError(t, 400, "invalid_grant")
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {p.verifier}, "resource": {e.res + "/other"}}
	e.postForm("/token", f).wantError(t, 400, "invalid_target")
	e.codeGrant(id, code, redirect, p.verifier).wantOK(t)
}

func TestRefreshReuseKillsFamily(t *testing.T) {
	e := newEnv(t)
	id, tok := e.fullFlow()
	rt1 := tok.str("refresh_token")
	rt2 := e.refreshGrant(id, rt1).wantOK(t).str("refresh_token")
	rt3 := e.refreshGrant(id, rt2).wantOK(t).str("refresh_token")
	// rt1 is two rotations old: reuse, whatever the time.
	e.refreshGrant(id, rt1).wantError(t, 400, "invalid_grant")
	// The newest token dies with the family.
	e.refreshGrant(id, rt3).wantError(t, 400, "invalid_grant")
	if keys := e.store.keysWithPrefix("family:"); len(keys) != 0 {
		t.Errorf("family still stored: %v", keys)
	}
}

func TestRefreshOtherClientAndExpiry(t *testing.T) {
	e := newEnv(t)
	id, tok := e.fullFlow()
	other := e.publicClient("http://127.0.0.1/cb")
	e.refreshGrant(other, tok.str("refresh_token")).wantError(t, 400, "invalid_grant")
	e.refreshGrant(id, "garbage").wantError(t, 400, "invalid_grant")
	e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}}).wantError(t, 400, "invalid_request")
	e.clock.Advance(31 * 24 * time.Hour)
	e.refreshGrant(id, tok.str("refresh_token")).wantError(t, 400, "invalid_grant")
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	id, tok := e.fullFlow()
	other := e.publicClient("http://127.0.0.1/cb")
	// Another client cannot revoke it; the answer is 200 regardless.
	e.postForm("/revoke", url.Values{"client_id": {other}, "token": {tok.str("refresh_token")}}).wantOK(t)
	rt := e.refreshGrant(id, tok.str("refresh_token")).wantOK(t).str("refresh_token")

	e.postForm("/revoke", url.Values{"client_id": {id}, "token": {rt}, "token_type_hint": {"refresh_token"}}).wantOK(t)
	e.refreshGrant(id, rt).wantError(t, 400, "invalid_grant")
	e.postForm("/revoke", url.Values{"client_id": {id}, "token": {tok.str("access_token")}}).wantOK(t)
	e.postForm("/revoke", url.Values{"client_id": {id}, "token": {"unknown.token"}}).wantOK(t)
	e.postForm("/revoke", url.Values{"client_id": {id}}).wantError(t, 400, "invalid_request")
	e.postForm("/revoke", url.Values{"token": {rt}}).wantError(t, 401, "invalid_client")
}

func TestTokenRequestShape(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("http://127.0.0.1/cb")
	e.postForm("/token", url.Values{"grant_type": {"password"}, "client_id": {id}}).wantError(t, 400, "unsupported_grant_type")
	e.postForm("/token", url.Values{"grant_type": {"authorization_code", "refresh_token"}, "client_id": {id}}).wantError(t, 400, "invalid_request")
	e.postForm("/token", url.Values{"grant_type": {"authorization_code"}}).wantError(t, 401, "invalid_client")
	// A public client must not present a secret.
	e.postForm("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, id, "guess").wantError(t, 401, "invalid_client")

	req, _ := http.NewRequest("POST", e.iss+"/token", strings.NewReader(`{"grant_type":"authorization_code"}`))
	req.Header.Set("Content-Type", "application/json")
	e.do(req).wantError(t, 400, "invalid_request")

	big := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "pad": {strings.Repeat("a", 70<<10)}}
	e.postForm("/token", big).wantError(t, 400, "invalid_request")

	// Only the authorization_code grant registered: no refresh token.
	r := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"}})
	codeOnly := r.str("client_id")
	e.refreshGrant(codeOnly, "a.b").wantError(t, 400, "unauthorized_client")
	p := newPKCE()
	code := e.browser().signInAndApprove(e.authzParams(codeOnly, "http://127.0.0.1/cb", p)).Get("code")
	tok := e.codeGrant(codeOnly, code, "http://127.0.0.1/cb", p.verifier).wantOK(t)
	if tok.str("refresh_token") != "" {
		t.Errorf("refresh token issued to a client without the refresh_token grant")
	}
}

// Scopes this server does not know are dropped rather than refused, and the
// token response says what was granted: clients ask for "openid profile"
// or product scopes out of habit.
func TestUnknownScopesAreDropped(t *testing.T) {
	e := newEnv(t)
	redirect := "https://app.example.com/cb"
	id := e.publicClient(redirect)
	pk := newPKCE()
	q := e.authzParams(id, redirect, pk)
	q.Set("scope", "openid tools:read claudeai")
	code := e.browser().signInAndApprove(q).Get("code")
	tok := e.codeGrant(id, code, redirect, pk.verifier)
	if tok.status != http.StatusOK || tok.body["scope"] != "tools:read" {
		t.Fatalf("token response %d %v, want only the supported tools:read granted", tok.status, tok.body)
	}
}

// A self-registered client's errors are shown, not redirected, when its
// redirect URI is a web site: anyone can register a client, and an error
// redirect needs no user action, so it would make this server an open
// redirector. Loopback redirects (native clients) still get the redirect.
func TestErrorRedirectOnlyToTrustedRedirects(t *testing.T) {
	e := newEnv(t)
	web := e.publicClient("https://evil.example/phish")
	q := e.authzParams(web, "https://evil.example/phish", newPKCE())
	q.Del("code_challenge")
	p := e.browser().get(e.authorizeURL(q))
	if p.StatusCode != http.StatusBadRequest || p.Header.Get("Location") != "" || !strings.Contains(p.body, "PKCE is required") {
		t.Fatalf("web redirect of a registered client: %d, Location %q; want 400 and the error shown", p.StatusCode, p.Header.Get("Location"))
	}
	native := e.publicClient("http://127.0.0.1/cb")
	q = e.authzParams(native, "http://127.0.0.1:4000/cb", newPKCE())
	q.Del("code_challenge")
	got := e.clientRedirect(e.browser().get(e.authorizeURL(q)), "http://127.0.0.1:4000/cb")
	if got.Get("error") != "invalid_request" || got.Get("iss") != e.iss {
		t.Fatalf("loopback redirect: %v, want error=invalid_request with iss", got)
	}
}

// Sizes that would make a pending request or a client_id unwieldy are
// refused up front with a clear error, not failed later in the browser.
func TestOversizedStateAndRegistration(t *testing.T) {
	e := newEnv(t)
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	q := e.authzParams(id, redirect, newPKCE())
	q.Set("state", strings.Repeat("s", 1025))
	got := e.clientRedirect(e.browser().get(e.authorizeURL(q)), redirect)
	if got.Get("error") != "invalid_request" || got.Get("state") != "" || !strings.Contains(got.Get("error_description"), "state") {
		t.Fatalf("1025-byte state: %v, want invalid_request without the state echoed", got)
	}
	var uris []string
	for i := range 10 {
		uris = append(uris, fmt.Sprintf("https://app.example.com/%d/%s", i, strings.Repeat("p", 400)))
	}
	r := e.register(map[string]any{"client_name": "big", "redirect_uris": uris, "token_endpoint_auth_method": "none"})
	if r.status != http.StatusBadRequest || r.body["error"] != "invalid_client_metadata" {
		t.Fatalf("registration with a 6 KB client_id: %d %v, want 400 invalid_client_metadata", r.status, r.body)
	}
}

// Refreshing cannot keep a sign-in alive forever, nor keep a removed local
// user in: both end the family.
func TestRefreshEndsWithTheSignIn(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	users := map[string][]byte{}
	e := newEnv(t, func(o *Options) {
		o.Now = clock.Now
		o.Users = maps.Clone(o.Users) // this test removes a user
		users = o.Users
		o.RefreshTokenTTL = 60 * 24 * time.Hour
	})
	const redirect = "http://127.0.0.1/cb"
	id := e.publicClient(redirect)
	pk := newPKCE()
	code := e.browser().signInAndApprove(e.authzParams(id, redirect, pk)).Get("code")
	refresh := e.codeGrant(id, code, redirect, pk.verifier).wantOK(t).str("refresh_token")
	for range 3 { // 3 × 31 days, each within the refresh token's 60-day window
		clock.Advance(31 * 24 * time.Hour)
		r := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {id}})
		if r.status != http.StatusOK {
			if r.body["error"] != "invalid_grant" || !strings.Contains(fmt.Sprint(r.body["error_description"]), "90 days") {
				t.Fatalf("refresh past 90 days: %d %v, want invalid_grant naming the limit", r.status, r.body)
			}
			goto removed
		}
		refresh = r.str("refresh_token")
	}
	t.Fatal("a sign-in was kept alive past 90 days by refreshing")

removed:
	pk = newPKCE()
	code = e.browser().signInAndApprove(e.authzParams(id, redirect, pk)).Get("code")
	refresh = e.codeGrant(id, code, redirect, pk.verifier).wantOK(t).str("refresh_token")
	delete(users, testUser)
	if r := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {id}}); r.status != http.StatusBadRequest {
		t.Fatalf("refresh for a removed local user: %d %v, want 400", r.status, r.body)
	}
}

// A secret with '+' and '%' works whether the client form-urlencodes it
// before Basic (RFC 6749 §2.3.1) or sends it raw, as the MCP TypeScript
// SDK does; a wrong secret still fails either way.
func TestBasicSecretEncodedOrRaw(t *testing.T) {
	const secret = "s3cret+with%2Fodd%chars-and-length"
	e := newEnv(t, func(o *Options) {
		o.Clients = []Client{{ID: "app", Name: "Example App", Secret: secret, RedirectURIs: []string{"https://app.example.com/cb"}}}
	})
	for _, tc := range []struct {
		name, user, pass string
		status           int
	}{
		{"encoded", "app", url.QueryEscape(secret), 400},
		{"raw", "app", secret, 400},
		{"wrong", "app", secret + "x", 401},
	} {
		req, _ := http.NewRequest("POST", e.iss+"/token", strings.NewReader("grant_type=authorization_code&code=nope&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&code_verifier="+strings.Repeat("v", 43)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(tc.user, tc.pass)
		// A known client with a made-up code gets invalid_grant (400):
		// authentication passed. A failed authentication is 401.
		if r := e.do(req); r.status != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
}

// A refresh retried within the grace (two requests saw the same expired
// token, or a response was lost) gets the same new refresh token as the
// first attempt and rotates nothing; after the grace the replaced token is
// reuse and ends the family.
func TestRefreshRetryWithinGrace(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	e := newEnv(t, func(o *Options) { o.Now = clock.Now })
	id, tok := e.fullFlow()
	rt1 := tok.str("refresh_token")
	first := e.refreshGrant(id, rt1).wantOK(t).str("refresh_token")
	clock.Advance(10 * time.Second)
	again := e.refreshGrant(id, rt1).wantOK(t)
	if again.str("refresh_token") != first {
		t.Fatalf("retry within the grace got another refresh token")
	}
	// The token both attempts got is the valid one.
	rt3 := e.refreshGrant(id, first).wantOK(t).str("refresh_token")
	clock.Advance(retryGrace + time.Second)
	e.refreshGrant(id, first).wantError(t, 400, "invalid_grant")
	e.refreshGrant(id, rt3).wantError(t, 400, "invalid_grant")
}

// Concurrent refreshes with one token all succeed and agree on the new
// token: the store's compare-and-swap lets one rotate, the rest see it.
func TestConcurrentRefreshesAgree(t *testing.T) {
	e := newEnv(t)
	id, tok := e.fullFlow()
	rt1 := tok.str("refresh_token")
	const n = 8
	got := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got <- e.refreshGrant(id, rt1).str("refresh_token")
		}()
	}
	wg.Wait()
	close(got)
	seen := map[string]int{}
	for rt := range got {
		seen[rt]++
	}
	if len(seen) != 1 || seen[""] != 0 {
		t.Fatalf("concurrent refreshes answered %v, want one token for all", seen)
	}
}
