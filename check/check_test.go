package check

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/internal/testissuer"
)

const resource = "https://mcp.example.com/mcp"

// fakeAS is an authorization server for one test: testissuer's real keys
// behind metadata the test shapes, both served over httptest.
type fakeAS struct {
	iss *testissuer.Issuer
	srv *httptest.Server
	url string         // the issuer identifier the metadata names
	md  map[string]any // served as both RFC 8414 and OIDC metadata
}

// newAS serves metadata naming issuer srv.URL+suffix, with the given edits;
// its jwks_uri serves the keys of keys, a new testissuer when nil.
func newAS(t *testing.T, keys *testissuer.Issuer, suffix string, edit func(md map[string]any)) *fakeAS {
	t.Helper()
	if keys == nil {
		keys = testissuer.New(t, "")
	}
	a := &fakeAS{iss: keys}
	mux := http.NewServeMux()
	serveMD := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.md)
	}
	mux.HandleFunc("/.well-known/oauth-authorization-server", serveMD)
	mux.HandleFunc("/.well-known/openid-configuration", serveMD)
	mux.HandleFunc("/oauth2/v3/certs", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/.well-known/jwks.json", http.StatusFound)
	})
	mux.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.iss.Server.Client().Get(a.iss.Server.URL + "/jwks")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, resp.Body)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.url = a.srv.URL + suffix
	a.md = map[string]any{
		"issuer":                           a.url,
		"authorization_endpoint":           a.srv.URL + "/authorize",
		"token_endpoint":                   a.srv.URL + "/token",
		"registration_endpoint":            a.srv.URL + "/register",
		"jwks_uri":                         a.srv.URL + "/.well-known/jwks.json",
		"response_types_supported":         []string{"code"},
		"code_challenge_methods_supported": []string{"S256"},
		"scopes_supported":                 []string{"openid", "mcp:read", "mcp:write"},
	}
	if edit != nil {
		edit(a.md)
	}
	return a
}

// claims are valid claims for resource from this server.
func (a *fakeAS) claims() testissuer.Claims {
	c := a.iss.Claims(resource)
	c["iss"] = a.url
	return c
}

func load(t *testing.T, issuer string, env ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(append([]string{
		"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
		"RESOURCE_SERVER_URL=" + resource,
		"AUTHORIZATION_SERVER_URL=" + issuer,
	}, env...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func run(t *testing.T, cfg *config.Config, client *http.Client, token string) *Report {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	return Run(context.Background(), Options{Config: cfg, Client: client, Token: token})
}

func find(r *Report, name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

func TestSetupChecks(t *testing.T) {
	keys := testissuer.New(t, "") // RSA keys take a while to make: share them
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hmacOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"keys":[{"kty":"oct","kid":"hs","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}`)
	}))
	defer hmacOnly.Close()

	type want struct {
		status      Status
		detail, fix []string // substrings
		absent      bool
	}
	tests := []struct {
		name   string
		suffix string // of the metadata's issuer
		edit   func(md map[string]any)
		env    []string
		checks map[string]want
		exit   int
	}{
		{name: "good setup", exit: 0, checks: map[string]want{
			"config": {status: OK}, "resource": {status: OK}, "audience": {status: OK},
			"prm":          {status: OK, detail: []string{"https://mcp.example.com/.well-known/oauth-protected-resource/mcp"}},
			"metadata":     {status: OK, detail: []string{"/.well-known/oauth-authorization-server", "RFC 8414"}},
			"issuer":       {status: OK, detail: []string{"identical"}},
			"endpoints":    {status: OK},
			"pkce":         {status: OK},
			"registration": {status: OK, detail: []string{"/register"}},
			"https":        {status: OK, detail: []string{"loopback"}},
			"jwks":         {status: OK, detail: []string{"2 usable signature keys", "rsa-1 RS256", "ec-1 ES256"}},
			"scopes":       {status: OK},
			"auth0":        {absent: true}, "google": {absent: true},
		}},
		{name: "issuer with a trailing slash the config lacks", suffix: "/", exit: 1, checks: map[string]want{
			"metadata": {status: OK},
			"issuer": {status: Fail, detail: []string{`metadata says issuer "http://127.0.0.1:`, `/"; AUTHORIZATION_SERVER_URL (and the PRM entry) is "http://127.0.0.1:`},
				fix: []string{"differ only in the trailing slash", "AUTHORIZATION_SERVER_URL=http://127.0.0.1:"}},
			// The rest of the document is still checked.
			"pkce": {status: OK}, "jwks": {status: OK},
		}},
		{name: "PKCE without S256", exit: 1, edit: func(md map[string]any) { md["code_challenge_methods_supported"] = []string{"plain"} },
			checks: map[string]want{"pkce": {status: Fail, detail: []string{"[plain], without S256"}, fix: []string{`["S256"]`}}}},
		{name: "no PKCE advertised", exit: 1, edit: func(md map[string]any) { delete(md, "code_challenge_methods_supported") },
			checks: map[string]want{"pkce": {status: Fail, detail: []string{"no code_challenge_methods_supported"}}}},
		{name: "no registration path", exit: 0, edit: func(md map[string]any) { delete(md, "registration_endpoint") },
			checks: map[string]want{"registration": {status: Warn, detail: []string{"registered in advance"}, fix: []string{"RFC 7591", "client ID metadata documents"}}}},
		{name: "client ID metadata documents only", edit: func(md map[string]any) {
			delete(md, "registration_endpoint")
			md["client_id_metadata_document_supported"] = true
		}, checks: map[string]want{"registration": {status: OK, detail: []string{"client ID metadata documents supported"}}}},
		{name: "no token endpoint", exit: 1, edit: func(md map[string]any) { delete(md, "token_endpoint") },
			checks: map[string]want{"endpoints": {status: Fail, detail: []string{"lacks token_endpoint"}}}},
		{name: "plain http off loopback", exit: 1, edit: func(md map[string]any) { md["token_endpoint"] = "http://as.example.com/token" },
			checks: map[string]want{"https": {status: Fail, detail: []string{"token_endpoint http://as.example.com/token"}}}},
		{name: "unreachable JWKS", exit: 1, edit: func(md map[string]any) { md["jwks_uri"] = closed.URL + "/jwks" },
			checks: map[string]want{"jwks": {status: Fail, detail: []string{"GET " + closed.URL + "/jwks", "refused"}, fix: []string{"reachable"}}}},
		{name: "JWKS without usable keys", exit: 1, edit: func(md map[string]any) { md["jwks_uri"] = hmacOnly.URL },
			checks: map[string]want{"jwks": {status: Fail, detail: []string{"no usable signature key", "hs (symmetric (HMAC) key"}}}},
		{name: "no jwks_uri", exit: 1, edit: func(md map[string]any) { delete(md, "jwks_uri") },
			checks: map[string]want{"jwks": {status: Fail, fix: []string{"JWKS_URL"}}}},
		{name: "metadata not found", exit: 1, edit: func(md map[string]any) { md["issuer"] = "" },
			checks: map[string]want{
				"metadata": {status: Fail, detail: []string{"no authorization server metadata"}, fix: []string{"/.well-known/oauth-authorization-server or "}},
				"issuer":   {absent: true}, "pkce": {absent: true},
				"jwks": {status: Fail, detail: []string{"JWKS_URL is not set"}},
			}},
		{name: "scopes the authorization server does not list", exit: 0, env: []string{"REQUIRED_SCOPES=mcp:admin", "SCOPES_SUPPORTED=mcp:admin mcp:read offline_access"},
			checks: map[string]want{"scopes": {status: Warn,
				detail: []string{"offline_access", "REQUIRED_SCOPES mcp:admin not in the authorization server's scopes_supported"},
				fix:    []string{"remove offline_access", "define mcp:admin"}}}},
		{name: "TOKEN_AUDIENCE without the resource", exit: 0, env: []string{"TOKEN_AUDIENCE=https://api.example.com"},
			checks: map[string]want{"audience": {status: Warn, detail: []string{"leaves out RESOURCE_SERVER_URL"}, fix: []string{"add " + resource}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAS(t, keys, tc.suffix, tc.edit)
			rep := run(t, load(t, a.srv.URL, tc.env...), nil, "")
			for name, w := range tc.checks {
				c := find(rep, name)
				if w.absent {
					if c != nil {
						t.Errorf("%s: want no such check, got %+v", name, *c)
					}
					continue
				}
				if c == nil {
					t.Errorf("%s: missing; report %+v", name, rep.Checks)
					continue
				}
				if c.Status != w.status {
					t.Errorf("%s: status %s, want %s (%s)", name, c.Status, w.status, c.Detail)
				}
				for _, s := range w.detail {
					if !strings.Contains(c.Detail, s) {
						t.Errorf("%s: detail %q lacks %q", name, c.Detail, s)
					}
				}
				for _, s := range w.fix {
					if !strings.Contains(c.Fix, s) {
						t.Errorf("%s: fix %q lacks %q", name, c.Fix, s)
					}
				}
				if (c.Status == OK) != (c.Fix == "") {
					t.Errorf("%s: status %s with fix %q; a fix belongs to every check that is not ok, and only to those", name, c.Status, c.Fix)
				}
			}
			if got := rep.ExitCode(); got != tc.exit {
				t.Errorf("exit code %d, want %d; report %+v", got, tc.exit, rep.Checks)
			}
			if rep.Token != nil {
				t.Errorf("token report without a token: %+v", rep.Token)
			}
		})
	}
}

func TestConfigReport(t *testing.T) {
	_, err := config.Load([]string{"RESOURCE_SERVER_URL=http://mcp.example.com/mcp"})
	ce, ok := err.(*config.Error)
	if !ok {
		t.Fatalf("want *config.Error, got %v", err)
	}
	rep := ConfigReport(ce.Problems)
	if rep.ExitCode() != 2 || len(rep.Checks) != len(ce.Problems) || len(rep.Checks) < 3 {
		t.Fatalf("exit %d, checks %+v", rep.ExitCode(), rep.Checks)
	}
	for _, c := range rep.Checks {
		if c.Name != "config" || c.Status != Fail {
			t.Errorf("check %+v", c)
		}
	}
}

// rewrite sends every request to target, so a test can use a real-looking
// issuer such as https://tenant.auth0.com/ while staying on loopback.
type rewrite struct{ target *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rw.target.Scheme, rw.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestProviderHints(t *testing.T) {
	t.Run("auth0", func(t *testing.T) {
		const tenant = "https://tenant.us.auth0.com/"
		a := newAS(t, nil, "", func(md map[string]any) {
			md["issuer"] = tenant
			md["authorization_endpoint"] = tenant + "authorize"
			md["token_endpoint"] = tenant + "oauth/token"
			md["registration_endpoint"] = tenant + "oidc/register"
			md["jwks_uri"] = tenant + ".well-known/jwks.json"
			md["scopes_supported"] = []string{"openid", "profile", "email"}
		})
		client := &http.Client{Transport: rewrite{target: mustURL(t, a.srv.URL)}}

		rep := run(t, load(t, tenant, "REQUIRED_SCOPES=mcp:read"), client, "opaqueAuth0Token_abcdef")
		if c := find(rep, "auth0"); c == nil || c.Status != OK || !strings.Contains(c.Detail, "API Identifier "+resource) || !strings.Contains(c.Detail, "Resource Parameter Compatibility Profile") {
			t.Errorf("auth0 check %+v", c)
		}
		if c := find(rep, "scopes"); c == nil || c.Status != OK || !strings.Contains(c.Detail, "define mcp:read as permissions") {
			t.Errorf("scopes check %+v", c)
		}
		f := rep.Token.Failures[0]
		if f.Check != "format" || !strings.Contains(f.Fix, "no audience") || !strings.Contains(f.Fix, "Default Audience") {
			t.Errorf("opaque Auth0 token: %+v", f)
		}

		c := a.claims()
		c["iss"] = tenant
		c["aud"] = []string{"https://tenant.us.auth0.com/userinfo"}
		rep = run(t, load(t, tenant), client, a.iss.Sign(t, c, nil, "JWT", nil))
		if f := rep.Token.Failures; len(f) != 1 || f[0].Check != "audience" || !strings.Contains(f[0].Fix, "userinfo") {
			t.Errorf("userinfo-only token: %+v", f)
		}

		rep = run(t, load(t, strings.TrimSuffix(tenant, "/")), client, "")
		if c := find(rep, "auth0"); c == nil || c.Status != Fail || c.Fix != "set AUTHORIZATION_SERVER_URL="+tenant {
			t.Errorf("auth0 check without the slash %+v", c)
		}
		if c := find(rep, "issuer"); c == nil || c.Status != Fail {
			t.Errorf("issuer check %+v", c)
		}
	})
	t.Run("google", func(t *testing.T) {
		const google = "https://accounts.google.com"
		a := newAS(t, nil, "", func(md map[string]any) {
			md["issuer"] = google
			md["jwks_uri"] = "https://www.googleapis.com/oauth2/v3/certs"
			delete(md, "registration_endpoint")
		})
		client := &http.Client{Transport: rewrite{target: mustURL(t, a.srv.URL)}}
		cfg := load(t, google, "GOOGLE_CLIENT_IDS=123.apps.googleusercontent.com")
		rep := run(t, cfg, client, "")
		if c := find(rep, "google"); c == nil || c.Status != Warn || !strings.Contains(c.Detail, "never this resource") || !strings.Contains(c.Fix, "embedded authorization server") {
			t.Errorf("google check %+v", c)
		}
		if c := find(rep, "registration"); c == nil || c.Status != Warn {
			t.Errorf("registration check %+v", c)
		}
		if c := find(rep, "jwks"); c == nil || c.Status != OK || !strings.HasPrefix(c.Detail, "https://www.googleapis.com/oauth2/v3/certs: 2 usable") {
			t.Errorf("jwks check %+v", c)
		}
		if rep.ExitCode() != 0 {
			t.Errorf("exit %d: %+v", rep.ExitCode(), rep.Checks)
		}
		o := Options{Config: cfg}
		if !strings.Contains(o.opaqueFix(), "google check") || !strings.Contains(o.audienceFix([]string{"123.apps.googleusercontent.com"}), "Google OAuth client") {
			t.Errorf("google fixes %q / %q", o.opaqueFix(), o.audienceFix(nil))
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The JSON names are a contract; this pins them.
func TestReportJSONShape(t *testing.T) {
	a := newAS(t, nil, "", nil)
	c := a.claims()
	c["aud"] = "https://other.example.com"
	rep := run(t, load(t, a.url), nil, a.iss.Token(t, c))
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		return slices.Sorted(maps.Keys(m.(map[string]any)))
	}
	if k := keys(got); strings.Join(k, ",") != "checks,token" {
		t.Errorf("report keys %v", k)
	}
	if k := keys(got["checks"].([]any)[0]); strings.Join(k, ",") != "detail,fix,name,status" {
		t.Errorf("check keys %v", k)
	}
	tok := got["token"].(map[string]any)
	if k := keys(tok); strings.Join(k, ",") != "accepted,claims,failures,header,reason" {
		t.Errorf("token keys %v", k)
	}
	f := tok["failures"].([]any)[0].(map[string]any)
	if k := keys(f); strings.Join(k, ",") != "actual,check,expected,fix" {
		t.Errorf("failure keys %v", k)
	}
	if f["check"] != "audience" || f["expected"] != resource || f["actual"] != "https://other.example.com" {
		t.Errorf("failure %v", f)
	}
	if tok["accepted"] != false {
		t.Errorf("accepted %v", tok["accepted"])
	}
	// An accepted token has an empty list, never null.
	rep = run(t, load(t, a.url), nil, a.iss.Token(t, a.claims()))
	b, _ = json.Marshal(rep.Token)
	if !strings.Contains(string(b), `"accepted":true`) || !strings.Contains(string(b), `"failures":[]`) {
		t.Errorf("accepted token JSON %s", b)
	}
}
