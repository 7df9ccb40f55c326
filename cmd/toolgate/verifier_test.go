package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/internal/testendpoints"
	"github.com/toolgate/toolgate/internal/testissuer"
	"github.com/toolgate/toolgate/internal/testupstream"
)

const (
	testResource = "http://127.0.0.1:8080/mcp"
	googleClient = "1234-web.apps.googleusercontent.com"
)

func mustLoad(t *testing.T, env ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(append([]string{
		"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
		"RESOURCE_SERVER_URL=" + testResource,
		"LOG_LEVEL=error",
	}, env...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// metadataServer publishes an issuer's RFC 8414 document naming an
// introspection endpoint and no JWKS, as an opaque-token-only server may.
func metadataServer(t *testing.T, introspection string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                   srv.URL,
			"authorization_endpoint":   srv.URL + "/authorize",
			"token_endpoint":           srv.URL + "/token",
			"introspection_endpoint":   introspection,
			"response_types_supported": []string{"code"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func waitFor(t *testing.T, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Which validator a configuration selects, proven by what each kind of
// token meets, and what /readyz waits for.
func TestVerificationSelection(t *testing.T) {
	intro := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	google := testendpoints.NewGoogle(t)
	iss := testissuer.New(t, "")
	unreachable := "http://127.0.0.1:1"
	creds := []string{"INTROSPECTION_CLIENT_ID=toolgate", "INTROSPECTION_CLIENT_SECRET=s3cret"}
	googleEnv := []string{
		"AUTHORIZATION_SERVER_URL=https://accounts.google.com",
		"GOOGLE_CLIENT_IDS=" + googleClient,
		"JWKS_URL=" + google.JWKSURL,
		"GOOGLE_TOKENINFO_URL=" + google.TokenInfoURL,
	}
	jwtToken := iss.Token(t, iss.Claims(testResource))
	idToken := google.IDToken(t, google.IDClaims(googleClient))
	google.AddAccessToken("ya29.a0-access", google.AccessTokenInfo(googleClient))
	intro.Answer("opaque-known", intro.Active(unreachable, testResource))
	intro.Answer(jwtToken, intro.Active(iss.URL, testResource))
	md := metadataServer(t, intro.URL)
	intro.Answer("opaque-discovered", intro.Active(md.URL, testResource))

	type probe struct {
		token string
		want  string // "ok", "not-ready" (503) or a substring of the invalid_token reason
	}
	tests := []struct {
		name        string
		env         []string
		run         bool // run the background loading and wait for readiness
		readyAtOnce bool
		probes      []probe
	}{
		{"Auth0, auto: opaque tokens are explained", []string{"AUTHORIZATION_SERVER_URL=https://tenant.us.auth0.com/"}, false, false, []probe{
			{"opaque-token", "not a JWT for this API"},
			{jwtToken, "not-ready"},
		}},
		{"generic, auto, no introspection: opaque tokens are not JWTs", []string{"AUTHORIZATION_SERVER_URL=" + iss.URL}, true, false, []probe{
			{"opaque-token", "it may be an opaque token"},
			{jwtToken, "ok"},
		}},
		{"generic, auto, introspection: JWTs by keys, opaque tokens introspected", append([]string{"AUTHORIZATION_SERVER_URL=" + iss.URL, "INTROSPECTION_URL=" + intro.URL}, creds...), true, false, []probe{
			{"opaque-known", "iss does not match"}, // the answer names another issuer
			{jwtToken, "ok"},
			{"opaque-unknown", "not active"},
		}},
		{"JWT forced: no provider hint, no introspection", []string{"AUTHORIZATION_SERVER_URL=https://tenant.us.auth0.com/", "TOKEN_VALIDATOR=jwt"}, false, false, []probe{
			{"opaque-token", "it may be an opaque token"},
		}},
		{"introspection forced with a URL: every token introspected, ready at once", append([]string{"AUTHORIZATION_SERVER_URL=" + unreachable, "TOKEN_VALIDATOR=introspection", "INTROSPECTION_URL=" + intro.URL}, creds...), false, true, []probe{
			{"opaque-known", "ok"},
			{jwtToken, "iss does not match"}, // introspected, not verified by keys
		}},
		{"introspection forced, endpoint from metadata", append([]string{"AUTHORIZATION_SERVER_URL=" + md.URL, "TOKEN_VALIDATOR=introspection"}, creds...), true, false, []probe{
			{"opaque-discovered", "ok"},
		}},
		{"Google: ID tokens by keys, access tokens by tokeninfo", googleEnv, true, false, []probe{
			{idToken, "ok"},
			{"ya29.a0-access", "ok"},
			{"ya29.a0-unknown", "does not recognise"},
			{jwtToken, "Google does not publish"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVerification(mustLoad(t, tc.env...), http.DefaultClient, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if err := v.ready(); (err == nil) != tc.readyAtOnce {
				t.Fatalf("ready before loading = %v", err)
			}
			if tc.run {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go v.run(ctx)
				waitFor(t, v.ready)
			}
			for _, p := range tc.probes {
				got, err := v.verifier.Verify(context.Background(), p.token)
				var te *auth.TokenError
				switch {
				case p.want == "ok":
					if err != nil || got == nil {
						t.Errorf("%.20s…: %v", p.token, err)
					}
				case p.want == "not-ready":
					if !errors.Is(err, auth.ErrNotReady) {
						t.Errorf("%.20s…: %v; want not ready", p.token, err)
					}
				case !errors.As(err, &te) || !strings.Contains(te.Reason, p.want):
					t.Errorf("%.20s…: %v; want %q", p.token, err, p.want)
				}
			}
		})
	}
}

// /readyz tells the truth about what is missing.
func TestVerificationReadiness(t *testing.T) {
	creds := []string{"INTROSPECTION_CLIENT_ID=toolgate", "INTROSPECTION_CLIENT_SECRET=s3cret"}
	md := metadataServer(t, "") // publishes no introspection_endpoint
	v, err := newVerification(mustLoad(t, append([]string{"AUTHORIZATION_SERVER_URL=" + md.URL, "TOKEN_VALIDATOR=introspection"}, creds...)...), http.DefaultClient, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go v.run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := v.ready()
		if err != nil && strings.Contains(err.Error(), "INTROSPECTION_URL") {
			break // metadata loaded, and it says what to set
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("ready = %v; want not ready, naming INTROSPECTION_URL", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Google is ready when its keys are, not before.
	g := testendpoints.NewGoogle(t)
	g.SetStatus(503)
	v, err = newVerification(mustLoad(t, "AUTHORIZATION_SERVER_URL=https://accounts.google.com", "GOOGLE_CLIENT_IDS=x",
		"JWKS_URL="+g.JWKSURL, "GOOGLE_TOKENINFO_URL="+g.TokenInfoURL), http.DefaultClient, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if v.ready() == nil {
		t.Fatal("Google ready before its keys are loaded")
	}
}

// Google detection in config and in auth must agree, or GOOGLE_CLIENT_IDS
// would be demanded for one validator and used by another.
func TestGoogleDetectionAgrees(t *testing.T) {
	for _, issuer := range []string{"https://accounts.google.com", "https://tenant.auth0.com/", "https://sso.example.com/realms/x"} {
		env := []string{"AUTHORIZATION_SERVER_URL=" + issuer}
		if auth.ProviderOf(issuer) == auth.ProviderGoogle {
			env = append(env, "GOOGLE_CLIENT_IDS=x")
		}
		if got := mustLoad(t, env...).Google; got != (auth.ProviderOf(issuer) == auth.ProviderGoogle) {
			t.Errorf("%s: config says Google=%v, auth says %s", issuer, got, auth.ProviderOf(issuer))
		}
	}
}

func whoami(t *testing.T, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	return text(t, res)
}

func TestServeWithIntrospection(t *testing.T) {
	intro := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	iss := testissuer.New(t, "")
	g := startGateWith(t, iss, testupstream.New(t), true,
		"TOKEN_VALIDATOR=introspection", "INTROSPECTION_URL="+intro.URL,
		"INTROSPECTION_CLIENT_ID=toolgate", "INTROSPECTION_CLIENT_SECRET=s3cret")
	intro.Answer("opaque-alice", intro.Active(iss.URL, g.mcp))

	cs := connect(t, g, "opaque-alice", nil)
	if got := whoami(t, cs); got != "user=alice email=alice@example.com authorization=false" {
		t.Fatalf("upstream saw %q", got)
	}

	resp, body := g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer opaque-unknown"}}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("unknown token: %d %s %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}

	// The endpoint fails: a token not cached yet is neither accepted nor
	// called invalid.
	intro.SetStatus(http.StatusInternalServerError)
	intro.Answer("opaque-bob", intro.Active(iss.URL, g.mcp))
	before := g.up.Requests()
	resp, body = g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer opaque-bob"}}})
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("endpoint down: %d %s %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	if g.up.Requests() != before {
		t.Fatal("a request reached the upstream while its token could not be checked")
	}
}

func TestServeWithGoogle(t *testing.T) {
	google := testendpoints.NewGoogle(t)
	g := startGateWith(t, testissuer.New(t, ""), testupstream.New(t), true,
		"AUTHORIZATION_SERVER_URL=https://accounts.google.com",
		"GOOGLE_CLIENT_IDS="+googleClient,
		"JWKS_URL="+google.JWKSURL,
		"GOOGLE_TOKENINFO_URL="+google.TokenInfoURL)
	google.AddAccessToken("ya29.a0-alice", google.AccessTokenInfo(googleClient))
	for name, token := range map[string]string{
		"ID token":     google.IDToken(t, google.IDClaims(googleClient)),
		"access token": "ya29.a0-alice",
	} {
		cs := connect(t, g, token, nil)
		if got := whoami(t, cs); got != "user=10769150350006150715113082367 email=alice@example.com authorization=false" {
			t.Fatalf("%s: upstream saw %q", name, got)
		}
	}
	other := google.IDClaims("9999-other.apps.googleusercontent.com")
	resp, _ := g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + google.IDToken(t, other)}}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "GOOGLE_CLIENT_IDS") {
		t.Fatalf("another client's ID token: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if google.TokenInURL() {
		t.Fatal("a token was sent to tokeninfo in a URL")
	}
}
