package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

type rawReq struct {
	method, path, body string
	header             http.Header
	chunked            bool
}

func (g *gate) do(t *testing.T, r rawReq) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/mcp"
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(r.method, g.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range r.header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestGatewayAnswers(t *testing.T) {
	g := startGate(t, "REQUIRED_SCOPES=mcp:read", "SCOPES_SUPPORTED=mcp:read mcp:write", "MAX_BODY_BYTES=2048")
	tok := g.token(t)
	rm := `resource_metadata="` + g.base + `/.well-known/oauth-protected-resource/mcp"`
	noScope := g.iss.Claims(g.mcp)
	noScope["scope"] = "other"
	tokNoScope := g.iss.Token(t, noScope)
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 3000) + `"}}`

	tests := []struct {
		name       string
		req        rawReq
		status     int
		challenge  string // exact WWW-Authenticate, "" for none
		bodyHas    string
		reachesUps bool
	}{
		{name: "no token", req: rawReq{body: initBody}, status: 401,
			challenge: `Bearer ` + rm + `, scope="mcp:read"`},
		{name: "no token on GET stream", req: rawReq{method: "GET"}, status: 401,
			challenge: `Bearer ` + rm + `, scope="mcp:read"`},
		{name: "no token on DELETE", req: rawReq{method: "DELETE"}, status: 401,
			challenge: `Bearer ` + rm + `, scope="mcp:read"`},
		{name: "another scheme", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Basic YTpi"}}}, status: 401,
			challenge: `Bearer ` + rm + `, error_description="use the Bearer authentication scheme", scope="mcp:read"`},
		{name: "garbage token", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer abc.def.ghi"}}}, status: 401,
			challenge: `Bearer ` + rm + `, error="invalid_token", error_description="signature or encoding is invalid"`},
		{name: "token for another resource", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + g.iss.Token(t, g.iss.Claims("https://other.example/mcp"))}}}, status: 401,
			challenge: `Bearer ` + rm + `, error="invalid_token", error_description="token is not meant for this resource (aud does not contain the resource URL or TOKEN_AUDIENCE)"`},
		{name: "scheme is case-insensitive", req: rawReq{body: initBody, header: http.Header{"Authorization": {"bEaReR " + tok}}}, status: 200, reachesUps: true},
		{name: "two Authorization headers", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}}, status: 400,
			challenge: `Bearer ` + rm + `, error="invalid_request", error_description="send exactly one Authorization header"`},
		{name: "token in query", req: rawReq{path: "/mcp?access_token=" + tok, body: initBody}, status: 400,
			challenge: `Bearer ` + rm + `, error="invalid_request", error_description="access tokens are accepted only in the Authorization header, never in the URL"`},
		{name: "malformed bearer", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer a b"}}}, status: 400,
			challenge: `Bearer ` + rm + `, error="invalid_request", error_description="the Authorization header is not a well-formed Bearer token"`},
		{name: "missing required scope", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tokNoScope}}}, status: 403,
			challenge: `Bearer ` + rm + `, error="insufficient_scope", error_description="the token lacks scopes this server requires", scope="mcp:read"`},
		{name: "valid token", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 200, bodyHas: `"serverInfo"`, reachesUps: true},
		{name: "body over MAX_BODY_BYTES", req: rawReq{body: big, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 413, bodyHas: "MAX_BODY_BYTES"},
		{name: "chunked body over MAX_BODY_BYTES", req: rawReq{body: big, chunked: true, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 413, bodyHas: "MAX_BODY_BYTES"},
		{name: "duplicate Mcp-Session-Id", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}, "Mcp-Session-Id": {"a", "b"}}}, status: 400},
		{name: "unknown path", req: rawReq{path: "/other", body: initBody}, status: 404},
		{name: "PUT is not an MCP method", req: rawReq{method: "PUT", body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 405},
		{name: "PATCH without a token", req: rawReq{method: "PATCH", body: initBody}, status: 405},
		{name: "GET with a body", req: rawReq{method: "GET", body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 400},
		{name: "DELETE with a chunked body", req: rawReq{method: "DELETE", body: initBody, chunked: true, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 400},
		{name: "session header spelled with underscores", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}, "Mcp_Session_Id": {"x"}}}, status: 400},
		{name: "duplicate key in body", req: rawReq{body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"echo"}}`, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 400, bodyHas: `"code":-32600`},
		{name: "body that is not JSON", req: rawReq{body: `{"jsonrpc":"2.0",`, header: http.Header{"Authorization": {"Bearer " + tok}}}, status: 400},
		{name: "compressed body", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}, "Content-Encoding": {"gzip"}}}, status: 415},
		{name: "non-UTF-8 charset", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json; charset=utf-16"}}}, status: 400},
		{name: "Mcp-Method disagrees with body", req: rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}, "Mcp-Method": {"tools/list"}}}, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.up.Requests()
			resp, body := g.do(t, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tc.challenge)
			}
			if tc.bodyHas != "" && !strings.Contains(body, tc.bodyHas) {
				t.Fatalf("body %q lacks %q", body, tc.bodyHas)
			}
			if reached := g.up.Requests() > before; reached != tc.reachesUps {
				t.Fatalf("reached upstream = %v, want %v", reached, tc.reachesUps)
			}
		})
	}
}

func TestResourceMetadata(t *testing.T) {
	g := startGate(t, "SCOPES_SUPPORTED=mcp:read,mcp:write")
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, body := g.do(t, rawReq{method: "GET", path: path, header: http.Header{"Origin": {"https://inspector.example"}}})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		var md map[string]any
		if err := json.Unmarshal([]byte(body), &md); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"resource":                 g.mcp,
			"authorization_servers":    []any{g.iss.URL},
			"bearer_methods_supported": []any{"header"},
			"scopes_supported":         []any{"mcp:read", "mcp:write"},
		}
		got, _ := json.Marshal(md)
		exp, _ := json.Marshal(want)
		if string(got) != string(exp) {
			t.Fatalf("%s:\n got %s\nwant %s", path, got, exp)
		}
	}
}

func TestCORS(t *testing.T) {
	g := startGate(t, "ALLOWED_ORIGINS=https://chatgpt.com,http://localhost:6274")
	resp, _ := g.do(t, rawReq{method: "OPTIONS", header: http.Header{
		"Origin": {"http://localhost:6274"}, "Access-Control-Request-Method": {"POST"},
		"Access-Control-Request-Headers": {"authorization,content-type,mcp-protocol-version"},
	}})
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "http://localhost:6274" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	for _, want := range []string{"Authorization", "Content-Type", "Accept", "Mcp-Session-Id", "MCP-Protocol-Version", "Last-Event-ID", "Mcp-Method", "Mcp-Name"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Allow-Headers lacks %s", want)
		}
	}
	for _, want := range []string{"WWW-Authenticate", "Mcp-Session-Id"} {
		if !strings.Contains(h.Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("Expose-Headers lacks %s", want)
		}
	}

	// The 401 a browser client gets must be readable, challenge included.
	resp, _ = g.do(t, rawReq{body: initBody, header: http.Header{"Origin": {"https://chatgpt.com"}}})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://chatgpt.com" {
		t.Fatalf("401 for allowed origin: %d %v", resp.StatusCode, resp.Header)
	}

	// An origin not on the list is refused before any auth work.
	before := g.up.Requests()
	resp, _ = g.do(t, rawReq{body: initBody, header: http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + g.token(t)}}})
	if resp.StatusCode != 403 || resp.Header.Get("WWW-Authenticate") != "" || g.up.Requests() != before {
		t.Fatalf("foreign origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = g.do(t, rawReq{method: "OPTIONS", header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}})
	if resp.StatusCode != 403 {
		t.Fatalf("foreign preflight: %d", resp.StatusCode)
	}
}

func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	g := startGate(t)
	c := g.iss.Claims(g.mcp)
	c["email"] = "alice@example.com"
	resp, _ := g.do(t, rawReq{body: initBody, header: http.Header{
		"Authorization":     {"Bearer " + g.iss.Token(t, c)},
		"X-Forwarded-User":  {"mallory"},
		"X_Forwarded_User":  {"mallory"},
		"x-forwarded-EMAIL": {"mallory@example.com"},
		"X_FORWARDED_EMAIL": {"mallory@example.com"},
		"X-Forwarded-For":   {"6.6.6.6"},
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	last, _ := g.up.Last()
	for name, vals := range last.Header {
		for _, v := range vals {
			if strings.Contains(v, "mallory") || strings.Contains(v, "6.6.6.6") {
				t.Fatalf("upstream received spoofed %s: %s", name, v)
			}
		}
	}
	if last.Header.Get("X-Forwarded-User") != "alice" || last.Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Fatalf("identity headers: %v", last.Header)
	}
	if last.Header.Get("Authorization") != "" {
		t.Fatal("Authorization forwarded without FORWARD_ACCESS_TOKEN")
	}
	if !strings.HasPrefix(last.Host, "127.0.0.1:") || last.Host == strings.TrimPrefix(g.base, "http://") {
		t.Fatalf("upstream Host = %q, want the upstream's own", last.Host)
	}
}

func TestExactBytesForwarded(t *testing.T) {
	g := startGate(t)
	// Whitespace, key order and escapes must survive byte for byte, and a
	// chunked request must arrive with a Content-Length.
	body := "{ \"method\" : \"initialize\",\"jsonrpc\":\"2.0\", \"id\":\"a\\u0041\",\n\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"r\",\"version\":\"1\"}} }"
	resp, _ := g.do(t, rawReq{body: body, chunked: true, header: http.Header{"Authorization": {"Bearer " + g.token(t)}}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	last, got := g.up.Last()
	if string(got) != body {
		t.Fatalf("upstream got %q", got)
	}
	if last.ContentLength != int64(len(body)) || len(last.TransferEncoding) != 0 {
		t.Fatalf("framing: length %d, transfer-encoding %v", last.ContentLength, last.TransferEncoding)
	}
}

func TestUpstreamDownIs502AndRecovers(t *testing.T) {
	g := startGate(t)
	tok := g.token(t)
	g.up.Server.Config.SetKeepAlivesEnabled(false)
	addr := g.up.Server.Listener.Addr().String()
	g.up.Server.Close()
	resp, body := g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}}})
	if resp.StatusCode != 502 || !strings.Contains(body, `"jsonrpc":"2.0"`) || !strings.Contains(body, "unavailable") {
		t.Fatalf("upstream down: %d %s", resp.StatusCode, body)
	}
	// Bring an upstream back on the same address: toolgate recovers alone.
	restartOn(t, g, addr)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ = g.do(t, rawReq{body: initBody, header: http.Header{"Authorization": {"Bearer " + tok}}})
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("after upstream restart: %d", resp.StatusCode)
	}
}
