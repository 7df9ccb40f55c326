package idp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Test RSA keys are expensive to make, so each is made once per run.
var (
	signingKey = sync.OnceValue(func() *rsa.PrivateKey { return newRSAKey() })
	strayKey   = sync.OnceValue(func() *rsa.PrivateKey { return newRSAKey() })
)

func newRSAKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// fakeOIDC is a small but real OpenID provider on 127.0.0.1: discovery,
// JWKS and a token endpoint that checks the code, the client's credentials,
// the redirect URI and the PKCE verifier against the challenge it was shown.
type fakeOIDC struct {
	srv          *httptest.Server
	issuer       string
	clientID     string
	clientSecret string
	redirectURL  string

	mu              sync.Mutex
	docIssuer       string // issuer announced in discovery; defaults to issuer
	discoveryFails  int    // answer 500 to this many discovery requests
	discoveryHits   int
	codes           map[string]pendingCode
	tokenRequests   int
	lastClientStyle string // "basic" or "post"
}

type pendingCode struct {
	challenge string
	idToken   string
}

const fakeKID = "test-key-1"

func newFakeOIDC(t *testing.T) *fakeOIDC {
	t.Helper()
	fp := &fakeOIDC{
		clientID:     "toolgate-client",
		clientSecret: "s3cret-value",
		redirectURL:  "https://mcp.example.com/oauth/callback",
		codes:        map[string]pendingCode{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", fp.discovery)
	mux.HandleFunc("GET /jwks", fp.jwks)
	mux.HandleFunc("POST /token", fp.token)
	fp.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	fp.issuer = fp.srv.URL
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *fakeOIDC) options() OIDCOptions {
	return OIDCOptions{
		Issuer:       fp.issuer,
		ClientID:     fp.clientID,
		ClientSecret: fp.clientSecret,
		RedirectURL:  fp.redirectURL,
		Client:       fp.srv.Client(),
	}
}

func (fp *fakeOIDC) discovery(w http.ResponseWriter, _ *http.Request) {
	fp.mu.Lock()
	fp.discoveryHits++
	fail := fp.discoveryFails > 0
	if fail {
		fp.discoveryFails--
	}
	iss := fp.docIssuer
	fp.mu.Unlock()
	if fail {
		http.Error(w, "temporarily broken", http.StatusInternalServerError)
		return
	}
	if iss == "" {
		iss = fp.issuer
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                fp.issuer + "/authorize",
		"token_endpoint":                        fp.issuer + "/token",
		"jwks_uri":                              fp.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (fp *fakeOIDC) jwks(w http.ResponseWriter, _ *http.Request) {
	pub, err := jwk.PublicKeyOf(signingKey())
	if err == nil {
		_ = pub.Set(jwk.KeyIDKey, fakeKID)
		_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
		set := jwk.NewSet()
		err = set.AddKey(pub)
		if err == nil {
			writeJSON(w, http.StatusOK, set)
			return
		}
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (fp *fakeOIDC) token(w http.ResponseWriter, r *http.Request) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.tokenRequests++
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	fp.lastClientStyle = "basic"
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		fp.lastClientStyle = "post"
	}
	if id != fp.clientID || secret != fp.clientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	f := r.PostForm
	pc, ok := fp.codes[f.Get("code")]
	delete(fp.codes, f.Get("code")) // single use, as RFC 6749 requires
	switch {
	case f.Get("grant_type") != "authorization_code":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	case !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	case f.Get("redirect_uri") != fp.redirectURL:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	case s256(f.Get("code_verifier")) != pc.challenge:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	default:
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": "provider-access-token",
			"token_type":   "Bearer",
			"expires_in":   3600,
			"id_token":     pc.idToken,
		})
	}
}

// count reads one of fp's counters under its lock.
func (fp *fakeOIDC) count(n *int) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return *n
}

// approve plays the user signing in at the provider: it takes the
// code_challenge from the authorization URL toolgate built and returns a
// code that redeems for idToken only with the matching verifier.
func (fp *fakeOIDC) approve(t *testing.T, authURL, idToken string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("parse auth URL: %v", err)
	}
	challenge := u.Query().Get("code_challenge")
	if challenge == "" {
		t.Fatalf("auth URL has no code_challenge: %s", authURL)
	}
	code := "code-" + rand.Text()
	fp.mu.Lock()
	fp.codes[code] = pendingCode{challenge: challenge, idToken: idToken}
	fp.mu.Unlock()
	return code
}

// claims returns a valid ID token payload for nonce; tests change fields.
func (fp *fakeOIDC) claims(nonce string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":                fp.issuer,
		"sub":                "user-123",
		"aud":                fp.clientID,
		"iat":                now.Unix(),
		"exp":                now.Add(5 * time.Minute).Unix(),
		"nonce":              nonce,
		"email":              "alice@example.com",
		"email_verified":     true,
		"name":               "Alice Example",
		"preferred_username": "alice",
	}
}

// signToken signs claims as an RS256 JWT with key under the provider's kid.
func signToken(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	priv, err := jwk.FromRaw(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, fakeKID); err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		t.Fatal(err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256, priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": "rejected by the test provider"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
