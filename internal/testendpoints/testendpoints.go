// Package testendpoints runs in-process stand-ins, on 127.0.0.1, for the
// endpoints that judge tokens toolgate cannot verify alone: Google's JWKS
// and tokeninfo endpoints, and an RFC 7662 introspection endpoint. Each
// answers as its real counterpart documents, signs with real keys, records
// how it was called, and can be made to fail. It only exists for tests.
package testendpoints

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/toolgate/toolgate/internal/testissuer"
)

// faults is what a stand-in can be told to do instead of answering.
type faults struct {
	status atomic.Int32 // answer every call with this status; 0 = behave
	raw    atomic.Pointer[string]
	delay  atomic.Int64 // nanoseconds to wait before answering
	calls  atomic.Int64
}

// SetStatus makes every call answer status with an empty JSON object; 0
// restores normal answers.
func (f *faults) SetStatus(status int) { f.status.Store(int32(status)) }

// SetRaw makes every call answer 200 with body as is; "" restores normal
// answers.
func (f *faults) SetRaw(body string) {
	if body == "" {
		f.raw.Store(nil)
		return
	}
	f.raw.Store(&body)
}

// SetDelay makes every call wait d before answering.
func (f *faults) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// Calls counts the calls that reached the endpoint.
func (f *faults) Calls() int64 { return f.calls.Load() }

// intercept applies the faults; it reports whether it answered.
func (f *faults) intercept(w http.ResponseWriter, r *http.Request) bool {
	f.calls.Add(1)
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return true
		}
	}
	if s := f.status.Load(); s != 0 {
		writeJSON(w, int(s), map[string]any{})
		return true
	}
	if raw := f.raw.Load(); raw != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(*raw))
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Google stands in for Google's key set (/oauth2/v3/certs) and tokeninfo
// (/tokeninfo) endpoints. Its ID tokens are signed by Key, an RSA key it
// publishes as Google does.
type Google struct {
	faults
	Server       *httptest.Server
	JWKSURL      string
	TokenInfoURL string
	Key          *testissuer.Key

	mu         sync.Mutex
	tokens     map[string]map[string]any
	tokenInURL atomic.Bool
}

// NewGoogle starts the stand-in with one RS256 key, "google-1".
func NewGoogle(t testing.TB) *Google {
	t.Helper()
	g := &Google{Key: testissuer.NewRSAKey(t, "google-1"), tokens: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/v3/certs", g.certs)
	mux.HandleFunc("/tokeninfo", g.tokeninfo)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Server.Close)
	g.JWKSURL = g.Server.URL + "/oauth2/v3/certs"
	g.TokenInfoURL = g.Server.URL + "/tokeninfo"
	return g
}

func (g *Google) certs(w http.ResponseWriter, r *http.Request) {
	pub, err := jwk.PublicKeyOf(g.Key.Private)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = pub.Set(jwk.KeyIDKey, g.Key.KID)
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	writeJSON(w, http.StatusOK, set)
}

// tokeninfo answers as Google's does: the access token may come as the
// access_token parameter (query or form) or as a bearer token; a known
// token gets its fields, all as strings; anything else gets 400 with
// {"error": "invalid_token", "error_description": "Invalid Value"}.
func (g *Google) tokeninfo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("access_token") != "" || r.URL.Query().Get("id_token") != "" {
		g.tokenInURL.Store(true)
	}
	if g.intercept(w, r) {
		return
	}
	token := r.FormValue("access_token")
	if h := r.Header.Get("Authorization"); token == "" && strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	g.mu.Lock()
	info, ok := g.tokens[token]
	g.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_token", "error_description": "Invalid Value"})
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// TokenInURL reports whether any call carried a token in its URL.
func (g *Google) TokenInURL() bool { return g.tokenInURL.Load() }

// AccessTokenInfo returns what tokeninfo says of a valid access token
// issued to clientID for user "10769150350006150715113082367", expiring in
// an hour, in Google's shape (numbers and booleans as strings).
func (g *Google) AccessTokenInfo(clientID string) map[string]any {
	exp := time.Now().Add(time.Hour)
	return map[string]any{
		"azp":            clientID,
		"aud":            clientID,
		"sub":            "10769150350006150715113082367",
		"scope":          "openid https://www.googleapis.com/auth/userinfo.email",
		"exp":            strconv.FormatInt(exp.Unix(), 10),
		"expires_in":     "3599",
		"email":          "alice@example.com",
		"email_verified": "true",
		"access_type":    "online",
	}
}

// AddAccessToken makes tokeninfo recognise token with info.
func (g *Google) AddAccessToken(token string, info map[string]any) {
	g.mu.Lock()
	g.tokens[token] = info
	g.mu.Unlock()
}

// IDClaims returns the claims of a valid Google ID token for clientID.
func (g *Google) IDClaims(clientID string) testissuer.Claims {
	now := time.Now()
	return testissuer.Claims{
		"iss":            "https://accounts.google.com",
		"azp":            clientID,
		"aud":            clientID,
		"sub":            "10769150350006150715113082367",
		"email":          "alice@example.com",
		"email_verified": true,
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
}

// IDToken signs claims as Google does: RS256, "typ": "JWT", Key's kid.
func (g *Google) IDToken(t testing.TB, c testissuer.Claims) string {
	return SignJWT(t, c, g.Key, "JWT")
}

// SignJWT signs claims with key and its algorithm, naming its kid.
func SignJWT(t testing.TB, c testissuer.Claims, key *testissuer.Key, typ string) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, key.KID)
	if typ != "" {
		_ = hdr.Set(jws.TypeKey, typ)
	}
	out, err := jws.Sign(payload, jws.WithKey(key.Alg, key.Private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Introspection stands in for an RFC 7662 endpoint that requires client
// authentication (client_secret_basic or client_secret_post).
type Introspection struct {
	faults
	Server       *httptest.Server
	URL          string
	ClientID     string
	ClientSecret string

	mu       sync.Mutex
	answers  map[string]map[string]any
	lastHint string
	lastAuth string
}

// NewIntrospection starts the endpoint; clientID and secret are the
// credentials it accepts.
func NewIntrospection(t testing.TB, clientID, secret string) *Introspection {
	t.Helper()
	s := &Introspection{ClientID: clientID, ClientSecret: secret, answers: map[string]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.introspect))
	t.Cleanup(s.Server.Close)
	s.URL = s.Server.URL + "/introspect"
	return s
}

func (s *Introspection) introspect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	if s.intercept(w, r) {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	method, id, secret := "client_secret_post", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: form-encoded, then Basic.
		method = "client_secret_basic"
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	if id != s.ClientID || secret != s.ClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	s.mu.Lock()
	s.lastHint, s.lastAuth = r.PostForm.Get("token_type_hint"), method
	ans, ok := s.answers[token]
	s.mu.Unlock()
	if !ok {
		ans = map[string]any{"active": false} // RFC 7662 §2.2: nothing else
	}
	writeJSON(w, http.StatusOK, ans)
}

// Answer makes the endpoint answer ans for token (RFC 7662 §2.2 fields).
func (s *Introspection) Answer(token string, ans map[string]any) {
	s.mu.Lock()
	s.answers[token] = ans
	s.mu.Unlock()
}

// Active returns the answer for an active access token of user "alice",
// issued by issuer for audience, expiring in an hour.
func (s *Introspection) Active(issuer, audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"active":     true,
		"iss":        issuer,
		"aud":        audience,
		"sub":        "alice",
		"username":   "alice@example.com",
		"email":      "alice@example.com",
		"client_id":  "mcp-client",
		"scope":      "mcp:read mcp:write",
		"token_type": "Bearer",
		"iat":        now.Unix(),
		"exp":        now.Add(time.Hour).Unix(),
	}
}

// Last returns the token_type_hint and client authentication method of the
// last authenticated call.
func (s *Introspection) Last() (hint, authMethod string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHint, s.lastAuth
}
