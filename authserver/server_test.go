package authserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

func TestRegistrationValidation(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RegistrationBurst = 100 })
	uris := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "https://app.example.com/cb"
		}
		return out
	}
	cases := []struct {
		name string
		meta map[string]any
		code string
	}{
		{"no redirect_uris", map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
		{"empty redirect_uris", map[string]any{"redirect_uris": []string{}}, "invalid_redirect_uri"},
		{"http non-loopback", map[string]any{"redirect_uris": []string{"http://app.example.com/cb"}}, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://app.example.com/cb#x"}}, "invalid_redirect_uri"},
		{"relative", map[string]any{"redirect_uris": []string{"/cb"}}, "invalid_redirect_uri"},
		{"custom scheme", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}, "invalid_redirect_uri"},
		{"javascript", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"user info", map[string]any{"redirect_uris": []string{"https://u:p@app.example.com/cb"}}, "invalid_redirect_uri"},
		{"loopback lookalike", map[string]any{"redirect_uris": []string{"http://127.0.0.1.evil.example/cb"}}, "invalid_redirect_uri"},
		{"too many", map[string]any{"redirect_uris": uris(11)}, "invalid_client_metadata"},
		{"too long", map[string]any{"redirect_uris": []string{"https://app.example.com/" + strings.Repeat("a", 2000)}}, "invalid_client_metadata"},
		{"implicit grant", map[string]any{"redirect_uris": uris(1), "grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{"refresh only", map[string]any{"redirect_uris": uris(1), "grant_types": []string{"refresh_token"}}, "invalid_client_metadata"},
		{"token response", map[string]any{"redirect_uris": uris(1), "response_types": []string{"token"}}, "invalid_client_metadata"},
		{"private_key_jwt", map[string]any{"redirect_uris": uris(1), "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{"wrong type", map[string]any{"redirect_uris": "https://app.example.com/cb"}, "invalid_client_metadata"},
		{"bad application_type", map[string]any{"redirect_uris": uris(1), "application_type": "desktop"}, "invalid_client_metadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.register(c.meta).wantError(t, http.StatusBadRequest, c.code)
		})
	}

	t.Run("unsupported grants are dropped, not refused", func(t *testing.T) {
		r := e.register(map[string]any{"redirect_uris": uris(1), "token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "client_credentials"}})
		if got := fmt.Sprint(r.body["grant_types"]); r.status != http.StatusCreated || got != "[authorization_code]" {
			t.Fatalf("%d, grant_types %v: want 201 registering authorization_code only", r.status, got)
		}
	})

	t.Run("not JSON", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.iss+"/register", strings.NewReader("redirect_uris=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		e.do(req).wantError(t, 400, "invalid_client_metadata")
		req, _ = http.NewRequest("POST", e.iss+"/register", strings.NewReader(`{"redirect_uris":["https://a.example/cb"]} {}`))
		req.Header.Set("Content-Type", "application/json")
		e.do(req).wantError(t, 400, "invalid_client_metadata")
		req, _ = http.NewRequest("POST", e.iss+"/register", strings.NewReader(`{"client_name":"`+strings.Repeat("a", 17<<10)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		e.do(req).wantError(t, 400, "invalid_client_metadata")
	})

	t.Run("defaults to a confidential client", func(t *testing.T) {
		r := e.register(map[string]any{"redirect_uris": []string{"https://app.example.com/cb", "http://[::1]/cb"}, "client_name": strings.Repeat("é", 150), "application_type": "native"})
		if r.status != http.StatusCreated {
			t.Fatalf("%d %v", r.status, r.body)
		}
		if r.str("token_endpoint_auth_method") != "client_secret_basic" || r.str("client_secret") == "" || r.body["client_secret_expires_at"] != float64(0) {
			t.Errorf("registration %v", r.body)
		}
		if got := fmt.Sprint(r.body["grant_types"]); got != "[authorization_code refresh_token]" {
			t.Errorf("grant_types %v, want both when none are asked for", got)
		}
		if n := len([]rune(r.str("client_name"))); n != 100 {
			t.Errorf("client_name has %d runes, want 100", n)
		}
		if r.body["client_id_issued_at"] != float64(e.clock.Now().Unix()) || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("registration %v %v", r.body, r.header)
		}
		// The derived secret authenticates the client; nothing was stored.
		c, err := e.srv.resolveClient(t.Context(), r.str("client_id"))
		if err != nil || !c.checkSecret(r.str("client_secret")) || c.checkSecret("other") {
			t.Errorf("derived secret: %v", err)
		}
		if keys := e.store.keysWithPrefix(""); len(keys) != 2 { // key:signing, key:hmac
			t.Errorf("store holds %v", keys)
		}
	})
}

func TestRegistrationRateLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RegistrationLimit = rate.Every(time.Hour); o.RegistrationBurst = 2 })
	meta := map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}
	for range 2 {
		if r := e.register(meta); r.status != http.StatusCreated {
			t.Fatalf("%d %v", r.status, r.body)
		}
	}
	r := e.register(meta)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third registration: %d %v", r.status, r.header)
	}
	e.clock.Advance(time.Hour)
	if r := e.register(meta); r.status != http.StatusCreated {
		t.Fatalf("after an hour: %d", r.status)
	}
}

func TestSigningKeyPersistence(t *testing.T) {
	st := newMemStore()
	o := Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: st, Users: testUsers}
	a, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if a.signer.kid != b.signer.kid || !bytes.Equal(a.JWKS(), b.JWKS()) || !bytes.Equal(a.keys.session, b.keys.session) {
		t.Fatal("a second server over the same store has other keys")
	}
	// A client registered at one replica is known at the other.
	id, err := a.signClientID(&registration{RedirectURIs: []string{"https://a.example/cb"}, GrantTypes: []string{"authorization_code"}, AuthMethod: "none", Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.resolveClient(t.Context(), id); err != nil {
		t.Errorf("replica does not know the client: %v", err)
	}
	other, err := New(t.Context(), Options{Issuer: o.Issuer, Resource: o.Resource, Store: newMemStore(), Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	if other.signer.kid == a.signer.kid {
		t.Error("two stores, one key")
	}
	if _, err := other.resolveClient(t.Context(), id); err == nil {
		t.Error("a client_id signed by another server's secret resolves")
	}

	var set map[string][]map[string]any
	if err := json.Unmarshal(a.JWKS(), &set); err != nil || len(set["keys"]) != 1 {
		t.Fatalf("JWKS %s", a.JWKS())
	}
	k := set["keys"][0]
	if k["kid"] != a.signer.kid || k["alg"] != "ES256" || k["use"] != "sig" || k["d"] != nil || k["crv"] != "P-256" {
		t.Errorf("public JWK %v", k)
	}
}

func TestSigningKeyPEM(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1DER, _ := x509.MarshalECPrivateKey(ecKey)
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)

	e := newEnv(t, func(o *Options) { o.SigningKeyPEM = pkcs1 })
	_, tok := e.fullFlow()
	msg, err := jws.Parse([]byte(tok.str("access_token")))
	if err != nil {
		t.Fatal(err)
	}
	if alg := msg.Signatures()[0].ProtectedHeaders().Algorithm(); alg.String() != "RS256" {
		t.Errorf("alg %s, want RS256", alg)
	}
	e.verifyAccessToken(tok.str("access_token"))
	if _, err := e.store.Get(t.Context(), signingKeyName); err == nil {
		t.Error("a configured key must not be replaced by a stored one")
	}
	pub, _ := jwk.FromRaw(rsaKey.Public())
	set, _ := jwk.Parse(e.srv.JWKS())
	got, _ := set.Key(0)
	if !jwk.Equal(pub, got) {
		t.Error("JWKS does not publish the configured key")
	}

	o := Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: newMemStore(), Users: testUsers}
	o.SigningKeyPEM = sec1
	if s, err := New(t.Context(), o); err != nil || s.signer.alg.String() != "ES256" {
		t.Errorf("SEC1 key: %v", err)
	}
	for name, bad := range map[string][]byte{
		"not PEM":   []byte("hello"),
		"P-384":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}),
		"RSA 1024":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(smallRSA)}),
		"two keys":  append(append([]byte{}, sec1...), sec1...),
		"cert type": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
	} {
		o.SigningKeyPEM = bad
		if _, err := New(t.Context(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	base := func() Options {
		return Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: newMemStore(), Users: testUsers, ScopesSupported: []string{"a"}}
	}
	cases := map[string]func(*Options){
		"no users or provider":  func(o *Options) { o.Users = nil },
		"trailing slash":        func(o *Options) { o.Issuer += "/" },
		"issuer with path":      func(o *Options) { o.Issuer += "/as" },
		"http issuer":           func(o *Options) { o.Issuer = "http://mcp.example.com" },
		"no store":              func(o *Options) { o.Store = nil },
		"no resource":           func(o *Options) { o.Resource = "" },
		"default not supported": func(o *Options) { o.DefaultScopes = []string{"b"} },
		"bad scope token":       func(o *Options) { o.ScopesSupported = []string{"a b"} },
		"short client secret": func(o *Options) {
			o.Clients = []Client{{ID: "c", Secret: "short", RedirectURIs: []string{"https://a.example/cb"}}}
		},
		"client without redirect": func(o *Options) { o.Clients = []Client{{ID: "c"}} },
		"duplicate client": func(o *Options) {
			c := Client{ID: "c", RedirectURIs: []string{"https://a.example/cb"}}
			o.Clients = []Client{c, c}
		},
		"tgc1 client id": func(o *Options) { o.Clients = []Client{{ID: "tgc1.x", RedirectURIs: []string{"https://a.example/cb"}}} },
	}
	for name, mutate := range cases {
		o := base()
		mutate(&o)
		if _, err := New(t.Context(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := base()
	o.Issuer = "http://127.0.0.1:8080"
	if _, err := New(t.Context(), o); err != nil {
		t.Errorf("loopback http issuer: %v", err)
	}
}

func TestReady(t *testing.T) {
	prov := &fakeProvider{}
	e := newEnv(t, func(o *Options) { o.Provider = prov })
	if err := e.srv.Ready(); err != nil {
		t.Fatal(err)
	}
	prov.readyErr = errors.New("discovery pending")
	if err := e.srv.Ready(); err == nil {
		t.Error("provider not ready, server ready")
	}
	prov.readyErr = nil
	e.store.mu.Lock()
	e.store.pingErr = errors.New("down")
	e.store.mu.Unlock()
	e.srv.readyMu.Lock()
	e.srv.readyAt = time.Time{} // skip the cache
	e.srv.readyMu.Unlock()
	if err := e.srv.Ready(); err == nil {
		t.Error("store down, server ready")
	}
}

func TestParseUsers(t *testing.T) {
	h1, _ := bcrypt.GenerateFromPassword([]byte("pw1"), bcrypt.MinCost)
	h2, _ := bcrypt.GenerateFromPassword([]byte("pw2"), bcrypt.MinCost)
	users, err := ParseUsers("alice:" + string(h1) + ",\n bob:" + string(h2) + "\n")
	if err != nil || len(users) != 2 || bcrypt.CompareHashAndPassword(users["bob"], []byte("pw2")) != nil {
		t.Fatalf("ParseUsers: %v %v", users, err)
	}
	for _, bad := range []string{
		"alice",
		"alice:notahash",
		":" + string(h1),
		"alice:" + string(h1) + ",alice:" + string(h2),
		"al ice:" + string(h1),
		"'alice:" + string(h1), // a quote left by docker --env-file
	} {
		_, err := ParseUsers(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), string(h1)) || strings.Contains(err.Error(), "notahash") {
			t.Errorf("error prints a hash: %v", err)
		}
	}
	_, err = ParseUsers("alice:x,bob:y")
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("every bad entry should be reported: %v", err)
	}
}

func TestLoadClients(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
clients:
  - client_id: inspector
    client_name: MCP Inspector
    redirect_uris: ["http://localhost/oauth/callback"]
  - client_id: web
    client_secret: 0123456789abcdef0123
    redirect_uris:
      - https://app.example.com/cb
`)
	cs, err := LoadClients(good)
	if err != nil || len(cs) != 2 || cs[1].Secret != "0123456789abcdef0123" || cs[0].Name != "MCP Inspector" {
		t.Fatalf("LoadClients: %+v %v", cs, err)
	}
	for name, body := range map[string]string{
		"unknown field": "clients:\n  - client_id: a\n    redirect_uri: [https://a.example/cb]\n",
		"http redirect": "clients:\n  - client_id: a\n    redirect_uris: [http://a.example/cb]\n",
		"no id":         "clients:\n  - redirect_uris: [https://a.example/cb]\n",
		"duplicate":     "clients:\n  - client_id: a\n    redirect_uris: [https://a.example/cb]\n  - client_id: a\n    redirect_uris: [https://a.example/cb]\n",
		"empty":         "",
	} {
		p := write(strings.ReplaceAll(name, " ", "_")+".yaml", body)
		_, err := LoadClients(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v (want an error naming the file)", name, err)
		}
	}
	_, err = LoadClients(write("entry.yaml", "clients:\n  - client_id: ok\n    redirect_uris: [https://a.example/cb]\n  - client_id: bad\n    redirect_uris: [ftp://a.example/cb]\n"))
	if err == nil || !strings.Contains(err.Error(), `entry 2 (client_id "bad")`) {
		t.Errorf("error does not name the entry: %v", err)
	}
}

func TestSecureCookieOnHTTPS(t *testing.T) {
	s, err := New(t.Context(), Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: newMemStore(), Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.writeSession(rec, &session{BrowserID: "b"})
	c := rec.Result().Cookies()[0]
	if c.Name != "__Host-toolgate" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v", c)
	}
}

// FuzzParseClientID: decoding a tgc1 client_id never panics, and only
// values this server signed verify.
func FuzzParseClientID(f *testing.F) {
	s, err := New(f.Context(), Options{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Store: newMemStore(), Users: testUsers})
	if err != nil {
		f.Fatal(err)
	}
	signed, err := s.signClientID(&registration{Name: "x", RedirectURIs: []string{"https://a.example/cb"}, GrantTypes: []string{"authorization_code"}, AuthMethod: "none", IssuedAt: 1, Nonce: "n"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add("tgc1.")
	f.Add("tgc1..")
	f.Add("tgc1.e30.AAAA")
	f.Add(signed[:len(signed)-1])
	f.Fuzz(func(t *testing.T, id string) {
		// The MAC covers the exact text, so the one value this server
		// signed is the only one that may verify.
		if _, err := s.verifyClientID(id); err == nil && id != signed {
			t.Fatalf("unsigned value verified: %q", id)
		}
	})
}
