package idp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGitHub is a stand-in for github.com and api.github.com, because the
// real GitHub cannot be reached from an offline test. It implements the
// parts toolgate uses as GitHub documents them: the OAuth token endpoint
// (client credentials and code in the form, PKCE, OAuth errors in a 200
// body) and the /user, /user/emails and /user/orgs REST endpoints, which
// insist on the bearer token and the API headers.
type fakeGitHub struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	accessToken  string

	mu         sync.Mutex
	codes      map[string]string // code → PKCE challenge
	user       string            // JSON body of /user
	emails     string            // JSON body of /user/emails
	orgs       []string
	failPath   string // this API path answers 500
	orgsCalls  int
	tokenCalls int
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	fg := &fakeGitHub{
		clientID:     "gh-client",
		clientSecret: "gh-secret",
		accessToken:  "gho_" + strings.Repeat("x", 36),
		codes:        map[string]string{},
		user:         `{"id": 583231, "login": "octocat", "name": "The Octocat"}`,
		emails: `[{"email":"octo@users.noreply.github.com","primary":false,"verified":true},
		          {"email":"octocat@example.com","primary":true,"verified":true}]`,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", fg.token)
	mux.HandleFunc("GET /api/user", fg.api(func() string { return fg.user }))
	mux.HandleFunc("GET /api/user/emails", fg.api(func() string { return fg.emails }))
	mux.HandleFunc("GET /api/user/orgs", fg.orgPage)
	fg.srv = httptest.NewServer(mux)
	t.Cleanup(fg.srv.Close)
	return fg
}

func (fg *fakeGitHub) options(allow Allow) GitHubOptions {
	return GitHubOptions{
		ClientID:     fg.clientID,
		ClientSecret: fg.clientSecret,
		RedirectURL:  "https://mcp.example.com/oauth/callback",
		Allow:        allow,
		AuthURL:      fg.srv.URL + "/login/oauth/authorize",
		TokenURL:     fg.srv.URL + "/login/oauth/access_token",
		APIURL:       fg.srv.URL + "/api/",
		Client:       fg.srv.Client(),
	}
}

func (fg *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.tokenCalls++
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	challenge, ok := fg.codes[f.Get("code")]
	delete(fg.codes, f.Get("code"))
	// Like GitHub, answer OAuth errors with status 200 and an error body.
	switch {
	case f.Get("client_id") != fg.clientID || f.Get("client_secret") != fg.clientSecret:
		writeJSON(w, http.StatusOK, map[string]string{"error": "incorrect_client_credentials"})
	case !ok:
		writeJSON(w, http.StatusOK, map[string]string{
			"error":             "bad_verification_code",
			"error_description": "The code passed is incorrect or expired.",
		})
	case s256(f.Get("code_verifier")) != challenge:
		writeJSON(w, http.StatusOK, map[string]string{"error": "invalid_grant"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{
			"access_token": fg.accessToken, "token_type": "bearer", "scope": "read:user,user:email",
		})
	}
}

// authorized checks what GitHub's REST API requires of every call.
func (fg *fakeGitHub) authorized(w http.ResponseWriter, r *http.Request) bool {
	fg.mu.Lock()
	fail := fg.failPath == r.URL.Path
	fg.mu.Unlock()
	switch {
	case r.Header.Get("Authorization") != "Bearer "+fg.accessToken:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
	case r.Header.Get("Accept") != "application/vnd.github+json" ||
		r.Header.Get("X-GitHub-Api-Version") != "2022-11-28":
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "missing API headers"})
	case fail:
		http.Error(w, "server error", http.StatusInternalServerError)
	default:
		return true
	}
	return false
}

func (fg *fakeGitHub) api(body func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !fg.authorized(w, r) {
			return
		}
		fg.mu.Lock()
		b := body()
		fg.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, b)
	}
}

func (fg *fakeGitHub) orgPage(w http.ResponseWriter, r *http.Request) {
	if !fg.authorized(w, r) {
		return
	}
	perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if perPage != 100 || page < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "want per_page=100 and page>=1"})
		return
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.orgsCalls++
	var out []map[string]any
	for i := (page - 1) * perPage; i < len(fg.orgs) && i < page*perPage; i++ {
		out = append(out, map[string]any{"login": fg.orgs[i], "id": i + 1})
	}
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
}

// count reads one of fg's counters under its lock.
func (fg *fakeGitHub) count(n *int) int {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	return *n
}

// signIn plays the user approving at GitHub and returns Exchange's result.
func (fg *fakeGitHub) signIn(t *testing.T, g *GitHub) (*Identity, error) {
	t.Helper()
	f := NewFlow()
	authURL, err := g.AuthCodeURL(context.Background(), f)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	code := "ghcode-" + rand.Text()
	fg.mu.Lock()
	fg.codes[code] = u.Query().Get("code_challenge")
	fg.mu.Unlock()
	return g.Exchange(context.Background(), code, f)
}

func TestGitHubAuthCodeURL(t *testing.T) {
	fg := newFakeGitHub(t)
	for _, tc := range []struct {
		allow Allow
		scope string
	}{
		{Allow{}, "read:user user:email"},
		{Allow{Emails: []string{"a@b.c"}}, "read:user user:email"},
		{Allow{Orgs: []string{"acme"}}, "read:user user:email read:org"},
	} {
		g := NewGitHub(fg.options(tc.allow))
		f := NewFlow()
		authURL, err := g.AuthCodeURL(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(authURL)
		if got := u.Scheme + "://" + u.Host + u.Path; got != fg.srv.URL+"/login/oauth/authorize" {
			t.Errorf("auth endpoint = %s", got)
		}
		q := u.Query()
		want := map[string]string{
			"client_id":             fg.clientID,
			"redirect_uri":          "https://mcp.example.com/oauth/callback",
			"state":                 f.State,
			"code_challenge":        s256(f.Verifier),
			"code_challenge_method": "S256",
			"scope":                 tc.scope,
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("allow %+v: %s = %q, want %q", tc.allow, k, q.Get(k), v)
			}
		}
	}
}

func TestGitHubHappyPath(t *testing.T) {
	fg := newFakeGitHub(t)
	g := NewGitHub(fg.options(Allow{}))
	if err := g.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	id, err := fg.signIn(t, g)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if id.Subject != "583231" || id.Username != "octocat" || id.Name != "The Octocat" ||
		id.Email != "octocat@example.com" || id.Orgs != nil {
		t.Errorf("identity = %+v", *id)
	}
	if fg.count(&fg.orgsCalls) != 0 {
		t.Error("organisations were read without an organisation allowlist")
	}
}

func TestGitHubEmailMustBePrimaryAndVerified(t *testing.T) {
	for name, emails := range map[string]string{
		"primary unverified": `[{"email":"octocat@example.com","primary":true,"verified":false},
		                        {"email":"other@example.com","primary":false,"verified":true}]`,
		"no emails": `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			fg := newFakeGitHub(t)
			fg.emails = emails
			id, err := fg.signIn(t, NewGitHub(fg.options(Allow{})))
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != "" {
				t.Errorf("Email = %q, want none", id.Email)
			}
			// Without a verified email, an email or domain rule cannot match.
			_, err = fg.signIn(t, NewGitHub(fg.options(Allow{Domains: []string{"example.com"}})))
			if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "no verified email") {
				t.Errorf("err = %v, want ErrDenied mentioning the missing verified email", err)
			}
		})
	}
}

func TestGitHubOrgAllowlist(t *testing.T) {
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprintf("org-%03d", i)
	}
	tests := []struct {
		name    string
		orgs    []string
		allow   Allow
		allowed bool
	}{
		{"member, other case", []string{"other", "Acme"}, Allow{Orgs: []string{"acme"}}, true},
		{"member on the second page", many, Allow{Orgs: []string{"org-149"}}, true},
		{"not a member", []string{"other"}, Allow{Orgs: []string{"acme"}}, false},
		{"no orgs at all", nil, Allow{Orgs: []string{"acme"}}, false},
		{"email rule still applies", nil, Allow{Orgs: []string{"acme"}, Emails: []string{"octocat@example.com"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fg := newFakeGitHub(t)
			fg.orgs = tc.orgs
			id, err := fg.signIn(t, NewGitHub(fg.options(tc.allow)))
			if !tc.allowed {
				if !errors.Is(err, ErrDenied) {
					t.Fatalf("err = %v, want ErrDenied", err)
				}
				want := "octocat@example.com is not in the allowed organisations"
				if !strings.HasSuffix(err.Error(), want) {
					t.Errorf("message %q, want it to end %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("denied: %v", err)
			}
			if len(id.Orgs) != len(tc.orgs) {
				t.Errorf("Orgs has %d entries, want %d", len(id.Orgs), len(tc.orgs))
			}
		})
	}
}

func TestGitHubOrgPagesAreBounded(t *testing.T) {
	fg := newFakeGitHub(t)
	fg.orgs = make([]string, 1000)
	for i := range fg.orgs {
		fg.orgs[i] = fmt.Sprintf("org-%04d", i)
	}
	_, err := fg.signIn(t, NewGitHub(fg.options(Allow{Orgs: []string{"org-0999"}})))
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied (org beyond the pages read)", err)
	}
	if n := fg.count(&fg.orgsCalls); n != gitHubOrgPages {
		t.Errorf("read %d pages, want %d", n, gitHubOrgPages)
	}
}

func TestGitHubAPIFailures(t *testing.T) {
	for _, path := range []string{"/api/user", "/api/user/emails", "/api/user/orgs"} {
		t.Run(path, func(t *testing.T) {
			fg := newFakeGitHub(t)
			fg.failPath = path
			_, err := fg.signIn(t, NewGitHub(fg.options(Allow{Orgs: []string{"acme"}})))
			endpoint := strings.TrimPrefix(path, "/api")
			if err == nil || !strings.Contains(err.Error(), "GitHub API "+endpoint+" answered 500") {
				t.Fatalf("err = %v, want it to name %s and the status", err, endpoint)
			}
			if errors.Is(err, ErrDenied) || strings.Contains(err.Error(), fg.accessToken) {
				t.Errorf("bad error: %v", err)
			}
		})
	}
}

func TestGitHubMalformedAnswers(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(fg *fakeGitHub)
		wantErr string
	}{
		{"user without id", func(fg *fakeGitHub) { fg.user = `{"login":"octocat"}` }, "no user id or login"},
		{"user not JSON", func(fg *fakeGitHub) { fg.user = `<html>` }, "reading the GitHub API /user answer"},
		{"emails not array", func(fg *fakeGitHub) { fg.emails = `{"email":"x"}` }, "/user/emails answer"},
		{"user too large", func(fg *fakeGitHub) {
			fg.user = `{"id":1,"login":"octocat","name":"` + strings.Repeat("a", maxResponseBytes) + `"}`
		}, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fg := newFakeGitHub(t)
			tc.edit(fg)
			id, err := fg.signIn(t, NewGitHub(fg.options(Allow{})))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v (id %+v), want it to mention %q", err, id, tc.wantErr)
			}
		})
	}
}

func TestGitHubTokenEndpointErrors(t *testing.T) {
	fg := newFakeGitHub(t)
	o := fg.options(Allow{})
	o.ClientSecret = "wrong-secret"
	_, err := fg.signIn(t, NewGitHub(o))
	if err == nil || !strings.Contains(err.Error(), "incorrect_client_credentials") ||
		!strings.Contains(err.Error(), "exchanging the code at 127.0.0.1") {
		t.Fatalf("err = %v, want the OAuth error with context", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error leaks the client secret: %v", err)
	}

	// An unknown code: GitHub's error comes in a 200 body.
	g := NewGitHub(fg.options(Allow{}))
	_, err = g.Exchange(context.Background(), "never-issued", NewFlow())
	if err == nil || !strings.Contains(err.Error(), "bad_verification_code") {
		t.Fatalf("err = %v, want bad_verification_code", err)
	}

	// The right code with the wrong PKCE verifier.
	f := NewFlow()
	authURL, _ := g.AuthCodeURL(context.Background(), f)
	u, _ := url.Parse(authURL)
	fg.mu.Lock()
	fg.codes["pkce-code"] = u.Query().Get("code_challenge")
	fg.mu.Unlock()
	f.Verifier = NewFlow().Verifier
	if _, err := g.Exchange(context.Background(), "pkce-code", f); err == nil {
		t.Fatal("exchange with the wrong verifier succeeded")
	}
}

func TestGitHubConfigErrors(t *testing.T) {
	g := NewGitHub(GitHubOptions{RedirectURL: "http://mcp.example.com/cb", APIURL: "ftp://x"})
	err := g.Ready()
	for _, want := range []string{"client ID is empty", "client secret is empty", "redirect URL", "API URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Ready = %v, want it to mention %q", err, want)
		}
	}
	if _, err := g.AuthCodeURL(context.Background(), NewFlow()); err == nil {
		t.Error("AuthCodeURL worked with a bad configuration")
	}
	if _, err := g.Exchange(context.Background(), "c", NewFlow()); err == nil {
		t.Error("Exchange worked with a bad configuration")
	}
	ok := NewGitHub(GitHubOptions{ClientID: "id", ClientSecret: "s", RedirectURL: "https://mcp.example.com/cb"})
	if err := ok.Ready(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
	if ok.oauth.Endpoint.TokenURL != gitHubTokenURL || ok.api != gitHubAPIURL || ok.Name() != "GitHub" {
		t.Errorf("defaults not applied: %+v %s", ok.oauth.Endpoint, ok.api)
	}
}

func TestGitHubDisplayName(t *testing.T) {
	if got := NewGitHub(GitHubOptions{}).Name(); got != "GitHub" {
		t.Errorf("default name %q", got)
	}
	if got := NewGitHub(GitHubOptions{DisplayName: "Acme GitHub Enterprise"}).Name(); got != "Acme GitHub Enterprise" {
		t.Errorf("IDP_NAME not used: %q", got)
	}
}
