package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/internal/testissuer"
	"github.com/toolgate/toolgate/internal/testupstream"
)

const testPolicy = `
default: [{type: oauth2}]
tools:
  echo:      [{type: noauth}]
  whoami:    [{type: noauth}, {type: oauth2, scopes: []}]
  countdown: [{type: oauth2, scopes: [mcp:admin]}]
`

// startPolicyGate runs toolgate in per-tool mode in front of up.
func startPolicyGate(t *testing.T, up *testupstream.Upstream, extra ...string) *gate {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateWith(t, testissuer.New(t, ""), up, true, append([]string{"TOOL_POLICY_FILE=" + file}, extra...)...)
}

// rpc posts one JSON-RPC body in a fresh anonymous or authenticated
// session-less exchange and decodes the JSON-RPC reply, SSE or JSON.
func rpc(t *testing.T, g *gate, token, session, body string) (*http.Response, map[string]any) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		h.Set("Mcp-Session-Id", session)
	}
	resp, raw := g.do(t, rawReq{body: body, header: h})
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.Lines(raw) {
			if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: "); ok {
				raw = data
			}
		}
	}
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("reply %q: %v", raw, err)
		}
	}
	return resp, out
}

// session opens an MCP session with a raw initialize and returns its id.
func session(t *testing.T, g *gate, token string) string {
	t.Helper()
	resp, _ := rpc(t, g, token, "", initBody)
	if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %v", resp.StatusCode, resp.Header)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	resp, _ = rpc(t, g, token, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if resp.StatusCode != 202 {
		t.Fatalf("initialized: %d", resp.StatusCode)
	}
	return sid
}

func callBody(id, tool string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

func TestPerToolPolicy(t *testing.T) {
	for _, up := range []struct {
		name string
		new  func(testing.TB) *testupstream.Upstream
	}{{"sse", testupstream.New}, {"json", testupstream.NewJSON}} {
		t.Run(up.name, func(t *testing.T) {
			g := startPolicyGate(t, up.new(t))
			rm := `resource_metadata="` + g.base + `/.well-known/oauth-protected-resource/mcp"`
			anon := session(t, g, "")

			// tools/list is anonymous and every tool carries its schemes,
			// top level and in _meta.
			_, list := rpc(t, g, "", anon, `{"jsonrpc":"2.0","id":"L1","method":"tools/list"}`)
			want := map[string]string{
				"echo":      `[{"type":"noauth"}]`,
				"whoami":    `[{"type":"noauth"},{"type":"oauth2","scopes":[]}]`,
				"countdown": `[{"type":"oauth2","scopes":["mcp:admin"]}]`,
				"declared":  `[{"type":"noauth"}]`, // the upstream's own declaration
			}
			tools := list["result"].(map[string]any)["tools"].([]any)
			if len(tools) != len(want) {
				t.Fatalf("tools/list = %v", list)
			}
			for _, tool := range tools {
				tool := tool.(map[string]any)
				name := tool["name"].(string)
				top, _ := json.Marshal(tool["securitySchemes"])
				meta, _ := json.Marshal(tool["_meta"].(map[string]any)["securitySchemes"])
				var w any
				_ = json.Unmarshal([]byte(want[name]), &w)
				canon, _ := json.Marshal(w) // map keys sorted, as top and meta are
				if string(top) != string(canon) || string(meta) != string(canon) {
					t.Errorf("%s: securitySchemes %s, _meta %s, want %s", name, top, meta, want[name])
				}
				if tool["inputSchema"] == nil || tool["description"] == nil {
					t.Errorf("%s lost its other fields: %v", name, tool)
				}
			}

			// noauth and mixed tools run anonymously, without identity.
			_, res := rpc(t, g, "", anon, callBody("2", "echo"))
			if res["result"] == nil {
				t.Fatalf("anonymous echo: %v", res)
			}
			_, res = rpc(t, g, "", anon, callBody("3", "whoami"))
			if got := toolText(res); got != "user= email= authorization=false" {
				t.Fatalf("anonymous mixed tool saw %q", got)
			}
			_, res = rpc(t, g, "", anon, callBody("4", "declared"))
			if toolText(res) != "declared ok" {
				t.Fatalf("upstream-declared noauth tool: %v", res)
			}

			// A protected tool without a token: the Apps SDK tool result,
			// with the request id verbatim, and the upstream never asked.
			before := g.up.Requests()
			resp, res := rpc(t, g, "", anon, callBody(`"req-7"`, "countdown"))
			wantChallenge := `Bearer ` + rm + `, error="invalid_request", error_description="authentication required: no access token was provided", scope="mcp:admin"`
			assertToolChallenge(t, resp, res, `"req-7"`, wantChallenge)
			if g.up.Requests() != before {
				t.Fatal("denied call reached the upstream")
			}

			// With a token: the mixed tool gets identity; the protected one
			// needs a scope the token lacks.
			tok := g.token(t)
			authed := session(t, g, tok)
			_, res = rpc(t, g, tok, authed, callBody("5", "whoami"))
			if got := toolText(res); got != "user=alice email= authorization=false" {
				t.Fatalf("mixed tool with token saw %q", got)
			}
			before = g.up.Requests()
			resp, res = rpc(t, g, tok, authed, callBody("6", "countdown"))
			assertToolChallenge(t, resp, res, `6`, `Bearer `+rm+`, error="insufficient_scope", error_description="the tool countdown needs scopes the token was not granted", scope="mcp:admin"`)
			if g.up.Requests() != before {
				t.Fatal("denied call reached the upstream")
			}
			// A token with the scope gets through.
			c := g.iss.Claims(g.mcp)
			c["scope"] = "mcp:admin"
			admin := g.iss.Token(t, c)
			adminSession := session(t, g, admin)
			_, res = rpc(t, g, admin, adminSession, `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"countdown","arguments":{"from":1}}}`)
			if toolText(res) != "liftoff" {
				t.Fatalf("countdown with scope: %v", res)
			}
		})
	}
}

func toolText(res map[string]any) string {
	r, _ := res["result"].(map[string]any)
	content, _ := r["content"].([]any)
	if len(content) != 1 {
		return ""
	}
	s, _ := content[0].(map[string]any)["text"].(string)
	return s
}

func assertToolChallenge(t *testing.T, resp *http.Response, res map[string]any, id, challenge string) {
	t.Helper()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("tool-result challenge: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate =\n  %s\nwant\n  %s", got, challenge)
	}
	gotID, _ := json.Marshal(res["id"])
	if string(gotID) != id {
		t.Fatalf("id = %s, want %s", gotID, id)
	}
	r := res["result"].(map[string]any)
	meta := r["_meta"].(map[string]any)["mcp/www_authenticate"].([]any)
	if r["isError"] != true || len(meta) != 1 || meta[0] != challenge || toolText(res) == "" {
		t.Fatalf("tool result = %v", r)
	}
}

func TestPolicyHTTPChallengesAndBatches(t *testing.T) {
	g := startPolicyGate(t, testupstream.New(t), "CHALLENGE_MODE=http")
	rm := `resource_metadata="` + g.base + `/.well-known/oauth-protected-resource/mcp"`
	anon := session(t, g, "")
	tok := g.token(t)

	tests := []struct {
		name, token, body string
		status            int
		challenge         string
	}{
		{"protected tool, no token", "", callBody("1", "countdown"), 401,
			`Bearer ` + rm + `, error_description="sign in to use the tool countdown", scope="mcp:admin"`},
		{"unknown tool falls to the default", "", callBody("1", "nope"), 401,
			`Bearer ` + rm + `, error_description="sign in to use the tool nope", scope="mcp:admin"`},
		{"non-anonymous method", "", `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`, 401,
			`Bearer ` + rm + `, error_description="sign in to use resources/list", scope="mcp:admin"`},
		{"insufficient scope", tok, callBody("1", "countdown"), 403,
			`Bearer ` + rm + `, error="insufficient_scope", error_description="the tool countdown needs scopes the token was not granted", scope="mcp:admin"`},
		{"invalid token is never anonymous", "not.a.token", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 401,
			`Bearer ` + rm + `, error="invalid_token", error_description="signature or encoding is invalid"`},
		{"batch with one denied call is denied whole", "", `[` + callBody("1", "echo") + `,` + callBody("2", "countdown") + `]`, 401,
			`Bearer ` + rm + `, error_description="sign in to use the tool countdown", scope="mcp:admin"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.up.Requests()
			h := http.Header{"Mcp-Session-Id": {anon}}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			resp, body := g.do(t, rawReq{body: tc.body, header: h})
			if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("got %d %q\nwant %d %q\nbody %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge, body)
			}
			if g.up.Requests() != before {
				t.Fatal("denied request reached the upstream")
			}
		})
	}
}

// The go-sdk client connects anonymously through a per-tool gateway: its
// GET stream and DELETE are allowed because sessions may be anonymous.
func TestAnonymousSDKClientInPolicyMode(t *testing.T) {
	g := startPolicyGate(t, testupstream.New(t))
	cs := connect(t, g, "", nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || text(t, res) != "hi" {
		t.Fatalf("echo: %v %v", res, err)
	}
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"from": 1}})
	if err != nil || !res.IsError {
		t.Fatalf("protected call: %v %v", res, err)
	}
	if res.Meta["mcp/www_authenticate"] == nil {
		t.Fatalf("protected call result lacks the challenge: %v", res.Meta)
	}
}

func TestPolicyFileErrorsStopStartup(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	_ = os.WriteFile(file, []byte("tools:\n  x: [{type: apikey}]\n"), 0o600)
	iss := testissuer.New(t, "")
	err := run(context.Background(), nil, []string{
		"UPSTREAM_URL=http://127.0.0.1:1/mcp", "RESOURCE_SERVER_URL=http://127.0.0.1:1/mcp",
		"AUTHORIZATION_SERVER_URL=" + iss.URL, "TOOL_POLICY_FILE=" + file,
	})
	if err == nil || !strings.Contains(err.Error(), "TOOL_POLICY_FILE") || !strings.Contains(err.Error(), `unknown scheme type "apikey"`) {
		t.Fatalf("err = %v", err)
	}
}

// A session id is not a credential: another caller presenting it gets the
// transport's 404 for an unknown session, and nothing is forwarded.
func TestSessionsAreBoundToTheirCaller(t *testing.T) {
	g := startPolicyGate(t, testupstream.New(t))
	alice := g.token(t)
	c := g.iss.Claims(g.mcp)
	c["sub"] = "bob"
	bob := g.iss.Token(t, c)

	aliceSession := session(t, g, alice)
	before := g.up.Requests()
	for _, intruder := range []string{bob, ""} {
		resp, _ := rpc(t, g, intruder, aliceSession, callBody("1", "echo"))
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("intruder on alice's session: %d", resp.StatusCode)
		}
	}
	if g.up.Requests() != before {
		t.Fatal("a request on another caller's session reached the upstream")
	}
	if _, res := rpc(t, g, alice, aliceSession, callBody("2", "whoami")); toolText(res) != "user=alice email= authorization=false" {
		t.Fatalf("owner: %v", res)
	}

	// An anonymous session belongs to the first user who signs in on it.
	anon := session(t, g, "")
	if _, res := rpc(t, g, bob, anon, callBody("3", "whoami")); toolText(res) != "user=bob email= authorization=false" {
		t.Fatalf("upgrade: %v", res)
	}
	for _, other := range []string{alice, ""} {
		if resp, _ := rpc(t, g, other, anon, callBody("4", "echo")); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("after bob's upgrade another caller got %d", resp.StatusCode)
		}
	}
}

// A tool's challenge names REQUIRED_SCOPES too: clients ask for exactly
// the challenge's scopes on step-up, and a token with only the tool's
// would then fail the required check, looping between the two 403s.
func TestPolicyChallengeIncludesRequiredScopes(t *testing.T) {
	g := startPolicyGate(t, testupstream.New(t), "CHALLENGE_MODE=http", "REQUIRED_SCOPES=mcp:read")
	for _, tc := range []struct {
		token  string
		status int
	}{{"", http.StatusUnauthorized}, {g.token(t), http.StatusForbidden}} {
		h := http.Header{}
		if tc.token != "" {
			h.Set("Authorization", "Bearer "+tc.token)
		}
		resp, body := g.do(t, rawReq{body: callBody("1", "countdown"), header: h})
		if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != tc.status || !strings.HasSuffix(got, `scope="mcp:read mcp:admin"`) {
			t.Fatalf("got %d %q, want %d with scope=\"mcp:read mcp:admin\"\n%s", resp.StatusCode, got, tc.status, body)
		}
	}
}
