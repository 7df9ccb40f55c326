package clientmeta

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// testJWKS is a real public JWK Set with one P-256 key.
var testJWKS = func() map[string]any {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := jwk.FromRaw(priv.Public())
	if err != nil {
		panic(err)
	}
	_ = k.Set(jwk.KeyIDKey, "k1")
	_ = k.Set(jwk.AlgorithmKey, "ES256")
	raw, err := json.Marshal(k)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	return map[string]any{"keys": []any{m}}
}()

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// keyServer serves a private_key_jwt document at /client.json naming
// /jwks.json on the same server, and the set there via jwks.
func keyServer(t *testing.T, jwks func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var setRequests atomic.Int64
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request, self string) {
		switch r.URL.Path {
		case "/client.json":
			writeJSON(w, validDoc(self, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = strings.TrimSuffix(self, "/client.json") + "/jwks.json"
			}))
		case "/jwks.json":
			setRequests.Add(1)
			jwks(w)
		default:
			http.NotFound(w, r)
		}
	})
	return srv, &setRequests
}

func serveSet(contentType, cacheControl string, body []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", contentType)
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Write(body)
	}
}

// A real document naming a jwks_uri validates, and FetchJWKS returns the
// set there, cached for its max-age.
func TestDocumentWithJWKSURI(t *testing.T) {
	set := mustJSON(testJWKS)
	srv, setRequests := keyServer(t, serveSet("application/jwk-set+json", "max-age=600", set))
	clock := newFakeClock()
	opts := testOptions(srv)
	opts.Now = clock.Now
	f := New(opts)
	doc, err := f.Fetch(context.Background(), srv.URL+"/client.json")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if doc.TokenEndpointAuthMethod != "private_key_jwt" || doc.JWKSURI != srv.URL+"/jwks.json" || doc.JWKS != nil {
		t.Fatalf("document keys: method %q, jwks_uri %q, jwks %s", doc.TokenEndpointAuthMethod, doc.JWKSURI, doc.JWKS)
	}
	got, err := f.FetchJWKS(context.Background(), doc.JWKSURI)
	if err != nil {
		t.Fatalf("FetchJWKS: %v", err)
	}
	if !bytes.Equal(got, set) {
		t.Fatalf("FetchJWKS = %s, want %s", got, set)
	}
	if _, err := jwk.Parse(got); err != nil {
		t.Fatalf("the returned set does not parse: %v", err)
	}
	got[0] = 'x' // a copy: must not change the cache
	clock.Advance(9 * time.Minute)
	again, err := f.FetchJWKS(context.Background(), doc.JWKSURI)
	if err != nil || !bytes.Equal(again, set) || setRequests.Load() != 1 {
		t.Fatalf("cached FetchJWKS: %v, %d requests, equal %v", err, setRequests.Load(), bytes.Equal(again, set))
	}
	clock.Advance(2 * time.Minute)
	if _, err := f.FetchJWKS(context.Background(), doc.JWKSURI); err != nil || setRequests.Load() != 2 {
		t.Fatalf("after max-age: %v, %d requests, want a refetch", err, setRequests.Load())
	}
}

func TestDocumentWithInlineJWKS(t *testing.T) {
	srv, _ := startServer(t, serveDoc(func(m map[string]any) {
		m["token_endpoint_auth_method"] = "private_key_jwt"
		m["jwks"] = testJWKS
		m["jwks_uri"] = nil // null counts as absent
	}))
	doc, err := New(testOptions(srv)).Fetch(context.Background(), srv.URL+"/client.json")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if _, err := jwk.Parse(doc.JWKS); err != nil || doc.JWKSURI != "" {
		t.Fatalf("jwks %s (%v), jwks_uri %q", doc.JWKS, err, doc.JWKSURI)
	}
}

// Without AllowPrivateAddresses a jwks_uri on a loopback address is
// refused at connect time, like a client_id: the document's author, not
// toolgate's operator, chooses the URL.
func TestFetchJWKSRefusesLoopback(t *testing.T) {
	srv, setRequests := keyServer(t, serveSet("application/json", "", mustJSON(testJWKS)))
	opts := testOptions(srv)
	opts.AllowPrivateAddresses = false
	f := New(opts)
	f.anyPort = true // reach the dial check on the test server's port
	_, err := f.FetchJWKS(context.Background(), srv.URL+"/jwks.json")
	wantError(t, err, "the jwks_uri host resolves to an address that is not publicly routable")
	if setRequests.Load() != 0 {
		t.Errorf("server saw %d requests, want 0", setRequests.Load())
	}
	// And without anyPort, the port rule applies first.
	_, err = New(opts).FetchJWKS(context.Background(), srv.URL+"/jwks.json")
	wantError(t, err, "jwks_uri must use the default https port")
}

func TestFetchJWKSRejects(t *testing.T) {
	set := mustJSON(testJWKS)
	big := mustJSON(map[string]any{"keys": []any{map[string]any{"kty": "oct", "pad": strings.Repeat("a", jwksMaxBytes)}}})
	tests := []struct {
		name string
		h    func(http.ResponseWriter)
		want string
	}{
		{"text/plain", serveSet("text/plain", "", set), `has Content-Type "text/plain", want application/jwk-set+json or application/json`},
		{"other +json", serveSet("application/jwt+json", "", set), "Content-Type"},
		{"no content type", serveSet("", "", set), "Content-Type"},
		{"too large", serveSet("application/json", "", big), "larger than 65536 bytes"},
		{"array", serveSet("application/json", "", []byte(`[]`)), "is not a JSON object"},
		{"no keys", serveSet("application/json", "", []byte(`{"keys":[]}`)), "has no keys"},
		{"keys not array", serveSet("application/json", "", []byte(`{"keys":"k"}`)), `"keys" is not an array`},
		{"key not object", serveSet("application/json", "", []byte(`{"keys":[1]}`)), "not a JSON object"},
		{"broken", serveSet("application/json", "", []byte(`{"keys":[{}]`)), "not valid JSON"},
		{"404", func(w http.ResponseWriter) { http.Error(w, "no", http.StatusNotFound) }, "status 404"},
		{"redirect", func(w http.ResponseWriter) {
			w.Header().Set("Location", "https://example.com/jwks.json")
			w.WriteHeader(http.StatusFound)
		}, "redirects are not followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := keyServer(t, tt.h)
			got, err := New(testOptions(srv)).FetchJWKS(context.Background(), srv.URL+"/jwks.json")
			if got != nil {
				t.Errorf("FetchJWKS returned a set alongside an error")
			}
			wantError(t, err, tt.want)
		})
	}
	// Not an https URL with a path: refused without a request.
	for _, uri := range []string{"http://app.example/jwks.json", "https://app.example", "https://app.example/#x", ""} {
		_, err := New(Options{}).FetchJWKS(context.Background(), uri)
		wantError(t, err, "jwks_uri is not an https URL")
	}
}

// A failure is remembered for 30 s, like a document's.
func TestFetchJWKSNegativeCache(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	set := mustJSON(testJWKS)
	srv, setRequests := keyServer(t, func(w http.ResponseWriter) {
		if fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		serveSet("application/json", "", set)(w)
	})
	clock := newFakeClock()
	opts := testOptions(srv)
	opts.Now = clock.Now
	f := New(opts)
	uri := srv.URL + "/jwks.json"
	_, err := f.FetchJWKS(context.Background(), uri)
	wantError(t, err, "status 500")
	fail.Store(false)
	clock.Advance(29 * time.Second)
	_, err = f.FetchJWKS(context.Background(), uri)
	wantError(t, err, "status 500")
	if setRequests.Load() != 1 {
		t.Fatalf("server saw %d requests, want 1: the failure was not cached", setRequests.Load())
	}
	clock.Advance(2 * time.Second)
	if _, err := f.FetchJWKS(context.Background(), uri); err != nil || setRequests.Load() != 2 {
		t.Fatalf("after the failure expired: %v, %d requests", err, setRequests.Load())
	}
}

func TestConcurrentJWKSFetchesShareOneRequest(t *testing.T) {
	release := make(chan struct{})
	set := mustJSON(testJWKS)
	srv, setRequests := keyServer(t, func(w http.ResponseWriter) {
		<-release
		serveSet("application/json", "", set)(w)
	})
	f := New(testOptions(srv))
	const callers = 10
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := f.FetchJWKS(context.Background(), srv.URL+"/jwks.json")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("FetchJWKS: %v", err)
		}
	}
	if setRequests.Load() != 1 {
		t.Errorf("server saw %d requests for %d concurrent fetches, want 1", setRequests.Load(), callers)
	}
}

// Key sets take their slots from the same pool as documents, so a flood
// of jwks_uris cannot add connections beyond the global bound.
func TestJWKSFetchesShareTheSlots(t *testing.T) {
	srv, setRequests := keyServer(t, serveSet("application/json", "", mustJSON(testJWKS)))
	opts := testOptions(srv)
	opts.Timeout = 300 * time.Millisecond
	f := New(opts)
	f.slots = make(chan struct{}, 1)
	f.slots <- struct{}{} // held, as by a document fetch
	_, err := f.FetchJWKS(context.Background(), srv.URL+"/jwks.json")
	wantError(t, err, "too many client metadata documents and key sets")
	<-f.slots
	if setRequests.Load() != 0 {
		t.Errorf("server saw %d requests while no slot was free", setRequests.Load())
	}
	if _, err := f.FetchJWKS(context.Background(), srv.URL+"/jwks.json"); err != nil {
		t.Errorf("FetchJWKS once a slot is free: %v (the refusal must not be cached)", err)
	}
}

// RefreshJWKS goes back to the jwks_uri before the cached set expires (a
// client rotated its keys), but at most once a minute per URI.
func TestRefreshJWKSIsRateLimited(t *testing.T) {
	set := mustJSON(testJWKS)
	srv, setRequests := keyServer(t, serveSet("application/json", "max-age=86400", set))
	clock := newFakeClock()
	opts := testOptions(srv)
	opts.Now = clock.Now
	f := New(opts)
	uri := srv.URL + "/jwks.json"
	for i, step := range []struct {
		advance time.Duration
		refresh bool
		want    int64
	}{
		{0, false, 1},               // first fetch
		{time.Second, true, 2},      // unknown kid: refetch at once
		{10 * time.Second, true, 2}, // again within the minute: the cache answers
		{time.Minute, true, 3},      // a minute later: refetch
		{time.Second, false, 3},     // plain fetches use the cache throughout
	} {
		clock.Advance(step.advance)
		var err error
		if step.refresh {
			_, err = f.RefreshJWKS(context.Background(), uri)
		} else {
			_, err = f.FetchJWKS(context.Background(), uri)
		}
		if err != nil || setRequests.Load() != step.want {
			t.Fatalf("step %d: %v, %d requests to the key set, want %d", i, err, setRequests.Load(), step.want)
		}
	}
}
