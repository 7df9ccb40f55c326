package check

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/internal/testissuer"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// reasonClass maps the verifier's reason to the check that explains it; the
// first failure of every rejected token must be that check.
var reasonClass = []struct{ reason, check string }{
	{"not a JWT", "format"},
	{"encrypted (JWE)", "format"},
	{"not a compact JWS", "format"},
	{"alg none", "alg"},
	{"symmetric algorithms", "alg"},
	{"does not fit the signing key", "alg"},
	{"not an access token", "typ"},
	{"critical extensions", "crit"},
	{"does not publish", "kid"},
	{"signature or encoding is invalid", "signature|format"},
	{"iss does not match", "issuer"},
	{"aud does not contain", "audience"},
	{"no expiry", "expiry"},
	{"has expired", "expiry"},
	{"not valid yet", "not_before"},
	{"issued in the future", "issued_at"},
	{"no subject", "subject"},
	{"lacks scopes", "scope"},
}

func classOf(reason string) string {
	for _, rc := range reasonClass {
		if strings.Contains(reason, rc.reason) {
			return rc.check
		}
	}
	return "?"
}

type failureWant struct {
	check            string
	expected, actual []string // substrings
}

func TestTokenExplanationsAgreeWithTheVerifier(t *testing.T) {
	a := newAS(t, nil, "", nil)
	rsaKey, ecKey := a.iss.Keys()[0], a.iss.Keys()[1]
	stranger := testissuer.NewRSAKey(t, "rsa-1") // the published kid, another key
	now := time.Now()
	with := func(edit func(c testissuer.Claims)) testissuer.Claims {
		c := a.claims()
		edit(c)
		return c
	}
	exp := time.Unix(now.Add(-2*time.Hour).Unix(), 0).UTC().Format(time.RFC3339)
	nbf := time.Unix(now.Add(10*time.Minute).Unix(), 0).UTC().Format(time.RFC3339)

	tests := []struct {
		name     string
		token    func() string
		env      []string
		accepted bool
		want     []failureWant // in order; the first must explain the verifier's reason
	}{
		{name: "valid", accepted: true, token: func() string { return a.iss.Token(t, a.claims()) }},
		{name: "valid: Auth0 shape (typ JWT, aud array, azp)", accepted: true, token: func() string {
			return a.iss.Sign(t, with(func(c testissuer.Claims) {
				c["aud"] = []string{resource, "https://tenant.auth0.com/userinfo"}
				delete(c, "client_id")
				c["azp"] = "abc"
			}), ecKey, "JWT", nil)
		}},
		{name: "valid: expired within the skew", accepted: true, token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-30 * time.Second).Unix() }))
		}},
		{name: "valid with the required scope", accepted: true, env: []string{"REQUIRED_SCOPES=mcp:read"}, token: func() string { return a.iss.Token(t, a.claims()) }},

		{name: "opaque", token: func() string { return "a1b2c3d4e5f6" },
			want: []failureWant{{"format", []string{"three base64url segments"}, []string{"an opaque string of 12 characters"}}}},
		{name: "JWE", token: func() string { return "aaa.bbb.ccc.ddd.eee" },
			want: []failureWant{{"format", []string{"signed JWT"}, []string{"JWE"}}}},
		{name: "JSON serialisation", token: func() string { return `{"payload":"x","signatures":[]}` },
			want: []failureWant{{"format", nil, []string{"JSON, not the compact form"}}}},
		{name: "garbage segments", token: func() string { return "a.b.c" },
			want: []failureWant{{"format", []string{"JSON header"}, []string{"not base64url JSON"}}}},
		{name: "unknown kid", token: func() string { return a.iss.Sign(t, a.claims(), testissuer.NewECKey(t, "nobody"), "at+jwt", nil) },
			want: []failureWant{{"kid", []string{"rsa-1, ec-1"}, []string{"nobody"}}}},
		{name: "published kid, another key", token: func() string { return a.iss.Sign(t, a.claims(), stranger, "at+jwt", nil) },
			want: []failureWant{{"signature", []string{"key rsa-1 of " + a.srv.URL + "/.well-known/jwks.json"}, []string{"does not verify"}}}},
		{name: "alg does not fit the key", token: func() string {
			k := *rsaKey
			k.KID = ecKey.KID
			return a.iss.Sign(t, a.claims(), &k, "at+jwt", nil)
		}, want: []failureWant{{"alg", []string{"ES256 (what key ec-1 verifies)"}, []string{"RS256"}}}},
		{name: "alg none", token: func() string {
			return b64(map[string]string{"alg": "none", "kid": "rsa-1"}) + "." + b64(a.claims()) + "."
		},
			want: []failureWant{{"alg", []string{"asymmetric"}, []string{"none"}}}},
		{name: "HS256 with the RSA public key as secret", token: func() string {
			pub, _ := x509.MarshalPKIXPublicKey(&rsaKey.Private.(*rsa.PrivateKey).PublicKey)
			signing := b64(map[string]string{"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}) + "." + b64(a.claims())
			m := hmac.New(sha256.New, pub)
			m.Write([]byte(signing))
			return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}, want: []failureWant{{"alg", []string{"asymmetric"}, []string{"HS256 (a shared-secret HMAC)"}}}},
		{name: "another kind of JWT", token: func() string { return a.iss.Sign(t, a.claims(), nil, "logout+jwt", nil) },
			want: []failureWant{{"typ", []string{"at+jwt or JWT"}, []string{"logout+jwt"}}}},
		{name: "crit header", token: func() string {
			return a.iss.Sign(t, a.claims(), nil, "at+jwt", map[string]any{"crit": []string{"exp"}, "exp": 1})
		}, want: []failureWant{{"crit", nil, []string{"crit [exp]"}}}},
		{name: "issuer with a trailing slash", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["iss"] = a.url + "/" }))
		}, want: []failureWant{{"issuer", []string{a.url}, []string{a.url + "/"}}}},
		{name: "another audience", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["aud"] = []string{"https://api.example.com", "https://x/userinfo"} }))
		}, want: []failureWant{{"audience", []string{resource}, []string{"https://api.example.com, https://x/userinfo"}}}},
		{name: "no audience", token: func() string { return a.iss.Token(t, with(func(c testissuer.Claims) { delete(c, "aud") })) },
			want: []failureWant{{"audience", []string{resource}, []string{"(none)"}}}},
		{name: "issuer and audience both wrong", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) {
				c["iss"] = "https://other.example.com"
				c["aud"] = "https://api.example.com"
			}))
		}, want: []failureWant{
			{"issuer", []string{a.url}, []string{"https://other.example.com"}},
			{"audience", []string{resource}, []string{"https://api.example.com"}},
		}},
		{name: "expired", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-2 * time.Hour).Unix() }))
		}, want: []failureWant{{"expiry", []string{"later than", "1m0s of clock skew"}, []string{exp, "(expired 2h0m0s ago)"}}}},
		{name: "no expiry", token: func() string { return a.iss.Token(t, with(func(c testissuer.Claims) { delete(c, "exp") })) },
			want: []failureWant{{"expiry", []string{"an exp claim"}, []string{"(none)"}}}},
		{name: "not yet valid", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }))
		}, want: []failureWant{{"not_before", []string{"at or before", "plus 1m0s"}, []string{nbf, "from now"}}}},
		{name: "issued in the future", token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["iat"] = now.Add(10 * time.Minute).Unix() }))
		}, want: []failureWant{{"issued_at", []string{"at or before"}, []string{nbf}}}},
		{name: "no subject", token: func() string { return a.iss.Token(t, with(func(c testissuer.Claims) { delete(c, "sub") })) },
			want: []failureWant{{"subject", []string{"sub"}, []string{"(none)"}}}},
		{name: "missing scope", env: []string{"REQUIRED_SCOPES=mcp:read mcp:admin"}, token: func() string { return a.iss.Token(t, a.claims()) },
			want: []failureWant{{"scope", []string{"mcp:read mcp:admin"}, []string{"mcp:read mcp:write; missing mcp:admin"}}}},
		{name: "expired and missing scope", env: []string{"REQUIRED_SCOPES=mcp:admin"}, token: func() string {
			return a.iss.Token(t, with(func(c testissuer.Claims) { c["exp"] = now.Add(-2 * time.Hour).Unix() }))
		}, want: []failureWant{{"expiry", nil, []string{exp}}, {"scope", []string{"mcp:admin"}, []string{"missing mcp:admin"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token()
			cfg := load(t, a.url, tc.env...)
			rep := run(t, cfg, nil, token)
			tr := rep.Token

			// The verifier the server uses, on its own.
			keys := auth.NewRemoteKeySet(a.srv.URL+"/.well-known/jwks.json", http.DefaultClient)
			if err := keys.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			v, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: cfg.AuthorizationServerURL, Audiences: cfg.Audiences, Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			p, verr := v.Verify(context.Background(), token)
			serverAccepts := verr == nil && len(p.Missing(cfg.Required)) == 0
			if tr.Accepted != serverAccepts || tr.Accepted != tc.accepted {
				t.Fatalf("check says accepted=%v, the verifier %v (err %v), the test wants %v; failures %+v", tr.Accepted, serverAccepts, verr, tc.accepted, tr.Failures)
			}
			if tr.Accepted {
				if len(tr.Failures) != 0 || tr.Reason != "" {
					t.Fatalf("accepted with failures %+v, reason %q", tr.Failures, tr.Reason)
				}
				if rep.ExitCode() != 0 {
					t.Fatalf("exit %d", rep.ExitCode())
				}
				return
			}
			if rep.ExitCode() != 1 {
				t.Errorf("exit %d, want 1", rep.ExitCode())
			}
			reason := "the token lacks scopes this server requires"
			var te *auth.TokenError
			if errors.As(verr, &te) {
				reason = te.Reason
			}
			if tr.Reason != reason {
				t.Errorf("reason %q, the verifier's %q", tr.Reason, reason)
			}
			if len(tr.Failures) == 0 || !strings.Contains("|"+classOf(reason)+"|", "|"+tr.Failures[0].Check+"|") {
				t.Fatalf("first failure %+v does not explain the verifier's reason %q (class %s)", tr.Failures, reason, classOf(reason))
			}
			if len(tr.Failures) != len(tc.want) {
				t.Fatalf("failures %+v, want %d", tr.Failures, len(tc.want))
			}
			for i, w := range tc.want {
				f := tr.Failures[i]
				if f.Check != w.check {
					t.Errorf("failure %d is %q, want %q", i, f.Check, w.check)
				}
				for _, s := range w.expected {
					if !strings.Contains(f.Expected, s) {
						t.Errorf("%s: expected %q lacks %q", f.Check, f.Expected, s)
					}
				}
				for _, s := range w.actual {
					if !strings.Contains(f.Actual, s) {
						t.Errorf("%s: actual %q lacks %q", f.Check, f.Actual, s)
					}
				}
				if f.Fix == "" {
					t.Errorf("%s: no fix", f.Check)
				}
			}
			assertNoToken(t, rep, token)
		})
	}
}

// assertNoToken fails if the report holds the token or its signature.
func assertNoToken(t *testing.T, rep *Report, token string) {
	t.Helper()
	b, _ := json.Marshal(rep)
	parts := strings.Split(token, ".")
	secret := parts[len(parts)-1]
	if strings.Contains(string(b), token) || len(secret) > 8 && strings.Contains(string(b), secret) {
		t.Fatalf("report contains the token: %s", b)
	}
}

func TestTokenHeaderAndClaimsShown(t *testing.T) {
	a := newAS(t, nil, "", nil)
	c := a.claims()
	c["aud"] = "https://api.example.com"
	rep := run(t, load(t, a.url), nil, a.iss.Token(t, c))
	h, cl := rep.Token.Header, rep.Token.Claims
	if h == nil || *h != (Header{Alg: "RS256", KID: "rsa-1", Typ: "at+jwt"}) {
		t.Errorf("header %+v", h)
	}
	if cl == nil || cl.Issuer != a.url || cl.Subject != "alice" || strings.Join(cl.Audience, ",") != "https://api.example.com" ||
		strings.Join(cl.Scopes, " ") != "mcp:read mcp:write" || cl.ClientID != "test-client" || cl.Expiry == "" || cl.IssuedAt == "" {
		t.Errorf("claims %+v", cl)
	}
}

func TestKeysNotLoaded(t *testing.T) {
	a := newAS(t, nil, "/", nil) // the metadata names another issuer: toolgate loads no keys
	rep := run(t, load(t, a.srv.URL), nil, a.iss.Token(t, a.claims()))
	f := rep.Token.Failures
	if rep.Token.Accepted || len(f) == 0 || f[0].Check != "keys" || !strings.Contains(f[0].Actual, "names another issuer") {
		t.Fatalf("token report %+v", rep.Token)
	}
	// The explanation still goes on: the token's iss has the slash.
	if f[len(f)-1].Check != "issuer" {
		t.Errorf("failures %+v", f)
	}
}

func TestDisplayKeepsClaimsPrintable(t *testing.T) {
	if got := display("a\x1b[31mb\nc"); got != "a[31mbc" {
		t.Errorf("display = %q", got)
	}
	if got := display(strings.Repeat("x", 500)); len(got) > 210 || !strings.HasSuffix(got, "…") {
		t.Errorf("display of a long value = %d bytes", len(got))
	}
}
