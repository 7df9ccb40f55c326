package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/internal/testendpoints"
	"github.com/toolgate/toolgate/internal/testissuer"
)

// checkRun runs "toolgate check" with args and stdin and returns its stdout,
// stderr and exit status.
func checkRun(t *testing.T, environ []string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCheck(context.Background(), args, environ, stdin, &out, &errOut)
	code := 0
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		code = int(ec)
	case err != nil:
		t.Fatalf("runCheck: %v", err)
	}
	return out.String(), errOut.String(), code
}

// checkJSON is the --json report as a script reads it.
type checkJSON struct {
	Checks []struct {
		Name, Status, Detail, Fix string
	} `json:"checks"`
	Token *struct {
		Accepted bool   `json:"accepted"`
		Reason   string `json:"reason"`
		Failures []struct {
			Check, Expected, Actual, Fix string
		} `json:"failures"`
	} `json:"token"`
}

func decodeCheck(t *testing.T, out string) checkJSON {
	t.Helper()
	var r checkJSON
	d := json.NewDecoder(strings.NewReader(out))
	if err := d.Decode(&r); err != nil {
		t.Fatalf("--json output %v:\n%s", err, out)
	}
	return r
}

func gateEnv(g *gate, extra ...string) []string {
	return append([]string{
		"UPSTREAM_URL=" + g.up.URL,
		"RESOURCE_SERVER_URL=" + g.mcp,
		"AUTHORIZATION_SERVER_URL=" + g.iss.URL,
	}, extra...)
}

// The verdict of toolgate check and the running server's answer must be
// the same for every token: check uses the server's own verifier.
func TestCheckAgreesWithServer(t *testing.T) {
	extra := []string{"REQUIRED_SCOPES=mcp:read"}
	g := startGate(t, extra...)
	now := time.Now()
	with := func(edit func(testissuer.Claims)) string {
		c := g.iss.Claims(g.mcp)
		edit(c)
		return g.iss.Token(t, c)
	}
	tokens := []struct {
		name, token string
		status      int // the server's answer to initialize
		check       string
	}{
		{"valid", g.token(t), http.StatusOK, ""},
		{"Auth0-style typ JWT", g.iss.Sign(t, g.iss.Claims(g.mcp), nil, "JWT", nil), http.StatusOK, ""},
		{"expired", with(func(c testissuer.Claims) { c["exp"] = now.Add(-time.Hour).Unix() }), http.StatusUnauthorized, "expiry"},
		{"not yet valid", with(func(c testissuer.Claims) { c["nbf"] = now.Add(time.Hour).Unix() }), http.StatusUnauthorized, "not_before"},
		{"another audience", with(func(c testissuer.Claims) { c["aud"] = "https://api.example.com" }), http.StatusUnauthorized, "audience"},
		{"another issuer", with(func(c testissuer.Claims) { c["iss"] = "https://other.example.com/" }), http.StatusUnauthorized, "issuer"},
		{"unknown kid", g.iss.Sign(t, g.iss.Claims(g.mcp), testissuer.NewECKey(t, "nobody"), "at+jwt", nil), http.StatusUnauthorized, "kid"},
		{"wrong key", g.iss.Sign(t, g.iss.Claims(g.mcp), testissuer.NewECKey(t, "ec-1"), "at+jwt", nil), http.StatusUnauthorized, "signature"},
		{"opaque", "opaque-token-1234567890", http.StatusUnauthorized, "format"},
		{"missing scope", with(func(c testissuer.Claims) { c["scope"] = "mcp:write" }), http.StatusForbidden, "scope"},
	}
	for _, tc := range tokens {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tc.token}}})
			if resp.StatusCode != tc.status {
				t.Fatalf("server answered %d, want %d", resp.StatusCode, tc.status)
			}
			out, stderr, code := checkRun(t, gateEnv(g, extra...), strings.NewReader(tc.token+"\n"), "--json")
			r := decodeCheck(t, out)
			if r.Token == nil {
				t.Fatalf("no token report:\n%s", out)
			}
			if r.Token.Accepted != (resp.StatusCode == http.StatusOK) {
				t.Fatalf("check says accepted=%v, the server answered %d:\n%s", r.Token.Accepted, resp.StatusCode, out)
			}
			wantCode := 0
			if !r.Token.Accepted {
				wantCode = 1
				if len(r.Token.Failures) == 0 || r.Token.Failures[0].Check != tc.check {
					t.Errorf("failures %+v, want %s first", r.Token.Failures, tc.check)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, r.Token.Reason) {
					t.Errorf("reason %q is not the server's: %s", r.Token.Reason, got)
				}
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			if strings.Contains(out+stderr, tc.token) {
				t.Errorf("the output holds the token")
			}
		})
	}
}

// Opaque tokens go to the introspection endpoint, in check as in the server.
func TestCheckAgreesWithServerOnIntrospectedTokens(t *testing.T) {
	in := testendpoints.NewIntrospection(t, "toolgate", "s3cret")
	extra := []string{"INTROSPECTION_URL=" + in.URL, "INTROSPECTION_CLIENT_ID=toolgate", "INTROSPECTION_CLIENT_SECRET=s3cret"}
	g := startGate(t, extra...)
	in.Answer("opaque-active-1", in.Active(g.iss.URL, g.mcp))
	in.Answer("opaque-other-aud", in.Active(g.iss.URL, "https://api.example.com"))

	for _, tc := range []struct {
		name, token string
		status      int
		check       string
	}{
		{"active", "opaque-active-1", http.StatusOK, ""},
		{"inactive", "opaque-unknown", http.StatusUnauthorized, "verifier"},
		{"another audience", "opaque-other-aud", http.StatusUnauthorized, "verifier"},
		{"a JWT still goes to the keys", g.token(t), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tc.token}}})
			if resp.StatusCode != tc.status {
				t.Fatalf("server answered %d, want %d", resp.StatusCode, tc.status)
			}
			out, _, code := checkRun(t, gateEnv(g, extra...), strings.NewReader(tc.token), "--json")
			r := decodeCheck(t, out)
			if r.Token.Accepted != (tc.status == http.StatusOK) || (code == 0) != r.Token.Accepted {
				t.Fatalf("check says accepted=%v (exit %d), the server answered %d:\n%s", r.Token.Accepted, code, resp.StatusCode, out)
			}
			if tc.check != "" {
				if f := r.Token.Failures; len(f) != 1 || f[0].Check != tc.check || f[0].Actual != r.Token.Reason {
					t.Errorf("failures %+v", f)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, r.Token.Reason) {
					t.Errorf("reason %q is not the server's: %s", r.Token.Reason, got)
				}
			}
		})
	}
	in.SetStatus(http.StatusInternalServerError)
	out, _, code := checkRun(t, gateEnv(g, extra...), strings.NewReader("opaque-new-token"), "--json")
	r := decodeCheck(t, out)
	if code != 1 || r.Token.Accepted || r.Token.Failures[0].Check != "service" {
		t.Errorf("introspection down: exit %d, token %+v", code, r.Token)
	}
}

func TestCheckCommand(t *testing.T) {
	iss := testissuer.New(t, "")
	env := []string{
		"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
		"RESOURCE_SERVER_URL=http://127.0.0.1:8080/mcp",
		"AUTHORIZATION_SERVER_URL=" + iss.URL,
	}
	wrongAud := iss.Claims("https://api.example.com")
	wrongAudToken := iss.Token(t, wrongAud)
	signature := wrongAudToken[strings.LastIndexByte(wrongAudToken, '.')+1:]

	t.Run("setup only: warnings do not fail", func(t *testing.T) {
		out, _, code := checkRun(t, env, nil)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{
			"✓ config        configuration is valid\n",
			"✓ prm           clients fetch http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
			"! registration  no registration_endpoint",
			"                fix: enable dynamic client registration",
			"✓ jwks          " + iss.Server.URL + "/jwks: 2 usable signature keys (rsa-1 RS256, ec-1 ES256)",
			"\n0 failures, 1 warning\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("rejected token, for a person", func(t *testing.T) {
		out, stderr, code := checkRun(t, env, nil, "--token", wrongAudToken)
		if code != 1 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{
			"✗ token rejected: token is not meant for this resource",
			"  header  alg=RS256 kid=rsa-1 typ=at+jwt\n",
			"  claims  iss=" + iss.URL + " sub=alice aud=https://api.example.com exp=",
			`scope="mcp:read mcp:write" client=test-client`,
			"  ✗ audience  expected  http://127.0.0.1:8080/mcp\n",
			"              actual    https://api.example.com\n",
			"              fix: the client must request resource=http://127.0.0.1:8080/mcp",
			"\n0 failures, 1 warning; token rejected\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out+stderr, wrongAudToken) || strings.Contains(out+stderr, signature) {
			t.Error("the output holds the token or its signature")
		}
	})

	t.Run("token from stdin, pasted with its header", func(t *testing.T) {
		out, _, code := checkRun(t, env, strings.NewReader("Authorization: Bearer "+iss.Token(t, iss.Claims("http://127.0.0.1:8080/mcp"))+"\n"), "--token", "-")
		if code != 0 || !strings.Contains(out, "✓ token accepted") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})

	t.Run("json", func(t *testing.T) {
		out, _, code := checkRun(t, env, strings.NewReader(wrongAudToken), "--json")
		r := decodeCheck(t, out)
		if code != 1 || r.Token == nil || r.Token.Accepted || len(r.Checks) == 0 {
			t.Fatalf("exit %d, report %+v", code, r)
		}
		f := r.Token.Failures
		if len(f) != 1 || f[0].Check != "audience" || f[0].Expected != "http://127.0.0.1:8080/mcp" || f[0].Actual != "https://api.example.com" || f[0].Fix == "" {
			t.Errorf("failures %+v", f)
		}
		if c := r.Checks[0]; c.Name != "config" || c.Status != "ok" {
			t.Errorf("first check %+v", c)
		}
		if strings.Contains(out, wrongAudToken) || strings.Contains(out, signature) {
			t.Error("the JSON holds the token or its signature")
		}
		out, _, _ = checkRun(t, env, nil, "--json")
		if !strings.Contains(out, `"token": null`) {
			t.Errorf("without a token, token is not null:\n%s", out)
		}
	})

	t.Run("invalid configuration", func(t *testing.T) {
		bad := []string{"RESOURCE_SERVER_URL=http://mcp.example.com/mcp", "LOG_FORMAT=xml"}
		out, _, code := checkRun(t, bad, nil)
		if code != 2 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{
			"✗ config  UPSTREAM_URL is required",
			"✗ config  AUTHORIZATION_SERVER_URL is empty, so toolgate is the authorization server",
			"✗ config  RESOURCE_SERVER_URL must use https",
			"✗ config  LOG_FORMAT must be json or console",
			"configuration invalid",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		out, _, code = checkRun(t, bad, nil, "--json")
		r := decodeCheck(t, out)
		if code != 2 || len(r.Checks) != 4 || r.Checks[0].Status != "fail" || r.Token != nil {
			t.Errorf("exit %d, report %+v", code, r)
		}
		_, _, code = checkRun(t, append(env, "TOOL_POLICY_FILE=/nonexistent/policy.yaml"), nil)
		if code != 2 {
			t.Errorf("unreadable policy file: exit %d", code)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		_, stderr, code := checkRun(t, env, nil, wrongAudToken)
		if code != 2 || strings.Contains(stderr, wrongAudToken) || !strings.Contains(stderr, "takes no arguments") {
			t.Errorf("positional token: exit %d, stderr %q", code, stderr)
		}
		if _, stderr, code := checkRun(t, env, strings.NewReader("  \n"), "--token", "-"); code != 2 || !strings.Contains(stderr, "empty") {
			t.Errorf("empty stdin with --token -: exit %d, stderr %q", code, stderr)
		}
		if _, _, code := checkRun(t, env, nil, "--bogus"); code != 2 {
			t.Errorf("unknown flag: exit %d", code)
		}
		if _, stderr, code := checkRun(t, env, nil, "--timeout", wrongAudToken); code != 2 || strings.Contains(stderr, wrongAudToken) {
			t.Errorf("token in the wrong flag: exit %d, stderr %q", code, stderr)
		}
		if _, stderr, code := checkRun(t, env, nil, "-h"); code != 0 || !strings.Contains(stderr, "Exit status: 0 all good") {
			t.Errorf("-h: exit %d, stderr %q", code, stderr)
		}
	})
}
