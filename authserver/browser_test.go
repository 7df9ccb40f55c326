package authserver

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/authserver/clientmeta"
)

// consentPage takes a fresh browser to the consent page of a new request.
func (e *env) consentPage(b *browser, clientID, redirect string) (page, url.Values) {
	e.t.Helper()
	q := e.authzParams(clientID, redirect, newPKCE())
	login := b.get(e.authorizeURL(q)).wantStatus(e.t, http.StatusOK)
	f := login.fields()
	f.Set("username", testUser)
	f.Set("password", testPassword)
	return b.post("/authorize/login", f).wantStatus(e.t, http.StatusOK), q
}

func TestConsentCSRF(t *testing.T) {
	e := newEnv(t)
	const redirect = "https://app.example.com/cb"
	id := e.publicClient(redirect)
	alice := e.browser()
	consent, _ := e.consentPage(alice, id, redirect)
	good := consent.fields()
	good.Set("decision", "approve")

	mallory := e.browser()
	e.consentPage(mallory, id, redirect) // mallory has a signed-in session of her own

	without := url.Values{"request_id": {good.Get("request_id")}, "decision": {"approve"}}
	wrong := url.Values{"request_id": {good.Get("request_id")}, "csrf_token": {"AAAA"}, "decision": {"approve"}}
	cases := []struct {
		name    string
		b       *browser
		form    url.Values
		headers []string
	}{
		{"no token", alice, without, nil},
		{"wrong token", alice, wrong, nil},
		{"another browser's cookie", mallory, good, nil},
		{"cross-origin Origin", alice, good, []string{"Origin", "https://evil.example"}},
		{"cross-site fetch", alice, good, []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site fetch", alice, good, []string{"Sec-Fetch-Site", "same-site"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.b.post("/authorize/consent", c.form, c.headers...)
			if p.StatusCode != http.StatusForbidden || p.Header.Get("Location") != "" {
				t.Fatalf("got %d Location=%q, want 403 page", p.StatusCode, p.Header.Get("Location"))
			}
		})
	}
	// None of that consumed the request: Alice can still approve, from
	// a page whose Origin is the issuer itself.
	got := e.clientRedirect(alice.post("/authorize/consent", good, "Origin", e.iss), redirect)
	if got.Get("code") == "" {
		t.Fatal("no code")
	}
	// And only once.
	again := alice.post("/authorize/consent", good)
	if again.StatusCode != http.StatusBadRequest || again.Header.Get("Location") != "" {
		t.Errorf("second approve: %d %q", again.StatusCode, again.Header.Get("Location"))
	}
}

func TestConsentDeny(t *testing.T) {
	e := newEnv(t)
	const redirect = "https://app.example.com/cb?tenant=7"
	id := e.publicClient(redirect)
	b := e.browser()
	consent, q := e.consentPage(b, id, redirect)
	f := consent.fields()
	f.Set("decision", "deny")
	got := e.clientRedirect(b.post("/authorize/consent", f), "https://app.example.com/cb?")
	if got.Get("error") != "access_denied" || got.Get("state") != q.Get("state") || got.Get("tenant") != "7" || got.Has("code") {
		t.Errorf("deny redirect %v", got)
	}
}

func TestConsentPageContent(t *testing.T) {
	e := newEnv(t)
	r := e.register(map[string]any{
		"client_name":                "<script>alert(1)</script>Evil\u202eApp\x07",
		"redirect_uris":              []string{"http://localhost/cb"},
		"token_endpoint_auth_method": "none",
	})
	id := r.str("client_id")
	if r.str("client_name") != "<script>alert(1)</script>EvilApp" {
		t.Errorf("client_name not cleaned: %q", r.str("client_name"))
	}
	consent, _ := e.consentPage(e.browser(), id, "http://localhost:8080/cb")
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;EvilApp", // escaped, not markup
		"registered itself",
		"localhost",
		"a program on this computer",
		"tools:read", "tools:write",
		testUser,
	} {
		if !strings.Contains(consent.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(consent.body, "<script>") {
		t.Error("client name rendered as markup")
	}

	// A non-loopback redirect carries no local-program warning.
	id = e.publicClient("https://app.example.com/cb")
	consent, _ = e.consentPage(e.browser(), id, "https://app.example.com/cb")
	if strings.Contains(consent.body, "a program on this computer") || !strings.Contains(consent.body, "app.example.com") {
		t.Errorf("https consent page:\n%s", consent.body)
	}
}

func TestSecurityHeadersOnPages(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	b := e.browser()
	login := b.get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE())))
	errPage := b.get(e.iss + "/authorize?client_id=nobody")
	consent, _ := e.consentPage(e.browser(), id, "https://app.example.com/cb")
	nonceRE := regexp.MustCompile(`<style nonce="([^"]+)">`)
	for name, p := range map[string]page{"login": login, "error": errPage, "consent": consent} {
		h := p.Header
		csp := h.Get("Content-Security-Policy")
		m := nonceRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Errorf("%s: no style nonce", name)
			continue
		}
		want := "default-src 'none'; style-src 'nonce-" + m[1] + "'; script-src 'nonce-" + m[1] + "'; frame-ancestors 'none'; base-uri 'none'"
		if csp != want {
			t.Errorf("%s: CSP %q, want %q", name, csp, want)
		}
		for k, v := range map[string]string{
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
			"Content-Type":           "text/html; charset=utf-8",
		} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", name, k, h.Get(k), v)
			}
		}
		if !strings.Contains(p.body, `<html lang="en">`) {
			t.Errorf("%s: no lang", name)
		}
	}
	if !strings.Contains(login.body, `<label for="password">`) {
		t.Error("login form without labels")
	}
	// The consent page's only script (the double-click guard) runs under
	// the page's nonce; the others carry none.
	if scripts := regexp.MustCompile(`<script nonce="([^"]+)">`).FindAllStringSubmatch(consent.body, -1); len(scripts) != 1 || scripts[0][1] != nonceRE.FindStringSubmatch(consent.body)[1] {
		t.Errorf("consent page scripts %v, want exactly one under the page nonce", scripts)
	}
	if strings.Contains(login.body, "<script") || strings.Contains(errPage.body, "<script") {
		t.Error("sign-in or error page carries a script")
	}
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	p := e.browser().get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE())))
	var c *http.Cookie
	for _, ck := range p.Cookies() {
		if ck.Name == "toolgate" {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("cookie %+v", c)
	}
	s, err := New(t.Context(), Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: newMemStore(), Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	if s.cookieKey != "__Host-toolgate" {
		t.Errorf("https cookie name %q", s.cookieKey)
	}
	// A forged cookie is no session.
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "toolgate", Value: strings.Replace(c.Value, "e", "f", 1)})
	if e.srv.readSession(req) != nil {
		t.Error("tampered cookie accepted")
	}
	req, _ = http.NewRequest("GET", "/", nil)
	req.AddCookie(c)
	if e.srv.readSession(req) == nil {
		t.Error("genuine cookie refused")
	}
}

func TestLocalLoginFailuresAndRateLimit(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	b := e.browser()
	login := b.get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE())))
	f := login.fields()
	for i, creds := range [][2]string{{testUser, "wrong"}, {"mallory", testPassword}, {testUser, ""}, {testUser, "wrong"}, {testUser, "wrong"}} {
		f.Set("username", creds[0])
		f.Set("password", creds[1])
		p := b.post("/authorize/login", f)
		if p.StatusCode != http.StatusUnauthorized || !strings.Contains(p.body, "Wrong username or password") {
			t.Fatalf("attempt %d: %d\n%s", i, p.StatusCode, p.body)
		}
		f = p.fields() // the page re-renders with its form
	}
	f.Set("username", testUser)
	f.Set("password", testPassword)
	p := b.post("/authorize/login", f)
	if p.StatusCode != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth attempt: %d %v", p.StatusCode, p.Header)
	}
}

func TestUpstreamProviderFlow(t *testing.T) {
	prov := &fakeProvider{}
	prov.identity.Subject = "1234567"
	prov.identity.Email = "bob@example.com"
	prov.identity.Name = "Bob"
	e := newEnv(t, func(o *Options) { o.Users = nil; o.Provider = prov })
	const redirect = "https://app.example.com/cb"
	id := e.publicClient(redirect)
	b := e.browser()
	p := newPKCE()
	login := b.get(e.authorizeURL(e.authzParams(id, redirect, p))).wantStatus(t, 200)
	if strings.Contains(login.body, `action="/authorize/login"`) || !strings.Contains(login.body, "Continue with Example ID") {
		t.Fatalf("sign-in page:\n%s", login.body)
	}
	start := b.post("/authorize/idp", login.fields())
	if start.StatusCode != http.StatusSeeOther {
		t.Fatalf("idp start: %d\n%s", start.StatusCode, start.body)
	}
	loc, _ := url.Parse(start.Header.Get("Location"))
	state := loc.Query().Get("state")
	if loc.Host != "id.example.test" || state == "" {
		t.Fatalf("redirect to %v", loc)
	}
	callback := e.iss + "/oauth/callback?" + url.Values{"code": {"upstream-code"}, "state": {state}}.Encode()

	// The callback in another browser finds no sign-in in progress there:
	// the flow lives in the starting browser's cookie.
	if got := e.browser().get(callback); got.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback in another browser: %d", got.StatusCode)
	}
	// A state the browser's cookie does not name is refused, and the
	// refusal ends the flow: start over.
	wrong := e.iss + "/oauth/callback?" + url.Values{"code": {"upstream-code"}, "state": {"not-" + state}}.Encode()
	if got := b.get(wrong); got.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback with another state: %d", got.StatusCode)
	}
	if got := b.get(callback); got.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback after the flow was ended: %d", got.StatusCode)
	}

	// Start over; this time all goes well.
	start = b.post("/authorize/idp", login.fields())
	loc, _ = url.Parse(start.Header.Get("Location"))
	callback = e.iss + "/oauth/callback?" + url.Values{"code": {"upstream-code"}, "state": {loc.Query().Get("state")}}.Encode()
	if n := len(e.store.keysWithPrefix("")); n > 2 {
		t.Errorf("starting an upstream sign-in wrote to the store: %v", e.store.keysWithPrefix(""))
	}
	consent := b.get(callback).wantStatus(t, 200)
	if !strings.Contains(consent.body, "bob@example.com") {
		t.Errorf("consent page does not say who signed in:\n%s", consent.body)
	}
	if again := b.get(callback); again.StatusCode != http.StatusBadRequest {
		t.Errorf("state reused: %d", again.StatusCode)
	}
	code := b.approve(consent, redirect).Get("code")
	tok := e.codeGrant(id, code, redirect, p.verifier).wantOK(t)
	claims := e.verifyAccessToken(tok.str("access_token"))
	if claims["sub"] != "1234567" || claims["email"] != "bob@example.com" || claims["name"] != "Bob" {
		t.Errorf("claims %v", claims)
	}
}

func TestUpstreamProviderDenied(t *testing.T) {
	prov := &fakeProvider{deny: true}
	prov.identity.Subject = "1"
	prov.identity.Email = "eve@example.org"
	e := newEnv(t, func(o *Options) { o.Provider = prov })
	id := e.publicClient("https://app.example.com/cb")
	b := e.browser()
	login := b.get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE())))
	if !strings.Contains(login.body, `action="/authorize/login"`) {
		t.Error("local users and a provider: the password form is missing")
	}
	start := b.post("/authorize/idp", login.fields())
	loc, _ := url.Parse(start.Header.Get("Location"))
	p := b.get(e.iss + "/oauth/callback?" + url.Values{"code": {"upstream-code"}, "state": {loc.Query().Get("state")}}.Encode())
	if p.StatusCode != http.StatusForbidden || !strings.Contains(p.body, "eve@example.org is not in the allowed emails") {
		t.Fatalf("denied: %d\n%s", p.StatusCode, p.body)
	}
	// Errors from the provider are shown, not followed.
	start = b.post("/authorize/idp", login.fields())
	loc, _ = url.Parse(start.Header.Get("Location"))
	p = b.get(e.iss + "/oauth/callback?" + url.Values{"error": {"access_denied"}, "state": {loc.Query().Get("state")}}.Encode())
	if p.StatusCode != http.StatusForbidden || p.Header.Get("Location") != "" {
		t.Errorf("provider error: %d", p.StatusCode)
	}
	if p := b.get(e.iss + "/oauth/callback?code=upstream-code"); p.StatusCode != http.StatusBadRequest {
		t.Errorf("no state: %d", p.StatusCode)
	}
}

func TestMetadataDocumentClient(t *testing.T) {
	const cid = "https://app.example.net/oauth/client.json"
	const redirect = "https://app.example.net/callback"
	md := &fakeMetadata{docs: map[string]*clientmeta.Document{
		cid:                                {ClientID: cid, ClientName: "Doc Client", RedirectURIs: []string{redirect}, GrantTypes: []string{"authorization_code", "refresh_token"}, TokenEndpointAuthMethod: "none"},
		"https://app.example.net/jwt.json": {ClientID: "https://app.example.net/jwt.json", RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "private_key_jwt"},
	}}
	e := newEnv(t, func(o *Options) { o.Metadata = md })
	b := e.browser()
	consent, _ := e.consentPage(b, cid, redirect)
	if !strings.Contains(consent.body, "described by a document at app.example.net") || !strings.Contains(consent.body, "Doc Client") {
		t.Errorf("consent page:\n%s", consent.body)
	}
	p := newPKCE()
	code := b.signInAndApprove(e.authzParams(cid, redirect, p)).Get("code")
	tok := e.codeGrant(cid, code, redirect, p.verifier).wantOK(t)
	if e.verifyAccessToken(tok.str("access_token"))["client_id"] != cid || tok.str("refresh_token") == "" {
		t.Errorf("token %v", tok.body)
	}
	for _, bad := range []url.Values{
		e.authzParams("https://app.example.net/missing.json", redirect, p),
		e.authzParams("https://app.example.net/jwt.json", redirect, p),
		e.authzParams(cid, "https://app.example.net/other", p),
	} {
		if got := b.get(e.authorizeURL(bad)); got.StatusCode != http.StatusBadRequest || got.Header.Get("Location") != "" {
			t.Errorf("%s: %d", bad.Get("client_id"), got.StatusCode)
		}
	}
}

// Successful sign-ins never fill the limits: behind a load balancer every
// user arrives from one address, and a busy morning must not lock anyone
// out. Ten sign-ins in a row, each in a fresh browser, all get through.
func TestSuccessfulSignInsAreNotRateLimited(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	for i := range 10 {
		b := e.browser()
		got := b.signInAndApprove(e.authzParams(id, "https://app.example.com/cb", newPKCE()))
		if got.Get("code") == "" {
			t.Fatalf("sign-in %d: no code in %v", i+1, got)
		}
	}
}

// A consent decision counts once: the same form posted again (a double
// click, a replay) issues no second code.
func TestConsentIsSingleUse(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	b := e.browser()
	login := b.get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE())))
	f := login.fields()
	f.Set("username", testUser)
	f.Set("password", testPassword)
	consent := b.post("/authorize/login", f).wantStatus(t, http.StatusOK)
	form := consent.fields()
	form.Set("decision", "approve")
	if first := b.post("/authorize/consent", form); first.StatusCode != http.StatusSeeOther {
		t.Fatalf("first approval: %d", first.StatusCode)
	}
	if again := b.post("/authorize/consent", form); again.StatusCode == http.StatusSeeOther {
		t.Fatalf("second approval of the same request redirected to %s", again.Header.Get("Location"))
	}
}

// Opening /authorize stores nothing: the pending request travels sealed in
// the page, so anonymous traffic cannot grow the store.
func TestAuthorizeStoresNothing(t *testing.T) {
	e := newEnv(t)
	id := e.publicClient("https://app.example.com/cb")
	before := len(e.store.keysWithPrefix(""))
	for range 20 {
		e.browser().get(e.authorizeURL(e.authzParams(id, "https://app.example.com/cb", newPKCE()))).wantStatus(t, http.StatusOK)
	}
	if after := len(e.store.keysWithPrefix("")); after != before {
		t.Fatalf("store grew from %d to %d entries on anonymous /authorize", before, after)
	}
}

// "Not you?" on the consent page signs the browser out and shows the
// sign-in page for the same request; it is a CSRF-checked POST like the
// others, so another site cannot sign a user out.
func TestSwitchUser(t *testing.T) {
	e := newEnv(t)
	const redirect = "https://app.example.com/cb"
	id := e.publicClient(redirect)
	b := e.browser()
	consent, _ := e.consentPage(b, id, redirect)
	f := consent.fields()
	if p := b.post("/authorize/switch", url.Values{"request_id": {f.Get("request_id")}}); p.StatusCode != http.StatusForbidden {
		t.Fatalf("switch without the CSRF token: %d, want 403", p.StatusCode)
	}
	login := b.post("/authorize/switch", f).wantStatus(t, http.StatusOK)
	if !strings.Contains(login.body, `action="/authorize/login"`) {
		t.Fatalf("switch did not show the sign-in page:\n%s", login.body)
	}
	// Signed out: a new authorization in this browser asks who it is.
	again := b.get(e.authorizeURL(e.authzParams(id, redirect, newPKCE()))).wantStatus(t, http.StatusOK)
	if !strings.Contains(again.body, `action="/authorize/login"`) {
		t.Fatal("the browser is still signed in after switching")
	}
	// The sign-in page of the switch serves the same request through.
	lf := login.fields()
	lf.Set("username", testUser)
	lf.Set("password", testPassword)
	next := b.post("/authorize/login", lf).wantStatus(t, http.StatusOK)
	if got := b.approve(next, redirect); got.Get("code") == "" {
		t.Fatalf("no code after signing in again: %v", got)
	}
}
