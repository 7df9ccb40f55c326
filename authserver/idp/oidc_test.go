package idp

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// signIn runs one whole sign-in against fp: AuthCodeURL, the provider
// approving with an ID token built from claims (edited by edit), and
// Exchange.
func signIn(t *testing.T, fp *fakeOIDC, p *OIDC, edit func(map[string]any)) (*Identity, error) {
	t.Helper()
	f := NewFlow()
	authURL, err := p.AuthCodeURL(context.Background(), f)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	claims := fp.claims(f.Nonce)
	if edit != nil {
		edit(claims)
	}
	code := fp.approve(t, authURL, signToken(t, signingKey(), claims))
	return p.Exchange(context.Background(), code, f)
}

func TestOIDCHappyPath(t *testing.T) {
	fp := newFakeOIDC(t)
	p := NewOIDC(fp.options())
	f := NewFlow()

	authURL, err := p.AuthCodeURL(context.Background(), f)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready after lazy discovery: %v", err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, fp.issuer+"/authorize"; got != want {
		t.Errorf("auth endpoint = %s, want %s", got, want)
	}
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             fp.clientID,
		"redirect_uri":          fp.redirectURL,
		"state":                 f.State,
		"nonce":                 f.Nonce,
		"code_challenge":        s256(f.Verifier),
		"code_challenge_method": "S256",
		"scope":                 "openid email profile",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("auth URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") {
		t.Error("auth URL leaks the PKCE verifier")
	}

	code := fp.approve(t, authURL, signToken(t, signingKey(), fp.claims(f.Nonce)))
	id, err := p.Exchange(context.Background(), code, f)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	wantID := Identity{Subject: "user-123", Email: "alice@example.com", Name: "Alice Example", Username: "alice"}
	if id.Subject != wantID.Subject || id.Email != wantID.Email || id.Name != wantID.Name ||
		id.Username != wantID.Username || id.Domain != "" || id.Orgs != nil {
		t.Errorf("identity = %+v, want %+v", *id, wantID)
	}
	fp.mu.Lock()
	style := fp.lastClientStyle
	fp.mu.Unlock()
	if style != "basic" {
		t.Errorf("client authenticated with %q, want client_secret_basic", style)
	}

	// The code is single use at the provider; a replay must fail.
	if _, err := p.Exchange(context.Background(), code, f); err == nil {
		t.Error("replayed code was accepted")
	}
}

func TestOIDCPKCEVerifierMustMatch(t *testing.T) {
	fp := newFakeOIDC(t)
	p := NewOIDC(fp.options())
	f := NewFlow()
	authURL, err := p.AuthCodeURL(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	code := fp.approve(t, authURL, signToken(t, signingKey(), fp.claims(f.Nonce)))
	other := f
	other.Verifier = NewFlow().Verifier
	_, err = p.Exchange(context.Background(), code, other)
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("Exchange with wrong verifier: err = %v, want invalid_grant", err)
	}
	if !strings.Contains(err.Error(), "exchanging the code at 127.0.0.1") {
		t.Errorf("error lacks context: %v", err)
	}
}

func TestOIDCRejectsBadIDTokens(t *testing.T) {
	fp := newFakeOIDC(t)
	p := NewOIDC(fp.options())
	tests := []struct {
		name    string
		edit    func(map[string]any)
		stray   bool // sign with a key the provider never published
		wantErr string
	}{
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "someone-elses-nonce" }, false, "nonce"},
		{"missing nonce", func(c map[string]any) { delete(c, "nonce") }, false, "nonce"},
		{"wrong audience", func(c map[string]any) { c["aud"] = "another-client" }, false, "audience"},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, false, "different provider"},
		{"expired", func(c map[string]any) {
			c["iat"] = time.Now().Add(-time.Hour).Unix()
			c["exp"] = time.Now().Add(-30 * time.Minute).Unix()
		}, false, "expired"},
		{"empty subject", func(c map[string]any) { c["sub"] = "" }, false, "subject"},
		{"bad signature", nil, true, "verifying the ID token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFlow()
			authURL, err := p.AuthCodeURL(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			claims := fp.claims(f.Nonce)
			if tc.edit != nil {
				tc.edit(claims)
			}
			key := signingKey()
			if tc.stray {
				key = strayKey()
			}
			code := fp.approve(t, authURL, signToken(t, key, claims))
			id, err := p.Exchange(context.Background(), code, f)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrDenied) {
				t.Errorf("a bad token is not an allowlist denial: %v", err)
			}
		})
	}
}

func TestOIDCEmailNeedsVerification(t *testing.T) {
	fp := newFakeOIDC(t)
	p := NewOIDC(fp.options())
	tests := []struct {
		verified  any // nil means the claim is absent
		wantEmail string
	}{
		{true, "alice@example.com"},
		{"true", "alice@example.com"},
		{false, ""},
		{"false", ""},
		{"yes", ""},
		{nil, ""},
	}
	for _, tc := range tests {
		id, err := signIn(t, fp, p, func(c map[string]any) {
			if tc.verified == nil {
				delete(c, "email_verified")
			} else {
				c["email_verified"] = tc.verified
			}
		})
		if err != nil {
			t.Fatalf("email_verified=%v: %v", tc.verified, err)
		}
		if id.Email != tc.wantEmail {
			t.Errorf("email_verified=%#v: Email = %q, want %q", tc.verified, id.Email, tc.wantEmail)
		}
	}
}

func TestOIDCAllowlists(t *testing.T) {
	fp := newFakeOIDC(t)
	tests := []struct {
		name    string
		allow   Allow
		edit    func(map[string]any)
		allowed bool
	}{
		{"none configured", Allow{}, nil, true},
		{"email listed, other case", Allow{Emails: []string{"ALICE@Example.com"}}, nil, true},
		{"email not listed", Allow{Emails: []string{"bob@example.com"}}, nil, false},
		{"domain listed", Allow{Domains: []string{"example.com"}}, nil, true},
		{"domain with leading @", Allow{Domains: []string{"@EXAMPLE.com"}}, nil, true},
		{"domain not listed", Allow{Domains: []string{"other.com"}}, nil, false},
		{"subdomain is not the domain", Allow{Domains: []string{"example.com"}},
			func(c map[string]any) { c["email"] = "alice@evil.example.com" }, false},
		{"unverified email matches nothing", Allow{Emails: []string{"alice@example.com"}, Domains: []string{"example.com"}},
			func(c map[string]any) { c["email_verified"] = false }, false},
		{"hd from an issuer other than Google is ignored", Allow{Domains: []string{"corp.example"}},
			func(c map[string]any) { c["hd"] = "corp.example"; c["email_verified"] = false }, false},
		{"either list may match", Allow{Emails: []string{"bob@example.com"}, Domains: []string{"example.com"}}, nil, true},
		{"orgs only, OIDC has none", Allow{Orgs: []string{"acme"}}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := fp.options()
			o.Allow = tc.allow
			id, err := signIn(t, fp, NewOIDC(o), tc.edit)
			if tc.allowed {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v (id %+v), want ErrDenied", err, id)
			}
			if id != nil {
				t.Errorf("denied sign-in still returned an identity: %+v", id)
			}
		})
	}
}

func TestOIDCDenialMessage(t *testing.T) {
	fp := newFakeOIDC(t)
	o := fp.options()
	o.Allow = Allow{Emails: []string{"bob@example.com"}, Domains: []string{"other.com"}}
	_, err := signIn(t, fp, NewOIDC(o), nil)
	want := "idp: this account is not allowed to sign in here: alice@example.com is not in the allowed emails or domains"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// hd is Google's claim; another issuer's hd is dropped, not trusted.
func TestOIDCHostedDomainOnlyFromGoogle(t *testing.T) {
	fp := newFakeOIDC(t)
	id, err := signIn(t, fp, NewOIDC(fp.options()), func(c map[string]any) { c["hd"] = "example.com" })
	if err != nil {
		t.Fatal(err)
	}
	if id.Domain != "" {
		t.Errorf("Domain = %q from a non-Google issuer, want it dropped", id.Domain)
	}
}

// For Google accounts, a domain rule is about who owns the account: only
// Workspace's hd says that. A consumer account with a verified address at
// the domain (a former employee's) does not match it.
func TestAllowDomainsForGoogleAccounts(t *testing.T) {
	allow := Allow{Domains: []string{"corp.example"}}
	for _, tc := range []struct {
		name string
		id   Identity
		ok   bool
	}{
		{"workspace account of the domain", Identity{Email: "a@corp.example", Domain: "corp.example"}, true},
		{"workspace account of another domain", Identity{Email: "a@corp.example", Domain: "other.example"}, false},
		{"consumer account with an address at the domain", Identity{Email: "a@corp.example", googleConsumer: true}, false},
		{"other provider's verified address", Identity{Email: "a@corp.example"}, true},
	} {
		err := allow.check(&tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("%s: check = %v, want allowed %v", tc.name, err, tc.ok)
		}
	}
}

func TestOIDCDiscoveryFailure(t *testing.T) {
	fp := newFakeOIDC(t)
	fp.discoveryFails = 1000
	p := NewOIDC(fp.options())
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "not completed") {
		t.Fatalf("Ready before any attempt = %v, want not completed", err)
	}
	if _, err := p.AuthCodeURL(context.Background(), NewFlow()); err == nil {
		t.Fatal("AuthCodeURL worked without discovery")
	}
	err := p.Ready()
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "discovering") {
		t.Fatalf("Ready = %v, want the discovery failure", err)
	}
	if _, err := p.Exchange(context.Background(), "code", NewFlow()); err == nil {
		t.Fatal("Exchange worked without discovery")
	}
}

func TestOIDCIssuerMismatch(t *testing.T) {
	fp := newFakeOIDC(t)
	fp.docIssuer = "https://impostor.example"
	p := NewOIDC(fp.options())
	if _, err := p.AuthCodeURL(context.Background(), NewFlow()); err == nil {
		t.Fatal("AuthCodeURL worked with a mismatched issuer")
	}
	var mismatch *oidc.IssuerMismatchError
	if err := p.Ready(); !errors.As(err, &mismatch) {
		t.Fatalf("Ready = %v, want an issuer mismatch", err)
	}
}

func TestOIDCStartRetriesUntilDiscovered(t *testing.T) {
	fp := newFakeOIDC(t)
	fp.discoveryFails = 2
	p := NewOIDC(fp.options())
	p.minBackoff, p.maxBackoff = time.Millisecond, 4*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Start(ctx)
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready after Start = %v", err)
	}
	if fp.count(&fp.discoveryHits) != 3 {
		t.Errorf("discovery requests = %d, want 3 (two failures, one success)", fp.count(&fp.discoveryHits))
	}
}

func TestOIDCStartStopsWithContext(t *testing.T) {
	fp := newFakeOIDC(t)
	fp.discoveryFails = 1 << 30
	p := NewOIDC(fp.options()) // real 1s backoff: Start must still return promptly
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { p.Start(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	if p.Ready() == nil {
		t.Error("Ready = nil though discovery never succeeded")
	}
}

func TestOIDCConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*OIDCOptions)
		want []string
	}{
		{"plain http issuer", func(o *OIDCOptions) { o.Issuer = "http://idp.example.com" }, []string{"OIDC issuer", "https"}},
		{"relative issuer", func(o *OIDCOptions) { o.Issuer = "idp.example.com" }, []string{"not an absolute URL"}},
		{"everything missing", func(o *OIDCOptions) { *o = OIDCOptions{} },
			[]string{"OIDC issuer is empty", "client ID is empty", "redirect URL is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeOIDC(t)
			o := fp.options()
			tc.edit(&o)
			p := NewOIDC(o)
			err := p.Ready()
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Ready = %v, want it to mention %q", err, w)
				}
			}
			if _, err := p.AuthCodeURL(context.Background(), NewFlow()); err == nil {
				t.Error("AuthCodeURL worked with a bad configuration")
			}
			if fp.count(&fp.discoveryHits) != 0 {
				t.Error("a bad configuration still contacted the network")
			}
		})
	}
}

func TestOIDCWrongClientSecret(t *testing.T) {
	fp := newFakeOIDC(t)
	o := fp.options()
	o.ClientSecret = "not-the-secret"
	_, err := signIn(t, fp, NewOIDC(o), nil)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("err = %v, want invalid_client", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error leaks the client secret: %v", err)
	}
}

func TestOIDCRefusesIncompleteFlow(t *testing.T) {
	fp := newFakeOIDC(t)
	p := NewOIDC(fp.options())
	for _, f := range []Flow{
		{Nonce: "n", Verifier: "v"},
		{State: "s", Verifier: "v"},
		{State: "s", Nonce: "n"},
	} {
		if _, err := p.AuthCodeURL(context.Background(), f); err == nil {
			t.Errorf("AuthCodeURL accepted flow %+v", f)
		}
		if _, err := p.Exchange(context.Background(), "code", f); err == nil {
			t.Errorf("Exchange accepted flow %+v", f)
		}
	}
	if fp.count(&fp.tokenRequests) != 0 {
		t.Error("an incomplete flow reached the token endpoint")
	}
}

func TestOIDCScopesAndName(t *testing.T) {
	fp := newFakeOIDC(t)
	o := fp.options()
	o.Scopes = []string{"email", "groups"}
	p := NewOIDC(o)
	authURL, err := p.AuthCodeURL(context.Background(), NewFlow())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	if got := strings.Fields(u.Query().Get("scope")); !slices.Equal(got, []string{"openid", "email", "groups"}) {
		t.Errorf("scope = %q, want openid added to the configured scopes", got)
	}
	names := map[string]string{
		"https://accounts.google.com":        "Google",
		"https://login.example.org/realms/x": "login.example.org",
	}
	for issuer, want := range names {
		if got := NewOIDC(OIDCOptions{Issuer: issuer}).Name(); got != want {
			t.Errorf("Name for %s = %q, want %q", issuer, got, want)
		}
	}
	if got := NewOIDC(OIDCOptions{Issuer: googleIssuer, DisplayName: "Corp SSO"}).Name(); got != "Corp SSO" {
		t.Errorf("DisplayName ignored: %q", got)
	}
}

func TestNewFlowIsRandom(t *testing.T) {
	a, b := NewFlow(), NewFlow()
	if a.State == "" || a.Nonce == "" || len(a.Verifier) < 43 {
		t.Fatalf("incomplete flow %+v", a)
	}
	if a.State == b.State || a.Nonce == b.Nonce || a.Verifier == b.Verifier || a.State == a.Nonce {
		t.Fatal("flows repeat values")
	}
}
