package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate/internal/testendpoints"
)

const testIssuer = "https://as.example.com"

// clock is an injectable time source tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newIntrospector(t *testing.T, s *testendpoints.Introspection, mod func(*IntrospectionOptions)) *IntrospectionVerifier {
	t.Helper()
	o := IntrospectionOptions{
		Endpoint:     func() string { return s.URL },
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		Issuer:       testIssuer,
		Audiences:    []string{resource},
		Client:       s.Server.Client(),
		CacheSize:    100,
	}
	if mod != nil {
		mod(&o)
	}
	v, err := NewIntrospectionVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIntrospectionAcceptsAndRejects(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	now := time.Now()
	with := func(edit func(map[string]any)) map[string]any {
		a := s.Active(testIssuer, resource)
		edit(a)
		return a
	}
	tests := []struct {
		name   string
		answer map[string]any // nil: the endpoint does not know the token
		mod    func(*IntrospectionOptions)
		reason string // "" means accepted
	}{
		{"active, audience is the resource", s.Active(testIssuer, resource), nil, ""},
		{"aud array containing the resource", with(func(a map[string]any) { a["aud"] = []string{"https://other.example.com", resource} }), nil, ""},
		{"no iss is fine (optional in RFC 7662)", with(func(a map[string]any) { delete(a, "iss") }), nil, ""},
		{"no exp is fine (optional in RFC 7662)", with(func(a map[string]any) { delete(a, "exp") }), nil, ""},
		{"no token_type", with(func(a map[string]any) { delete(a, "token_type") }), nil, ""},
		{"expired within skew", with(func(a map[string]any) { a["exp"] = now.Add(-30 * time.Second).Unix() }), nil, ""},
		{"no aud, explicitly allowed", with(func(a map[string]any) { delete(a, "aud") }), func(o *IntrospectionOptions) { o.AllowNoAudience = true }, ""},
		{"client_secret_post", s.Active(testIssuer, resource), func(o *IntrospectionOptions) { o.AuthMethod = ClientSecretPost }, ""},

		{"unknown token", nil, nil, "not active"},
		{"inactive", map[string]any{"active": false}, nil, "not active"},
		{"active missing means inactive", with(func(a map[string]any) { delete(a, "active") }), nil, "not active"},
		{"another issuer", with(func(a map[string]any) { a["iss"] = testIssuer + "/" }), nil, "iss does not match"},
		{"another audience", with(func(a map[string]any) { a["aud"] = "https://other.example.com/mcp" }), nil, "aud does not contain"},
		{"no audience fails closed", with(func(a map[string]any) { delete(a, "aud") }), nil, "INTROSPECTION_ALLOW_NO_AUDIENCE"},
		{"expired beyond skew", with(func(a map[string]any) { a["exp"] = now.Add(-61 * time.Second).Unix() }), nil, "expired"},
		{"nbf in the future", with(func(a map[string]any) { a["nbf"] = now.Add(2 * time.Minute).Unix() }), nil, "not valid yet"},
		{"no sub", with(func(a map[string]any) { delete(a, "sub") }), nil, "no subject"},
		{"refresh token", with(func(a map[string]any) { a["token_type"] = "refresh_token" }), nil, "not a bearer access token"},
		{"DPoP-bound", with(func(a map[string]any) { a["token_type"] = "DPoP"; a["cnf"] = map[string]any{"jkt": "x"} }), nil, "not a bearer access token"},
		{"sender-constrained", with(func(a map[string]any) { a["cnf"] = map[string]any{"x5t#S256": "x"} }), nil, "sender-constrained"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := "opaque-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.answer != nil {
				s.Answer(token, tc.answer)
			}
			p, err := newIntrospector(t, s, tc.mod).Verify(context.Background(), token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p.Subject != "alice" {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("err = %v, want a TokenError containing %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the error repeats the token: %v", err)
			}
		})
	}
}

func TestIntrospectionPrincipalAndRequest(t *testing.T) {
	// Credentials with characters RFC 6749 §2.3.1 makes toolgate encode.
	s := testendpoints.NewIntrospection(t, "tool:gate", "p@ss wörd+/")
	s.Answer("tok", s.Active(testIssuer, resource))
	for _, method := range []string{ClientSecretBasic, ClientSecretPost} {
		v := newIntrospector(t, s, func(o *IntrospectionOptions) { o.AuthMethod = method })
		p, err := v.Verify(context.Background(), "tok")
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if p.Subject != "alice" || p.Username != "alice@example.com" || p.Email != "alice@example.com" || p.ClientID != "mcp-client" ||
			strings.Join(p.Scopes, " ") != "mcp:read mcp:write" || p.Expiry.IsZero() {
			t.Fatalf("%s: principal %+v", method, p)
		}
		hint, used := s.Last()
		if hint != "access_token" || used != method {
			t.Fatalf("hint %q, method %q; want access_token, %s", hint, used, method)
		}
	}
}

// Every failure of the endpoint is a refusal to accept, never an acceptance
// and never invalid_token: the token may be fine.
func TestIntrospectionFailsClosed(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	token := "opaque-good-token"
	s.Answer(token, s.Active(testIssuer, resource))

	// Where a redirect would lead: it must never see the token.
	var stolen atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Store(true)
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name  string
		setup func(s *testendpoints.Introspection)
		mod   func(*IntrospectionOptions)
		want  string
	}{
		{"server error", func(s *testendpoints.Introspection) { s.SetStatus(500) }, nil, "status 500"},
		{"rate limited", func(s *testendpoints.Introspection) { s.SetStatus(429) }, nil, "status 429"},
		{"wrong client credentials", nil, func(o *IntrospectionOptions) { o.ClientSecret = "wrong" }, "INTROSPECTION_CLIENT_SECRET"},
		{"timeout", func(s *testendpoints.Introspection) { s.SetDelay(150 * time.Millisecond) }, func(o *IntrospectionOptions) { o.Timeout = 30 * time.Millisecond }, "deadline exceeded"},
		{"not JSON", func(s *testendpoints.Introspection) { s.SetRaw("<html>maintenance</html>") }, nil, "RFC 7662 JSON"},
		{"active as a string", func(s *testendpoints.Introspection) {
			s.SetRaw(`{"active":"true","sub":"alice","aud":"` + resource + `"}`)
		}, nil, "RFC 7662 JSON"},
		{"too large", func(s *testendpoints.Introspection) {
			s.SetRaw(`{"active":true,"pad":"` + strings.Repeat("x", maxResponseBytes) + `"}`)
		}, nil, "larger than"},
		{"unreachable", nil, func(o *IntrospectionOptions) { o.Endpoint = func() string { return closed.URL } }, "request failed"},
		{"redirect is not followed", nil, func(o *IntrospectionOptions) { o.Endpoint = func() string { return redirector.URL } }, "status 307"},
		{"endpoint not known yet", nil, func(o *IntrospectionOptions) { o.Endpoint = func() string { return "" } }, "not known yet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetStatus(0)
			s.SetRaw("")
			s.SetDelay(0)
			if tc.setup != nil {
				tc.setup(s)
			}
			p, err := newIntrospector(t, s, tc.mod).Verify(context.Background(), token)
			if err == nil || p != nil {
				t.Fatalf("accepted despite %s", tc.name)
			}
			if !errors.Is(err, ErrUnavailable) || IsTokenError(err) {
				t.Fatalf("err = %v; want ErrUnavailable, not a TokenError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error repeats a secret: %v", err)
			}
		})
	}
	if stolen.Load() {
		t.Fatal("a redirect carried the token to another server")
	}
}

func TestIntrospectionCache(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	clk := newClock()
	v := newIntrospector(t, s, func(o *IntrospectionOptions) { o.Now = clk.Now; o.CacheSize = 10 })
	ctx := context.Background()

	// An hour-long token is reused for the 60 s cap, then asked about again.
	s.Answer("long", s.Active(testIssuer, resource))
	for range 3 {
		if _, err := v.Verify(ctx, "long"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Calls(); n != 1 {
		t.Fatalf("calls = %d; want 1 (cached)", n)
	}
	clk.Advance(59 * time.Second)
	_, _ = v.Verify(ctx, "long")
	if n := s.Calls(); n != 1 {
		t.Fatalf("calls = %d; want 1 within the cap", n)
	}
	clk.Advance(2 * time.Second)
	_, _ = v.Verify(ctx, "long")
	if n := s.Calls(); n != 2 {
		t.Fatalf("calls = %d; want 2 after the 60 s cap (revocation must be seen)", n)
	}

	// A token expiring sooner than the cap is not reused past its exp.
	short := s.Active(testIssuer, resource)
	short["exp"] = clk.Now().Add(10 * time.Second).Unix()
	s.Answer("short", short)
	_, _ = v.Verify(ctx, "short")
	clk.Advance(11 * time.Second)
	_, _ = v.Verify(ctx, "short") // still within skew, so the endpoint is asked again
	if n := s.Calls(); n != 4 {
		t.Fatalf("calls = %d; want 4: the cached answer must end at exp", n)
	}

	// A revoked token is seen as soon as the cache entry ends.
	s.Answer("long", map[string]any{"active": false})
	clk.Advance(61 * time.Second)
	if _, err := v.Verify(ctx, "long"); !IsTokenError(err) {
		t.Fatalf("revoked token: %v", err)
	}

	// A rejection is remembered for 30 s, so repeating a bad token costs one
	// call; after that the endpoint is asked again.
	before := s.Calls()
	_, _ = v.Verify(ctx, "unknown")
	if _, err := v.Verify(ctx, "unknown"); !IsTokenError(err) {
		t.Fatalf("remembered rejection: %v", err)
	}
	if n := s.Calls() - before; n != 1 {
		t.Fatalf("calls for a repeated unknown token = %d; want 1", n)
	}
	clk.Advance(31 * time.Second)
	_, _ = v.Verify(ctx, "unknown")
	if n := s.Calls() - before; n != 2 {
		t.Fatalf("calls after the rejection expired = %d; want 2", n)
	}
	// Failures of the endpoint are never remembered.
	s.SetStatus(http.StatusInternalServerError)
	before = s.Calls()
	_, _ = v.Verify(ctx, "during-outage")
	_, _ = v.Verify(ctx, "during-outage")
	s.SetStatus(0)
	if n := s.Calls() - before; n != 2 {
		t.Fatalf("calls during an outage = %d; want 2 (failures are not cached)", n)
	}

	// Bounded: many distinct valid tokens never grow it past its size.
	for i := range 50 {
		tok := "many-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		s.Answer(tok, s.Active(testIssuer, resource))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.checks.accepted.len(); n > 10 {
		t.Fatalf("cache holds %d entries; bound is 10", n)
	}
}

// Concurrent requests carrying the same new token share one call.
func TestIntrospectionCollapsesConcurrentCalls(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	s.Answer("tok", s.Active(testIssuer, resource))
	s.SetDelay(100 * time.Millisecond)
	v := newIntrospector(t, s, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), "tok"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.Calls(); n != 1 {
		t.Fatalf("calls = %d; want 1", n)
	}
}

// The endpoint may be learnt after start (from the issuer's metadata).
func TestIntrospectionEndpointLearntLater(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	s.Answer("tok", s.Active(testIssuer, resource))
	var known atomic.Pointer[string]
	v := newIntrospector(t, s, func(o *IntrospectionOptions) {
		o.Endpoint = func() string {
			if u := known.Load(); u != nil {
				return *u
			}
			return ""
		}
	})
	if err := v.Ready(); err == nil {
		t.Fatal("ready without an endpoint")
	}
	if _, err := v.Verify(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("before: %v", err)
	}
	known.Store(&s.URL)
	if err := v.Ready(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), "tok"); err != nil {
		t.Fatalf("after: %v", err)
	}
}

func TestIntrospectionOptions(t *testing.T) {
	base := IntrospectionOptions{Endpoint: func() string { return "" }, ClientID: "c", Issuer: testIssuer, Audiences: []string{resource}}
	if _, err := NewIntrospectionVerifier(base); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*IntrospectionOptions){
		"no endpoint":  func(o *IntrospectionOptions) { o.Endpoint = nil },
		"no client":    func(o *IntrospectionOptions) { o.ClientID = "" },
		"no issuer":    func(o *IntrospectionOptions) { o.Issuer = "" },
		"no audience":  func(o *IntrospectionOptions) { o.Audiences = nil },
		"odd auth way": func(o *IntrospectionOptions) { o.AuthMethod = "private_key_jwt" },
	} {
		o := base
		mod(&o)
		if _, err := NewIntrospectionVerifier(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Clients cannot make toolgate place unbounded calls: past the in-flight
// limit a request gets ErrUnavailable at once instead of queueing.
func TestIntrospectionInFlightLimit(t *testing.T) {
	s := testendpoints.NewIntrospection(t, "toolgate", "secret")
	s.SetDelay(300 * time.Millisecond)
	v := newIntrospector(t, s, nil)
	const n = maxRemoteInFlight + 20
	var wg sync.WaitGroup
	var busy atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), fmt.Sprintf("tok-%d", i)); errors.Is(err, errBusy) {
				busy.Add(1)
			}
		}()
	}
	wg.Wait()
	if calls := s.Calls(); calls > maxRemoteInFlight {
		t.Fatalf("%d calls in flight; limit is %d", calls, maxRemoteInFlight)
	}
	if busy.Load() < n-maxRemoteInFlight {
		t.Fatalf("%d requests refused as busy; want at least %d", busy.Load(), n-maxRemoteInFlight)
	}
}
