package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/internal/testendpoints"
	"github.com/toolgate/toolgate/internal/testissuer"
)

const (
	googleClient = "1234-web.apps.googleusercontent.com"
	otherClient  = "9999-attacker.apps.googleusercontent.com"
)

// newGoogle returns a verifier against the stand-in with its keys loaded.
func newGoogle(t *testing.T, g *testendpoints.Google, mod func(*GoogleOptions)) *GoogleVerifier {
	t.Helper()
	keys := NewRemoteKeySet(g.JWKSURL, g.Server.Client())
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := GoogleOptions{
		ClientIDs:    []string{googleClient, "5678-ios.apps.googleusercontent.com"},
		Keys:         keys,
		TokenInfoURL: g.TokenInfoURL,
		Client:       g.Server.Client(),
		CacheSize:    100,
	}
	if mod != nil {
		mod(&o)
	}
	v, err := NewGoogleVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGoogleIDTokens(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	v := newGoogle(t, g, nil)
	now := time.Now()
	with := func(edit func(testissuer.Claims)) testissuer.Claims {
		c := g.IDClaims(googleClient)
		edit(c)
		return c
	}
	stranger := testissuer.NewRSAKey(t, "google-1") // Google's kid, not Google's key
	ec := testissuer.NewECKey(t, "google-1")

	tests := []struct {
		name   string
		token  string
		reason string // "" means accepted
	}{
		{"iss https://accounts.google.com", g.IDToken(t, g.IDClaims(googleClient)), ""},
		{"iss accounts.google.com", g.IDToken(t, with(func(c testissuer.Claims) { c["iss"] = "accounts.google.com" })), ""},
		{"aud is another listed client", g.IDToken(t, with(func(c testissuer.Claims) { c["aud"] = "5678-ios.apps.googleusercontent.com" })), ""},
		{"aud array containing a listed client", g.IDToken(t, with(func(c testissuer.Claims) { c["aud"] = []string{otherClient, googleClient} })), ""},
		{"expired within skew", g.IDToken(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-30 * time.Second).Unix() })), ""},
		{"no typ header", testendpoints.SignJWT(t, g.IDClaims(googleClient), g.Key, ""), ""},

		{"another issuer", g.IDToken(t, with(func(c testissuer.Claims) { c["iss"] = "https://accounts.google.com/" })), "not issued by Google"},
		{"issuer not Google at all", g.IDToken(t, with(func(c testissuer.Claims) { c["iss"] = "https://evil.example.com" })), "not issued by Google"},
		{"another client's ID token", g.IDToken(t, with(func(c testissuer.Claims) { c["aud"] = otherClient; c["azp"] = googleClient })), "aud is not in GOOGLE_CLIENT_IDS"},
		{"audience is this resource, not a client", g.IDToken(t, with(func(c testissuer.Claims) { c["aud"] = resource })), "aud is not in GOOGLE_CLIENT_IDS"},
		{"expired beyond skew", g.IDToken(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-61 * time.Second).Unix() })), "expired"},
		{"no exp", g.IDToken(t, with(func(c testissuer.Claims) { delete(c, "exp") })), "no expiry"},
		{"iat in the future", g.IDToken(t, with(func(c testissuer.Claims) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "issued in the future"},
		{"nbf in the future", g.IDToken(t, with(func(c testissuer.Claims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), "not valid yet"},
		{"no sub", g.IDToken(t, with(func(c testissuer.Claims) { delete(c, "sub") })), "no subject"},
		{"unknown kid", testendpoints.SignJWT(t, g.IDClaims(googleClient), testissuer.NewRSAKey(t, "elsewhere"), "JWT"), "Google does not publish"},
		{"Google's kid, another key", testendpoints.SignJWT(t, g.IDClaims(googleClient), stranger, "JWT"), "signature"},
		{"ES256 is not Google's algorithm", testendpoints.SignJWT(t, g.IDClaims(googleClient), ec, "JWT"), "signed with RS256"},
		{"unsigned", b64(map[string]string{"alg": "none", "kid": "google-1"}) + "." + b64(g.IDClaims(googleClient)) + ".", "signed with RS256"},
		{"typ of another kind of JWT", testendpoints.SignJWT(t, g.IDClaims(googleClient), g.Key, "logout+jwt"), "not an access token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p.Subject != "10769150350006150715113082367" || p.Email != "alice@example.com" || p.ClientID != googleClient {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !strings.Contains(te.Reason, tc.reason) {
				t.Fatalf("err = %v, want a TokenError containing %q", err, tc.reason)
			}
			if strings.Contains(te.Reason, "evil.example.com") || strings.Contains(te.Reason, otherClient) {
				t.Fatalf("the reason quotes a claim value: %q", te.Reason)
			}
		})
	}
}

func TestGoogleIDTokenEmailOnlyWhenVerified(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	v := newGoogle(t, g, nil)
	for _, verified := range []any{false, "false", nil} {
		c := g.IDClaims(googleClient)
		c["email_verified"] = verified
		p, err := v.Verify(context.Background(), g.IDToken(t, c))
		if err != nil {
			t.Fatal(err)
		}
		if p.Email != "" || p.Subject == "" {
			t.Fatalf("email_verified=%v: principal %+v; the unverified email must not be passed on", verified, p)
		}
	}
}

func TestGoogleIDTokenNotReadyAndCache(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	clk := newClock()
	keys := NewRemoteKeySet(g.JWKSURL, g.Server.Client())
	v, err := NewGoogleVerifier(GoogleOptions{ClientIDs: []string{googleClient}, Keys: keys, TokenInfoURL: g.TokenInfoURL, CacheSize: 10, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := g.IDClaims(googleClient)
	c["exp"] = clk.Now().Add(2 * time.Minute).Unix()
	token := g.IDToken(t, c)
	if _, err := v.Verify(context.Background(), token); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before keys: %v; want ErrNotReady", err)
	}
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	// The cached verdict ends with the token.
	clk.Advance(2*time.Minute + MaxSkew + time.Second)
	if _, err := v.Verify(context.Background(), token); !IsTokenError(err) {
		t.Fatalf("after exp: %v; want expired", err)
	}
}

func TestGoogleAccessTokens(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	v := newGoogle(t, g, nil)
	now := time.Now()
	with := func(edit func(map[string]any)) map[string]any {
		i := g.AccessTokenInfo(googleClient)
		edit(i)
		return i
	}
	tests := []struct {
		name  string
		info  map[string]any // nil: Google does not know the token
		email string
		err   string // "" means accepted
	}{
		{"as tokeninfo answers", g.AccessTokenInfo(googleClient), "alice@example.com", ""},
		{"numbers as JSON numbers", with(func(i map[string]any) {
			i["exp"] = now.Add(time.Hour).Unix()
			i["expires_in"] = 3599
			i["email_verified"] = true
		}), "alice@example.com", ""},
		{"azp listed, aud not", with(func(i map[string]any) { i["aud"] = otherClient }), "alice@example.com", ""},
		{"aud listed, azp not", with(func(i map[string]any) { i["azp"] = otherClient }), "alice@example.com", ""},
		{"only expires_in", with(func(i map[string]any) { delete(i, "exp") }), "alice@example.com", ""},
		{"email not verified is dropped", with(func(i map[string]any) { i["email_verified"] = "false" }), "", ""},
		{"no email scope", with(func(i map[string]any) { delete(i, "email"); delete(i, "email_verified") }), "", ""},

		{"unknown, expired or revoked", nil, "", "does not recognise"},
		{"issued to another client", with(func(i map[string]any) { i["aud"] = otherClient; i["azp"] = otherClient }), "", "GOOGLE_CLIENT_IDS"},
		{"no expiry", with(func(i map[string]any) { delete(i, "exp"); delete(i, "expires_in") }), "", "no expiry"},
		{"expired", with(func(i map[string]any) { i["exp"] = now.Add(-2 * time.Minute).Unix() }), "", "expired"},
		{"no user", with(func(i map[string]any) { delete(i, "sub") }), "", "openid scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := "ya29.a0" + strings.ReplaceAll(tc.name, " ", "_")
			if tc.info != nil {
				g.AddAccessToken(token, tc.info)
			}
			p, err := v.Verify(context.Background(), token)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p.Subject != "10769150350006150715113082367" || p.Email != tc.email || p.ClientID == "" || p.Expiry.IsZero() ||
					strings.Join(p.Scopes, " ") != "openid https://www.googleapis.com/auth/userinfo.email" {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !strings.Contains(te.Reason, tc.err) {
				t.Fatalf("err = %v, want a TokenError containing %q", err, tc.err)
			}
		})
	}
	if g.TokenInURL() {
		t.Fatal("an access token was sent in a URL")
	}
}

// A token that happens to have JWT-like dots is still an access token
// unless its first segment is a JSON header.
func TestGoogleDottedAccessTokenGoesToTokeninfo(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	v := newGoogle(t, g, nil)
	token := "ya29.a0AfB_byC.xyz"
	g.AddAccessToken(token, g.AccessTokenInfo(googleClient))
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
}

func TestGoogleTokeninfoFailsClosed(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	token := "ya29.a0good"
	g.AddAccessToken(token, g.AccessTokenInfo(googleClient))
	tests := []struct {
		name  string
		setup func()
		mod   func(*GoogleOptions)
		want  string
	}{
		{"server error", func() { g.SetStatus(500) }, nil, "status 500"},
		{"quota", func() { g.SetStatus(429) }, nil, "status 429"},
		{"forbidden", func() { g.SetStatus(403) }, nil, "status 403"},
		{"not JSON", func() { g.SetRaw("<html>") }, nil, "JSON"},
		{"too large", func() { g.SetRaw(`{"aud":"` + strings.Repeat("x", maxResponseBytes) + `"}`) }, nil, "larger than"},
		{"timeout", func() { g.SetDelay(150 * time.Millisecond) }, func(o *GoogleOptions) { o.Timeout = 30 * time.Millisecond }, "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.SetStatus(0)
			g.SetRaw("")
			g.SetDelay(0)
			tc.setup()
			p, err := newGoogle(t, g, tc.mod).Verify(context.Background(), token)
			if err == nil || p != nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrUnavailable) || IsTokenError(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrUnavailable saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the error repeats the token: %v", err)
			}
		})
	}
}

func TestGoogleTokeninfoCache(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	clk := newClock()
	v := newGoogle(t, g, func(o *GoogleOptions) { o.Now = clk.Now; o.CacheSize = 5 })
	ctx := context.Background()
	info := g.AccessTokenInfo(googleClient)
	info["exp"] = clk.Now().Add(30 * time.Minute).Unix()
	g.AddAccessToken("ya29.a0cached", info)
	for range 3 {
		if _, err := v.Verify(ctx, "ya29.a0cached"); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(29 * time.Minute) // cached until the token expires
	if _, err := v.Verify(ctx, "ya29.a0cached"); err != nil {
		t.Fatal(err)
	}
	if n := g.Calls(); n != 1 {
		t.Fatalf("tokeninfo calls = %d; want 1", n)
	}
	clk.Advance(2 * time.Minute)
	_, _ = v.Verify(ctx, "ya29.a0cached") // expired: asked again
	if n := g.Calls(); n != 2 {
		t.Fatalf("tokeninfo calls = %d; want 2 once the token expired", n)
	}
	for i := range 20 {
		tok := "ya29.a0many" + string(rune('a'+i))
		g.AddAccessToken(tok, g.AccessTokenInfo(googleClient))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.shape.Opaque.(*googleTokenInfo).checks.accepted.len(); n > 5 {
		t.Fatalf("cache holds %d; bound is 5", n)
	}
}

func TestGoogleOptions(t *testing.T) {
	keys := NewRemoteKeySet("http://127.0.0.1:1/certs", nil)
	if _, err := NewGoogleVerifier(GoogleOptions{Keys: keys}); err == nil {
		t.Fatal("accepted no client IDs")
	}
	if _, err := NewGoogleVerifier(GoogleOptions{ClientIDs: []string{googleClient}}); err == nil {
		t.Fatal("accepted no keys")
	}
}
