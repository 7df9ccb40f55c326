package authserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/toolgate/toolgate/authserver/clientmeta"
	"github.com/toolgate/toolgate/authserver/idp"
	"github.com/toolgate/toolgate/authserver/store"
)

// memStore is a small in-memory store.Store for the tests.
type memStore struct {
	mu      sync.Mutex
	entries map[string]memEntry
	pingErr error
}

type memEntry struct {
	value   []byte
	expires time.Time
}

func newMemStore() *memStore { return &memStore{entries: map[string]memEntry{}} }

func (m *memStore) live(key string) (memEntry, bool) {
	e, ok := m.entries[key]
	if ok && !e.expires.IsZero() && !time.Now().Before(e.expires) {
		delete(m.entries, key)
		return memEntry{}, false
	}
	return e, ok
}

func (m *memStore) Create(_ context.Context, key string, value []byte, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live(key); ok {
		return store.ErrExists
	}
	m.entries[key] = memEntry{bytes.Clone(value), expires}
	return nil
}

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(e.value), nil
}

func (m *memStore) Take(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(m.entries, key)
	return e.value, nil
}

func (m *memStore) CompareAndSwap(_ context.Context, key string, old, value []byte, expires time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	if !ok {
		return false, store.ErrNotFound
	}
	if !bytes.Equal(e.value, old) {
		return false, nil
	}
	m.entries[key] = memEntry{bytes.Clone(value), expires}
	return true, nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

func (m *memStore) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pingErr
}

func (m *memStore) Close() error { return nil }

func (m *memStore) keysWithPrefix(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// fakeClock is the server's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeProvider is an upstream identity provider that signs in whoever it
// is told to, and checks that the flow handed back is the one it saw.
type fakeProvider struct {
	mu       sync.Mutex
	flows    map[string]idp.Flow
	identity idp.Identity
	deny     bool
	readyErr error
}

func (p *fakeProvider) Name() string { return "Example ID" }

func (p *fakeProvider) AuthCodeURL(_ context.Context, f idp.Flow) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flows == nil {
		p.flows = map[string]idp.Flow{}
	}
	p.flows[f.State] = f
	return "https://id.example.test/authorize?state=" + url.QueryEscape(f.State), nil
}

func (p *fakeProvider) Exchange(_ context.Context, code string, f idp.Flow) (*idp.Identity, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seen, ok := p.flows[f.State]; !ok || seen != f {
		return nil, errors.New("fake idp: unknown flow")
	}
	if code != "upstream-code" {
		return nil, errors.New("fake idp: bad code")
	}
	if p.deny {
		return nil, fmt.Errorf("%w: %s is not in the allowed emails", idp.ErrDenied, p.identity.Email)
	}
	id := p.identity
	return &id, nil
}

func (p *fakeProvider) Ready() error { return p.readyErr }

// fakeMetadata serves client ID metadata documents and JWK Sets from maps.
type fakeMetadata struct {
	docs map[string]*clientmeta.Document
	jwks map[string][]byte // by jwks_uri

	mu            sync.Mutex
	jwksFetches   int
	jwksRefreshes int
	rotatedJWKS   map[string][]byte
}

func (f *fakeMetadata) FetchJWKS(_ context.Context, uri string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwksFetches++
	set, ok := f.jwks[uri]
	if !ok {
		return nil, &clientmeta.Error{Description: "the JWK Set at jwks_uri URL answered with status 404, want 200"}
	}
	return bytes.Clone(set), nil
}

// RefreshJWKS answers with rotatedJWKS[uri] when a test set one: the set
// at the URI changed while FetchJWKS still serves the cached one.
func (f *fakeMetadata) RefreshJWKS(ctx context.Context, uri string) ([]byte, error) {
	f.mu.Lock()
	f.jwksRefreshes++
	set, ok := f.rotatedJWKS[uri]
	f.mu.Unlock()
	if ok {
		return bytes.Clone(set), nil
	}
	return f.FetchJWKS(ctx, uri)
}

func (f *fakeMetadata) Fetch(_ context.Context, id string) (*clientmeta.Document, error) {
	d, ok := f.docs[id]
	if !ok {
		return nil, &clientmeta.Error{Description: "the document could not be fetched (HTTP 404)"}
	}
	c := *d
	return &c, nil
}

// Test users (bcrypt.MinCost keeps the tests fast).
const (
	testUser     = "alice"
	testPassword = "correct horse battery staple"
)

var testUsers = func() map[string][]byte {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return map[string][]byte{testUser: h}
}()

// env is one authorization server on 127.0.0.1 with its store and clock.
type env struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	store *memStore
	clock *fakeClock
	iss   string
	res   string
}

func newEnv(t *testing.T, mutate ...func(*Options)) *env {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	e := &env{t: t, ts: ts, store: newMemStore(), clock: &fakeClock{t: time.Now().Truncate(time.Second)}, iss: ts.URL, res: ts.URL + "/mcp"}
	o := Options{
		Issuer:          e.iss,
		Resource:        e.res,
		ScopesSupported: []string{"tools:read", "tools:write"},
		DefaultScopes:   []string{"tools:read"},
		Store:           e.store,
		Users:           testUsers,
		Now:             e.clock.Now,
	}
	for _, m := range mutate {
		m(&o)
	}
	srv, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Register(mux)
	e.srv = srv
	return e
}

// browser is an http.Client that keeps cookies and does not follow
// redirects, so each step of the flow can be inspected.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, c: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response with its body read.
type page struct {
	*http.Response
	body string
}

func (b *browser) get(rawURL string) page {
	b.e.t.Helper()
	resp, err := b.c.Get(rawURL)
	if err != nil {
		b.e.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return readPage(b.e.t, resp)
}

// post submits a form the way a browser does from one of our pages.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.e.t.Helper()
	req, err := http.NewRequest("POST", b.e.iss+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null") // what browsers send under Referrer-Policy: no-referrer
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("POST %s: %v", path, err)
	}
	return readPage(b.e.t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp, string(body)}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// fields returns the hidden form fields of an HTML page.
func (p page) fields() url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func (p page) wantStatus(t *testing.T, status int) page {
	t.Helper()
	if p.StatusCode != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.StatusCode, status, p.body)
	}
	return p
}

// clientRedirect checks that p redirects to the client with iss (RFC 9207)
// and returns the redirect's query.
func (e *env) clientRedirect(p page, redirectPrefix string) url.Values {
	e.t.Helper()
	if p.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("status %d, want 303 to the client; body:\n%s", p.StatusCode, p.body)
	}
	loc := p.Header.Get("Location")
	if !strings.HasPrefix(loc, redirectPrefix) {
		e.t.Fatalf("redirect to %q, want prefix %q", loc, redirectPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		e.t.Fatal(err)
	}
	q := u.Query()
	if got := q.Get("iss"); got != e.iss {
		e.t.Fatalf("iss = %q, want %q (RFC 9207)", got, e.iss)
	}
	return q
}

// pkce is a code verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := randomToken(32)
	sum := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authzParams is a valid authorization request for clientID.
func (e *env) authzParams(clientID, redirectURI string, p pkce) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"state":                 {"st-" + randomToken(8)},
		"scope":                 {"tools:read tools:write"},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
		"resource":              {e.res},
	}
}

func (e *env) authorizeURL(q url.Values) string { return e.iss + "/authorize?" + q.Encode() }

// signInAndApprove runs the browser part of the flow and returns the
// client redirect's query.
func (b *browser) signInAndApprove(q url.Values) url.Values {
	t := b.e.t
	t.Helper()
	login := b.get(b.e.authorizeURL(q)).wantStatus(t, http.StatusOK)
	if strings.Contains(login.body, `action="/authorize/consent"`) {
		return b.approve(login, q.Get("redirect_uri")) // signed in already
	}
	if !strings.Contains(login.body, `action="/authorize/login"`) {
		t.Fatalf("want the sign-in page, got:\n%s", login.body)
	}
	f := login.fields()
	f.Set("username", testUser)
	f.Set("password", testPassword)
	consent := b.post("/authorize/login", f).wantStatus(t, http.StatusOK)
	if !strings.Contains(consent.body, `action="/authorize/consent"`) {
		t.Fatalf("want the consent page, got:\n%s", consent.body)
	}
	return b.approve(consent, q.Get("redirect_uri"))
}

func (b *browser) approve(consent page, redirectURI string) url.Values {
	b.e.t.Helper()
	f := consent.fields()
	f.Set("decision", "approve")
	got := b.e.clientRedirect(b.post("/authorize/consent", f), strings.SplitN(redirectURI, "?", 2)[0])
	if got.Get("code") == "" {
		b.e.t.Fatalf("no code in the redirect: %v", got)
	}
	return got
}

// tokenResult is the decoded answer of /token, /register or /revoke.
type tokenResult struct {
	status int
	header http.Header
	body   map[string]any
}

func (r tokenResult) str(k string) string { s, _ := r.body[k].(string); return s }

// postToken sends a form to path; basic, when set, is "id:secret".
func (e *env) postForm(path string, form url.Values, basic ...string) tokenResult {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.iss+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) tokenResult {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := tokenResult{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s: response is not JSON: %v\n%s", req.URL.Path, err, raw)
		}
	}
	return r
}

func (r tokenResult) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %v, want %d error=%s", r.status, r.body, status, code)
	}
}

func (r tokenResult) wantOK(t *testing.T) tokenResult {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %d %v, want 200", r.status, r.body)
	}
	return r
}

// register registers a client dynamically.
func (e *env) register(meta map[string]any) tokenResult {
	e.t.Helper()
	body, err := json.Marshal(meta)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", e.iss+"/register", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

// publicClient registers a public client like the MCP TypeScript SDK does.
func (e *env) publicClient(redirectURI string) string {
	e.t.Helper()
	r := e.register(map[string]any{
		"client_name":                "Test MCP Client",
		"redirect_uris":              []string{redirectURI},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	if r.status != http.StatusCreated {
		e.t.Fatalf("register: %d %v", r.status, r.body)
	}
	return r.str("client_id")
}

// codeGrant redeems code for clientID (a public client).
func (e *env) codeGrant(clientID, code, redirectURI, verifier string) tokenResult {
	e.t.Helper()
	return e.postForm("/token", url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
		"resource":      {e.res},
	})
}

func (e *env) refreshGrant(clientID, rt string) tokenResult {
	e.t.Helper()
	return e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}})
}

// fullFlow registers a public client, signs in, approves and redeems the
// code; it returns the client id and the token response.
func (e *env) fullFlow() (string, tokenResult) {
	e.t.Helper()
	const redirect = "http://127.0.0.1/callback"
	id := e.publicClient(redirect)
	p := newPKCE()
	q := e.authzParams(id, redirect, p)
	got := e.browser().signInAndApprove(q)
	return id, e.codeGrant(id, got.Get("code"), redirect, p.verifier).wantOK(e.t)
}
