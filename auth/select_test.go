package auth

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/toolgate/toolgate/internal/testissuer"
)

func TestProviderOf(t *testing.T) {
	tests := []struct {
		issuer string
		want   Provider
	}{
		{"https://accounts.google.com", ProviderGoogle},
		{"https://Accounts.Google.com", ProviderGoogle},
		{"https://tenant.auth0.com/", ProviderAuth0},
		{"https://tenant.us.auth0.com/", ProviderAuth0},
		{"https://tenant.eu.auth0.com/", ProviderAuth0},
		{"https://login.example.com/", ProviderGeneric}, // Auth0 custom domain: not recognisable
		{"https://evilauth0.com/", ProviderGeneric},
		{"https://auth0.com.evil.example/", ProviderGeneric},
		{"https://accounts.google.com.evil.example", ProviderGeneric},
		{"https://sso.example.com/realms/mcp", ProviderGeneric},
		{"http://127.0.0.1:9000", ProviderGeneric},
		{"::not a url", ProviderGeneric},
	}
	for _, tc := range tests {
		if got := ProviderOf(tc.issuer); got != tc.want {
			t.Errorf("ProviderOf(%q) = %s; want %s", tc.issuer, got, tc.want)
		}
	}
}

func hdr(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// jwtShaped has a JWT's shape; its signature is not real.
var jwtShaped = hdr(`{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}`) + "." + hdr(`{"sub":"alice"}`) + ".c2lnbmF0dXJl"

func TestIsJWS(t *testing.T) {
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"signed JWT", jwtShaped, true},
		{"header with leading whitespace", hdr("\r\n {\"alg\":\"RS256\"}") + ".e30.c2ln", true},
		{"unsigned JWT", hdr(`{"alg":"none"}`) + ".e30.", true},
		{"opaque (oidc-provider)", "Yz8fJ2cR4kXq3zV9bN1mW0pLs7tHg6uEa5dCy2xBi4o", false},
		{"opaque with two dots (Google)", "ya29.a0AfB_byC.xyz", false},
		{"Auth0 JWE without audience", hdr(`{"alg":"dir","enc":"A256GCM"}`) + "..aXY.Y2lwaGVy.dGFn", false},
		{"two segments", hdr(`{"alg":"RS256"}`) + ".e30", false},
		{"four segments", hdr(`{"alg":"RS256"}`) + ".e30.c2ln.x", false},
		{"padding", hdr(`{"alg":"RS256"}`) + "=.e30.c2ln", false},
		{"standard base64", "eyJhbGciOiJSUzI1NiJ9.e3+/.c2ln", false},
		{"header not JSON", hdr("alg") + ".e30.c2ln", false},
		{"empty header", ".e30.c2ln", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		if got := IsJWS(tc.token); got != tc.want {
			t.Errorf("%s: IsJWS = %v; want %v", tc.name, got, tc.want)
		}
	}
}

// named records which verifier a token reached.
type named struct {
	name string
	got  *[]string
}

func (n named) Verify(context.Context, string) (*Principal, error) {
	*n.got = append(*n.got, n.name)
	return &Principal{Subject: n.name}, nil
}

func TestByShape(t *testing.T) {
	jwt := jwtShaped
	tests := []struct {
		name      string
		opaque    bool // an opaque verifier is configured
		token     string
		reachesTo string
	}{
		{"JWT to the JWT verifier", true, jwt, "jwt"},
		{"opaque to the opaque verifier", true, "opaque-token", "opaque"},
		{"JWE to the opaque verifier", true, "eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn", "opaque"},
		{"opaque without an opaque verifier: JWT explains", false, "opaque-token", "jwt"},
	}
	for _, tc := range tests {
		var got []string
		s := ByShape{JWT: named{"jwt", &got}}
		if tc.opaque {
			s.Opaque = named{"opaque", &got}
		}
		if _, err := s.Verify(context.Background(), tc.token); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tc.reachesTo {
			t.Errorf("%s: reached %v; want %s", tc.name, got, tc.reachesTo)
		}
	}
}

func TestAuth0OpaqueRejectsAndNamesTheFix(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	clk := newClock()
	a := &Auth0Opaque{Resource: resource, Log: zap.New(core), Now: clk.Now}
	for range 5 {
		_, err := a.Verify(context.Background(), "opaque-auth0-token")
		te, ok := err.(*TokenError)
		if !ok || !strings.Contains(te.Reason, "not a JWT for this API") {
			t.Fatalf("err = %v", err)
		}
		if strings.ContainsAny(te.Reason, "\"\\") {
			t.Fatalf("reason cannot be an error_description: %q", te.Reason)
		}
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("logged %d lines for 5 rejections within a minute; want 1", n)
	}
	entry := logs.All()[0]
	fields := entry.ContextMap()
	fix, _ := fields["fix"].(string)
	for _, want := range []string{"Identifier is exactly RESOURCE_SERVER_URL", "Default Audience", "Resource Parameter Compatibility Profile"} {
		if !strings.Contains(fix, want) {
			t.Errorf("fix %q does not mention %q", fix, want)
		}
	}
	if fields["api_identifier"] != resource {
		t.Errorf("api_identifier = %v", fields["api_identifier"])
	}
	if strings.Contains(entry.Message+fix, "opaque-auth0-token") {
		t.Fatal("the token was logged")
	}
	clk.Advance(61 * time.Second)
	_, _ = a.Verify(context.Background(), "opaque-auth0-token")
	if n := logs.Len(); n != 2 {
		t.Fatalf("logged %d lines after a minute; want 2", n)
	}
}

// Auth0's JWT access tokens, as its default ("Auth0") token profile shapes
// them, through real discovery of a trailing-slash issuer.
func TestAuth0Tokens(t *testing.T) {
	iss := testissuer.New(t, "/")
	if !strings.HasSuffix(iss.URL, "/") {
		t.Fatalf("issuer %q has no trailing slash", iss.URL)
	}
	is := NewIssuer(iss.URL, "", iss.Server.Client(), time.Hour, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go is.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for is.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("issuer not ready: %v", is.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	jwtv, err := NewJWTVerifier(JWTOptions{Issuer: iss.URL, Audiences: []string{resource}, Keys: is.Keys, CacheSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	v := ByShape{JWT: jwtv, Opaque: &Auth0Opaque{Resource: resource, Log: zap.New(core)}}

	userinfo := strings.TrimSuffix(iss.URL, "/") + "/userinfo"
	auth0 := func(edit func(testissuer.Claims)) string {
		c := iss.Claims(resource)
		delete(c, "client_id") // the Auth0 profile names the client in azp
		c["azp"] = "auth0-client-id"
		c["aud"] = []string{resource, userinfo}
		c["scope"] = "openid profile mcp:read"
		if edit != nil {
			edit(c)
		}
		return iss.Sign(t, c, nil, "JWT", nil)
	}
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"typ JWT, azp, aud array with /userinfo, trailing-slash iss", auth0(nil), ""},
		{"RFC 9068 profile: at+jwt and client_id", iss.Token(t, iss.Claims(resource)), ""},
		{"iss without the trailing slash", auth0(func(c testissuer.Claims) { c["iss"] = strings.TrimSuffix(iss.URL, "/") }), "iss does not match"},
		{"aud only /userinfo (an ID-token-style audience)", auth0(func(c testissuer.Claims) { c["aud"] = []string{userinfo} }), "aud does not contain"},
		{"opaque token (no audience requested)", "QkT3vXh1Zb9mR2sLw8yNp4cJ6dFa0gEu", "not a JWT for this API"},
		{"JWE (Auth0's current opaque form)", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiaXNzIjoiaHR0cHM6Ly90ZW5hbnQuYXV0aDAuY29tLyJ9..aXY.Y2lwaGVy.dGFn", "not a JWT for this API"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p.Subject != "alice" || p.ClientID == "" {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			te, ok := err.(*TokenError)
			if !ok || !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("err = %v; want %q", err, tc.reason)
			}
		})
	}
	p, _ := v.Verify(context.Background(), auth0(nil))
	if p.ClientID != "auth0-client-id" || strings.Join(p.Scopes, " ") != "openid profile mcp:read" {
		t.Fatalf("azp and scope: %+v", p)
	}
	if logs.Len() != 1 {
		t.Fatalf("opaque rejections logged %d lines; want 1", logs.Len())
	}
}
