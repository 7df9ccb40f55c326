package clientmeta

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handlerFunc serves a test document; self is the URL the request was for,
// which a valid document repeats as its client_id.
type handlerFunc func(w http.ResponseWriter, r *http.Request, self string)

// startServer runs a real TLS server on 127.0.0.1 and counts its requests.
func startServer(t *testing.T, h handlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		h(w, r, "https://"+r.Host+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

// testOptions trusts srv and permits loopback, as the tests need.
func testOptions(srv *httptest.Server) Options {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return Options{AllowPrivateAddresses: true, RootCAs: pool, Timeout: 2 * time.Second}
}

// validDoc is a minimal acceptable document for self, changed by edit.
func validDoc(self string, edit func(m map[string]any)) []byte {
	m := map[string]any{
		"client_id":     self,
		"client_name":   "Test Client",
		"redirect_uris": []string{"https://app.example/cb", "http://127.0.0.1/cb"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// serveDoc serves validDoc(self, edit) as application/json.
func serveDoc(edit func(m map[string]any)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, self string) {
		writeJSON(w, validDoc(self, edit))
	}
}

// fakeClock is a settable Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wantError asserts err is an *Error whose Description contains substr.
func wantError(t *testing.T, err error, substr string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *clientmeta.Error", err, err)
	}
	if !strings.Contains(e.Description, substr) {
		t.Fatalf("Description = %q, want it to contain %q", e.Description, substr)
	}
}

func TestFetchValidDocument(t *testing.T) {
	var accept, cookie atomic.Value
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		accept.Store(r.Header.Get("Accept"))
		cookie.Store(r.Header.Get("Cookie"))
		http.SetCookie(w, &http.Cookie{Name: "track", Value: "1"})
		writeJSON(w, validDoc(self, func(m map[string]any) {
			m["client_name"] = "  My\u0000 \u202eClient\n  "
			m["client_uri"] = "https://app.example/"
			m["logo_uri"] = "javascript:alert(1)"
			m["grant_types"] = []string{"authorization_code", "refresh_token"}
			m["response_types"] = []string{"code"}
			m["token_endpoint_auth_method"] = "none"
			m["scope"] = "read write"
			m["jwks_uri"] = "https://app.example/jwks" // with "none": dropped
			m["software_id"] = 42
		}))
	})
	f := New(testOptions(srv))
	id := srv.URL + "/oauth/client.json"
	doc, err := f.Fetch(context.Background(), id)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if doc.ClientID != id {
		t.Errorf("ClientID = %q, want %q", doc.ClientID, id)
	}
	if doc.ClientName != "My Client" {
		t.Errorf("ClientName = %q, want control and bidi characters removed and trimmed", doc.ClientName)
	}
	if doc.ClientURI != "https://app.example/" || doc.LogoURI != "" {
		t.Errorf("ClientURI, LogoURI = %q, %q; want the https one kept and the javascript one dropped", doc.ClientURI, doc.LogoURI)
	}
	if doc.Scope != "read write" || len(doc.GrantTypes) != 2 || len(doc.ResponseTypes) != 1 || doc.TokenEndpointAuthMethod != "none" {
		t.Errorf("document fields not carried over: %+v", doc)
	}
	if doc.JWKSURI != "" || doc.JWKS != nil {
		t.Errorf("keys of a public client kept: jwks_uri %q, jwks %s", doc.JWKSURI, doc.JWKS)
	}
	if !doc.AllowsRedirect("http://127.0.0.1:4242/cb") || doc.AllowsRedirect("https://evil.example/cb") {
		t.Error("AllowsRedirect does not follow the registered redirect URIs")
	}
	if got := accept.Load(); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}

	// The returned document is a copy: changing it must not change the cache.
	doc.RedirectURIs[0] = "https://evil.example/cb"
	again, err := f.Fetch(context.Background(), id)
	if err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if again.RedirectURIs[0] != "https://app.example/cb" {
		t.Error("modifying a returned document changed the cached one")
	}
}

func TestFetchDoesNotSendCookies(t *testing.T) {
	var cookies atomic.Int64
	srv, count := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		if r.Header.Get("Cookie") != "" {
			cookies.Add(1)
		}
		http.SetCookie(w, &http.Cookie{Name: "track", Value: "1"})
		writeJSON(w, validDoc(self, nil))
	})
	clock := newFakeClock()
	opts := testOptions(srv)
	opts.Now = clock.Now
	f := New(opts)
	for range 2 {
		if _, err := f.Fetch(context.Background(), srv.URL+"/c.json"); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		clock.Advance(25 * time.Hour) // past any TTL: the next Fetch refetches
	}
	if count.Load() != 2 {
		t.Fatalf("server saw %d requests, want 2", count.Load())
	}
	if cookies.Load() != 0 {
		t.Error("a cookie set by the document server was sent back")
	}
}

func TestFetchRejectsResponses(t *testing.T) {
	big := strings.Repeat(" ", 2048)
	tests := []struct {
		name string
		h    handlerFunc
		want string
	}{
		{"status 404", func(w http.ResponseWriter, r *http.Request, self string) {
			http.NotFound(w, r)
		}, "status 404"},
		{"status 500", func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			w.Write(validDoc(self, nil))
		}, "status 500"},
		{"status 204", func(w http.ResponseWriter, r *http.Request, self string) {
			w.WriteHeader(204)
		}, "status 204"},
		{"content type html", func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(validDoc(self, nil))
		}, `Content-Type "text/html"`},
		{"content type missing", func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header()["Content-Type"] = nil // stop net/http sniffing one
			w.Write(validDoc(self, nil))
		}, "Content-Type"},
		{"content type text/json+xml", func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header().Set("Content-Type", "text/plain+json")
			w.Write(validDoc(self, nil))
		}, "Content-Type"},
		{"body too large", func(w http.ResponseWriter, r *http.Request, self string) {
			doc := validDoc(self, nil)
			writeJSON(w, append(doc, big...))
		}, "larger than 1024 bytes"},
		{"body too large without content length", func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(validDoc(self, nil))
			w.(http.Flusher).Flush() // chunked: the size is only known by reading
			w.Write([]byte(big))
		}, "larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := startServer(t, tt.h)
			opts := testOptions(srv)
			opts.MaxBytes = 1024
			_, err := New(opts).Fetch(context.Background(), srv.URL+"/client.json")
			wantError(t, err, tt.want)
		})
	}
}

func TestFetchAcceptsJSONVariants(t *testing.T) {
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/oauth-client+json"} {
		srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
			w.Header().Set("Content-Type", ct)
			w.Write(validDoc(self, nil))
		})
		if _, err := New(testOptions(srv)).Fetch(context.Background(), srv.URL+"/c.json"); err != nil {
			t.Errorf("Content-Type %q: %v", ct, err)
		}
	}
}

func TestFetchBodyExactlyMaxBytes(t *testing.T) {
	const max = 1024
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		doc := validDoc(self, nil)
		writeJSON(w, append(doc, strings.Repeat(" ", max-len(doc))...))
	})
	opts := testOptions(srv)
	opts.MaxBytes = max
	if _, err := New(opts).Fetch(context.Background(), srv.URL+"/c.json"); err != nil {
		t.Fatalf("a body of exactly MaxBytes was refused: %v", err)
	}
}

func TestFetchRejectsDocuments(t *testing.T) {
	raw := func(body string) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, self string) { writeJSON(w, []byte(body)) }
	}
	set := func(key string, value any) handlerFunc {
		return serveDoc(func(m map[string]any) { m[key] = value })
	}
	keyed := func(fields map[string]any) handlerFunc {
		return serveDoc(func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			for k, v := range fields {
				m[k] = v
			}
		})
	}
	tests := []struct {
		name string
		h    handlerFunc
		want string
	}{
		{"array", raw(`[{"client_id":"x"}]`), "not a JSON object"},
		{"string", raw(`"https://example.com/c.json"`), "not a JSON object"},
		{"empty", raw(``), "not a JSON object"},
		{"broken JSON", raw(`{"client_id":`), "not valid JSON"},
		{"trailing garbage", func(w http.ResponseWriter, r *http.Request, self string) {
			writeJSON(w, append(validDoc(self, nil), "{}"...))
		}, "not valid JSON"},
		{"wrong type", set("redirect_uris", "https://app.example/cb"), "wrong type"},
		{"client_id missing", serveDoc(func(m map[string]any) { delete(m, "client_id") }), "does not equal the URL"},
		{"client_id other URL", set("client_id", "https://evil.example/client.json"), "does not equal the URL"},
		{"client_id trailing slash", func(w http.ResponseWriter, r *http.Request, self string) {
			writeJSON(w, validDoc(self+"/", nil))
		}, "does not equal the URL"},
		{"client_id different case", func(w http.ResponseWriter, r *http.Request, self string) {
			writeJSON(w, validDoc(strings.Replace(self, "https", "HTTPS", 1), nil))
		}, "does not equal the URL"},
		{"redirect_uris missing", serveDoc(func(m map[string]any) { delete(m, "redirect_uris") }), "no redirect_uris"},
		{"redirect_uris empty", set("redirect_uris", []string{}), "no redirect_uris"},
		{"redirect_uris null", set("redirect_uris", nil), "no redirect_uris"},
		{"redirect relative", set("redirect_uris", []string{"/cb"}), "not an absolute URI"},
		{"redirect fragment", set("redirect_uris", []string{"https://app.example/cb#x"}), "fragment"},
		{"redirect http", set("redirect_uris", []string{"https://ok.example/cb", "http://app.example/cb"}), "must use https"},
		{"redirect http 127.0.0.2", set("redirect_uris", []string{"http://127.0.0.2/cb"}), "must use https"},
		{"redirect javascript", set("redirect_uris", []string{"javascript://app.example/%0aalert(1)"}), "must use https"},
		{"redirect custom scheme", set("redirect_uris", []string{"com.example.app:/cb"}), "not an absolute URI"},
		{"redirect user info", set("redirect_uris", []string{"https://a@app.example/cb"}), "user info"},
		{"redirect space", set("redirect_uris", []string{"https://app.example/c b"}), "not a valid URI"},
		{"client_secret_basic", set("token_endpoint_auth_method", "client_secret_basic"), "not allowed in a client metadata document"},
		{"client_secret_post", set("token_endpoint_auth_method", "client_secret_post"), "not allowed in a client metadata document"},
		{"client_secret_jwt", set("token_endpoint_auth_method", "client_secret_jwt"), "not allowed in a client metadata document"},
		{"private_key_jwt without keys", set("token_endpoint_auth_method", "private_key_jwt"), "needs the client's public keys in jwks or jwks_uri"},
		{"private_key_jwt with both", keyed(map[string]any{"jwks": testJWKS, "jwks_uri": "https://app.example/jwks.json"}), "both jwks and jwks_uri"},
		{"jwks_uri http", keyed(map[string]any{"jwks_uri": "http://app.example/jwks.json"}), "must be an https URL"},
		{"jwks_uri no path", keyed(map[string]any{"jwks_uri": "https://app.example"}), "must be an https URL"},
		{"jwks_uri fragment", keyed(map[string]any{"jwks_uri": "https://app.example/jwks.json#k"}), "must be an https URL"},
		{"jwks_uri user info", keyed(map[string]any{"jwks_uri": "https://u@app.example/jwks.json"}), "must be an https URL"},
		{"jwks_uri dot segment", keyed(map[string]any{"jwks_uri": "https://app.example/a/../jwks.json"}), "must be an https URL"},
		{"jwks_uri wrong type", keyed(map[string]any{"jwks_uri": 7}), "wrong type"},
		{"jwks array", keyed(map[string]any{"jwks": []any{testJWKS}}), "jwks is not a JSON object"},
		{"jwks string", keyed(map[string]any{"jwks": "{}"}), "jwks is not a JSON object"},
		{"jwks without keys", keyed(map[string]any{"jwks": map[string]any{}}), "jwks has no keys"},
		{"jwks keys empty", keyed(map[string]any{"jwks": map[string]any{"keys": []any{}}}), "jwks has no keys"},
		{"jwks keys not array", keyed(map[string]any{"jwks": map[string]any{"keys": map[string]any{}}}), "not an array"},
		{"jwks key not object", keyed(map[string]any{"jwks": map[string]any{"keys": []any{"k"}}}), "not a JSON object"},
		{"jwks null, no uri", keyed(map[string]any{"jwks": nil}), "needs the client's public keys"},
		{"unknown auth method", set("token_endpoint_auth_method", "tls_client_auth"), "not supported"},
		{"grant client_credentials", set("grant_types", []string{"authorization_code", "client_credentials"}), `grant type "client_credentials"`},
		{"grant implicit", set("grant_types", []string{"implicit"}), `grant type "implicit"`},
		{"response token", set("response_types", []string{"code", "token"}), `response type "token"`},
		{"scope with quote", set("scope", `read "write"`), "scope"},
		{"scope with newline", set("scope", "read\nwrite"), "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := startServer(t, tt.h)
			doc, err := New(testOptions(srv)).Fetch(context.Background(), srv.URL+"/client.json")
			if doc != nil {
				t.Errorf("Fetch returned a document alongside an error")
			}
			wantError(t, err, tt.want)
		})
	}
}

func TestClientNameCapped(t *testing.T) {
	srv, _ := startServer(t, serveDoc(func(m map[string]any) { m["client_name"] = strings.Repeat("é", 500) }))
	doc, err := New(testOptions(srv)).Fetch(context.Background(), srv.URL+"/c.json")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if n := len([]rune(doc.ClientName)); n != maxClientNameRunes {
		t.Errorf("ClientName has %d runes, want %d", n, maxClientNameRunes)
	}
}

func TestFetchRejectsNonURLClientIDWithoutRequest(t *testing.T) {
	srv, count := startServer(t, serveDoc(nil))
	f := New(testOptions(srv))
	for _, id := range []string{"my-client", srv.URL, srv.URL + "/", "http" + strings.TrimPrefix(srv.URL, "https") + "/c.json", srv.URL + "/c.json#x", srv.URL + "/a/../c.json"} {
		_, err := f.Fetch(context.Background(), id)
		wantError(t, err, "not a metadata document URL")
	}
	if count.Load() != 0 {
		t.Errorf("server saw %d requests for invalid client_ids, want 0", count.Load())
	}
}

func TestFetchDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int64
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		if r.URL.Path == "/target.json" {
			targetHits.Add(1)
			writeJSON(w, validDoc(self, nil))
			return
		}
		http.Redirect(w, r, "/target.json", http.StatusFound)
	})
	_, err := New(testOptions(srv)).Fetch(context.Background(), srv.URL+"/client.json")
	wantError(t, err, "redirect (status 302)")
	if targetHits.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// Timeout tests use a server that hangs: its handler stalls until the test
// ends, ignoring the client going away. A handler that returned when
// r.Context() was done would end the response cleanly, and under load a
// client that had just timed out could still read that clean end (a 200
// with an empty or truncated body) instead of reporting the timeout.
// fetchBound is how long a fetch with a short timeout may take at most
// under heavy load; maxStall, far longer, bounds the stall in case the
// test never releases it, so that a fetch that waited for the server
// fails the test instead of hanging it.
const (
	fetchBound = 10 * time.Second
	maxStall   = time.Minute
)

// stallingServer starts a server whose handler runs before, then stalls
// until the test's cleanup (which runs before the server is closed, so
// closing it does not wait for the handler).
func stallingServer(t *testing.T, before func(w http.ResponseWriter)) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		before(w)
		timer := time.NewTimer(maxStall)
		defer timer.Stop()
		select {
		case <-release:
		case <-timer.C:
		}
	})
	t.Cleanup(func() { close(release) }) // cleanups run last-in first-out
	return srv
}

// wantTimeout checks that err is a timeout, by description and by kind.
func wantTimeout(t *testing.T, err error, description string) {
	t.Helper()
	wantError(t, err, description)
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("error %v does not wrap a timeout", err)
	}
}

func TestFetchTimeout(t *testing.T) {
	srv := stallingServer(t, func(http.ResponseWriter) {})
	opts := testOptions(srv)
	opts.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := New(opts).Fetch(context.Background(), srv.URL+"/slow.json")
	wantTimeout(t, err, "timed out after 200ms")
	if elapsed := time.Since(start); elapsed > fetchBound {
		t.Errorf("Fetch took %v despite a 200ms timeout", elapsed)
	}
}

// The server sends the headers and part of the body, then hangs: the fetch
// must still give up, with a timeout, in bounded time. The timeout has to
// fire while the body is read, or this test would only repeat
// TestFetchTimeout; under load the headers can take longer than a short
// timeout, so an attempt that timed out before the response (an error from
// Client.Do, a *url.Error) is retried with twice the timeout.
func TestFetchTimeoutDuringBody(t *testing.T) {
	srv := stallingServer(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"client_id":`))
		w.(http.Flusher).Flush()
	})
	const maxTimeout = 3200 * time.Millisecond
	for timeout := 200 * time.Millisecond; ; timeout *= 2 {
		opts := testOptions(srv)
		opts.Timeout = timeout
		start := time.Now()
		_, err := New(opts).Fetch(context.Background(), srv.URL+"/slow.json")
		elapsed := time.Since(start)
		wantTimeout(t, err, "timed out after "+timeout.String())
		if elapsed > timeout+fetchBound {
			t.Errorf("Fetch took %v despite a %v timeout", elapsed, timeout)
		}
		var beforeResponse *url.Error
		if !errors.As(err, &beforeResponse) {
			return // timed out reading the body
		}
		if timeout >= maxTimeout {
			t.Fatalf("every attempt timed out before the response arrived, the last with a %v timeout: %v", timeout, err)
		}
		t.Logf("timed out before the response with a %v timeout (%v); retrying", timeout, err)
	}
}

func TestFetchCallerCancel(t *testing.T) {
	release := make(chan struct{})
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		<-release
		writeJSON(w, validDoc(self, nil))
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := New(testOptions(srv)).Fetch(ctx, srv.URL+"/c.json")
	wantError(t, err, "cancelled")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the context error", err)
	}
}

func TestSSRFRefusesLoopback(t *testing.T) {
	srv, count := startServer(t, serveDoc(nil))
	opts := testOptions(srv)
	opts.AllowPrivateAddresses = false
	f := New(opts)
	f.anyPort = true // reach the dial check on the test server's port
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	ids := []string{
		srv.URL + "/client.json",
		// A host name is checked after resolution, not by its spelling.
		"https://localhost:" + strconv.Itoa(port) + "/client.json",
	}
	for _, id := range ids {
		_, err := f.Fetch(context.Background(), id)
		wantError(t, err, "not publicly routable")
		var e *Error
		errors.As(err, &e)
		if strings.Contains(e.Description, "127.0.0.1") {
			t.Errorf("Description %q reveals the resolved address", e.Description)
		}
	}
	if count.Load() != 0 {
		t.Errorf("server saw %d requests, want 0", count.Load())
	}
}

func TestSSRFRefusesIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var count atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { count.Add(1) }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	opts := testOptions(srv)
	opts.AllowPrivateAddresses = false
	f := New(opts)
	f.anyPort = true // reach the dial check on the test server's port
	_, err = f.Fetch(context.Background(), srv.URL+"/client.json")
	wantError(t, err, "not publicly routable")
	if count.Load() != 0 {
		t.Errorf("server saw %d requests, want 0", count.Load())
	}
}

func TestTransportIgnoresEnvironmentProxy(t *testing.T) {
	f := New(Options{})
	if f.client.Transport.(*http.Transport).Proxy != nil {
		t.Fatal("the transport uses a proxy; it would bypass the address check")
	}
	if f.client.Jar != nil {
		t.Fatal("the client has a cookie jar")
	}
}

func TestCacheHitDoesNotRefetch(t *testing.T) {
	srv, count := startServer(t, serveDoc(nil))
	f := New(testOptions(srv))
	for range 5 {
		if _, err := f.Fetch(context.Background(), srv.URL+"/c.json"); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
	}
	if count.Load() != 1 {
		t.Errorf("server saw %d requests for 5 fetches, want 1", count.Load())
	}
	if _, err := f.Fetch(context.Background(), srv.URL+"/other.json"); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if count.Load() != 2 {
		t.Errorf("a different URL was served from the cache")
	}
}

func TestCacheMaxAge(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		fresh, stale time.Duration // still cached at fresh, refetched at stale
	}{
		{"max-age honoured", "max-age=600", 9 * time.Minute, 11 * time.Minute},
		{"below MinTTL", "max-age=10", 4 * time.Minute, 6 * time.Minute},
		{"above MaxTTL", "max-age=86400", 59 * time.Minute, 61 * time.Minute},
		{"no header", "", 4 * time.Minute, 6 * time.Minute},
		{"no-store", "no-store", 4 * time.Minute, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, count := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
				if tt.cacheControl != "" {
					w.Header().Set("Cache-Control", tt.cacheControl)
				}
				writeJSON(w, validDoc(self, nil))
			})
			clock := newFakeClock()
			opts := testOptions(srv)
			opts.Now, opts.MinTTL, opts.MaxTTL = clock.Now, 5*time.Minute, time.Hour
			f := New(opts)
			fetch := func(wantRequests int64) {
				t.Helper()
				if _, err := f.Fetch(context.Background(), srv.URL+"/c.json"); err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if got := count.Load(); got != wantRequests {
					t.Fatalf("server saw %d requests, want %d", got, wantRequests)
				}
			}
			fetch(1)
			clock.Advance(tt.fresh)
			fetch(1)
			clock.Advance(tt.stale - tt.fresh)
			fetch(2)
		})
	}
}

func TestNegativeCache(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	srv, count := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		if fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		writeJSON(w, validDoc(self, nil))
	})
	clock := newFakeClock()
	opts := testOptions(srv)
	opts.Now = clock.Now
	f := New(opts)
	id := srv.URL + "/c.json"

	_, err := f.Fetch(context.Background(), id)
	wantError(t, err, "status 500")
	fail.Store(false)
	clock.Advance(29 * time.Second)
	_, err = f.Fetch(context.Background(), id)
	wantError(t, err, "status 500")
	if count.Load() != 1 {
		t.Fatalf("server saw %d requests, want 1: the failure was not cached", count.Load())
	}
	clock.Advance(2 * time.Second)
	if _, err := f.Fetch(context.Background(), id); err != nil {
		t.Fatalf("Fetch after the failure expired: %v", err)
	}
	if count.Load() != 2 {
		t.Fatalf("server saw %d requests, want 2", count.Load())
	}
}

func TestConcurrentFetchesShareOneRequest(t *testing.T) {
	release := make(chan struct{})
	srv, count := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		<-release
		writeJSON(w, validDoc(self, nil))
	})
	f := New(testOptions(srv))
	const callers = 10
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := f.Fetch(context.Background(), srv.URL+"/c.json")
			errs <- err
		}()
	}
	// Give every caller time to reach the in-flight request before the
	// server answers; without sharing, each would make its own.
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Fetch: %v", err)
		}
	}
	if count.Load() != 1 {
		t.Errorf("server saw %d requests for %d concurrent fetches, want 1", count.Load(), callers)
	}
}

func TestErrorWrapsAndFormats(t *testing.T) {
	inner := errors.New("inner")
	e := &Error{Description: "desc", Err: inner}
	if !errors.Is(e, inner) {
		t.Error("Error does not unwrap to Err")
	}
	if e.Error() != "clientmeta: desc: inner" || (&Error{Description: "d"}).Error() != "clientmeta: d" {
		t.Errorf("unexpected Error() text %q", e.Error())
	}
}

// Without the development setting, only the https port: a client_id must
// not make toolgate probe other services on public hosts.
func TestOnlyTheHTTPSPort(t *testing.T) {
	f := New(Options{})
	for _, id := range []string{"https://app.example.com:25/client.json", "https://app.example.com:8443/client.json"} {
		_, err := f.Fetch(context.Background(), id)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Description, "default https port") {
			t.Errorf("%s: %v, want a refusal naming the port", id, err)
		}
	}
}

// Fetches in flight are bounded across URLs: with every slot held by a
// stalled host, another URL waits at most Timeout for one, is refused, and
// its refusal is not cached (the URL is not at fault).
func TestConcurrentFetchesAreBounded(t *testing.T) {
	srv := stallingServer(t, func(http.ResponseWriter) {})
	opts := testOptions(srv)
	opts.Timeout = 300 * time.Millisecond
	f := New(opts)
	f.slots = make(chan struct{}, 1)
	f.slots <- struct{}{} // the one slot is busy
	_, err := f.Fetch(context.Background(), srv.URL+"/b.json")
	wantError(t, err, "too many client metadata documents")
	<-f.slots
	if _, ok := f.cache.get(srv.URL + "/b.json"); ok {
		t.Fatal("a refusal for lack of slots was cached against the URL")
	}
}
