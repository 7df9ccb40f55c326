//go:build unix

// Package e2e_test is the black-box end-to-end test of the toolgate binary
// with real components on loopback:
//
//   - upstream: @modelcontextprotocol/server-everything, unmodified, in its
//     streamable HTTP mode (test/e2e/upstream.mjs only pins it to 127.0.0.1);
//   - authorization server: oidc-provider (test/e2e/issuer.mjs) with dynamic
//     registration, PKCE, resource indicators and RS256 JWT access tokens;
//   - client: the official MCP TypeScript SDK (test/e2e/client.mjs) logging in
//     non-interactively through discovery, registration, PKCE and token.
//
// TestEndToEnd covers whole-server mode, TestPerToolEndToEnd
// (policy_e2e_test.go) per-tool mode with test/e2e/policy-client.mjs,
// TestIntrospectionEndToEnd (introspection_e2e_test.go) opaque tokens checked
// at oidc-provider's RFC 7662 endpoint; the harness they share is in
// harness_test.go.
//
// The npm packages are pinned by test/e2e/package-lock.json; install them
// with `npm ci --prefix test/e2e`. Without them the test skips, unless CI is
// set, where it fails.
package e2e_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// requiredScope is set as REQUIRED_SCOPES; issuer.mjs knows it.
	requiredScope = "mcp:read"
	echoMessage   = "hello through toolgate"
)

func TestEndToEnd(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)

	ports := freePorts(t, 3)
	upstreamURL := fmt.Sprintf("http://127.0.0.1:%d/mcp", ports[0])
	issuerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	gateway := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	mcpURL := gateway + "/mcp"
	prmURL := gateway + "/.well-known/oauth-protected-resource/mcp"

	upstream := startProcess(t, "upstream", nodeDir, []string{fmt.Sprintf("PORT=%d", ports[0])}, "node", "upstream.mjs")
	waitTCP(t, "upstream", ports[0])

	issuer := startIssuer(t, nodeDir, ports[1], mcpURL, "k1")

	toolgate := startProcess(t, "toolgate", tmp, []string{
		"UPSTREAM_URL=" + upstreamURL,
		"RESOURCE_SERVER_URL=" + mcpURL,
		"AUTHORIZATION_SERVER_URL=" + issuerURL,
		"LISTEN_ADDR=" + strings.TrimPrefix(gateway, "http://"),
		"REQUIRED_SCOPES=" + requiredScope,
		"LOG_FORMAT=console",
	}, binary)
	waitReady(t, toolgate, gateway+"/readyz")

	t.Run("no token gets a discovery challenge", func(t *testing.T) {
		resp := postMCP(t, mcpURL, "", initializeRequest)
		assertStatus(t, resp, http.StatusUnauthorized)
		params := bearerChallenge(t, resp)
		if got := params["resource_metadata"]; got != prmURL {
			t.Errorf("challenge resource_metadata = %q, want %q", got, prmURL)
		}
		if _, ok := params["error"]; ok {
			t.Errorf("challenge without credentials must not carry error=, got %v", params)
		}
		if got := params["scope"]; got != requiredScope {
			t.Errorf("challenge scope = %q, want %q (REQUIRED_SCOPES)", got, requiredScope)
		}
	})

	t.Run("protected resource metadata", func(t *testing.T) {
		for _, url := range []string{prmURL, gateway + "/.well-known/oauth-protected-resource"} {
			prm := getPRM(t, url)
			if prm.Resource != mcpURL {
				t.Errorf("%s: resource = %q, want %q", url, prm.Resource, mcpURL)
			}
			if !slices.Equal(prm.AuthorizationServers, []string{issuerURL}) {
				t.Errorf("%s: authorization_servers = %q, want [%q]", url, prm.AuthorizationServers, issuerURL)
			}
			if !slices.Contains(prm.ScopesSupported, requiredScope) {
				t.Errorf("%s: scopes_supported = %q, want it to contain %q", url, prm.ScopesSupported, requiredScope)
			}
		}
	})

	t.Run("garbage token is invalid_token", func(t *testing.T) {
		resp := postMCP(t, mcpURL, "not-a-jwt", initializeRequest)
		assertStatus(t, resp, http.StatusUnauthorized)
		if got := bearerChallenge(t, resp)["error"]; got != "invalid_token" {
			t.Errorf("challenge error = %q, want invalid_token", got)
		}
	})

	t.Run("refused requests never reach the upstream", func(t *testing.T) {
		// server-everything logs every request it receives.
		if out := upstream.output(); strings.Contains(out, "Received MCP") {
			t.Errorf("the upstream saw a request that toolgate refused:\n%s", out)
		}
	})

	// The official SDK logs in from nothing: 401 → PRM → issuer metadata →
	// registration → PKCE authorization → token → tools/list → tools/call.
	first := runClient(t, nodeDir, mcpURL, filepath.Join(tmp, "client1"), false)
	assertClientRun(t, first, mcpURL, issuerURL, "k1")
	token := first.accessToken

	t.Run("SSE streams through toolgate", func(t *testing.T) {
		checkStreamingToolCall(t, mcpURL, token)
	})

	// Rotate the signing key: the issuer restarts with a new key on the same
	// port, toolgate keeps running and must pick the new key up by itself.
	issuer.stop()
	startIssuer(t, nodeDir, ports[1], mcpURL, "k2")
	second := runClientAfterRotation(t, nodeDir, mcpURL, filepath.Join(tmp, "client2"))
	assertClientRun(t, second, mcpURL, issuerURL, "k2")
	if !second.Login {
		t.Errorf("second run after key rotation reused a token; it must log in afresh")
	}
	if toolgate.exited() {
		t.Fatalf("toolgate exited during key rotation")
	}

	// A client that saved its state before the rotation keeps working: its
	// old token is used as long as toolgate accepts it, otherwise the SDK
	// logs in again against the restarted issuer.
	reused := runClient(t, nodeDir, mcpURL, filepath.Join(tmp, "client1"), true)
	assertClientRun(t, reused, mcpURL, issuerURL, "")
	t.Logf("saved pre-rotation state: fresh login needed = %v (token kid %v)", reused.Login, reused.Token.Header["kid"])

	t.Run("tokens never reach the logs", func(t *testing.T) {
		logs := toolgate.output()
		for i, tok := range []string{token, second.accessToken} {
			if strings.Contains(logs, tok) {
				t.Errorf("toolgate output contains access token #%d", i+1)
			}
		}
	})
}

const initializeRequest = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"toolgate-e2e-go","version":"1.0.0"}}}`

// mcpRequest is one POST to the MCP endpoint as a Streamable HTTP client
// sends it.
func mcpRequest(t *testing.T, method, url, token, sessionID, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func postMCP(t *testing.T, url, token, body string) *http.Response {
	t.Helper()
	return mcpRequest(t, http.MethodPost, url, token, "", body)
}

func assertStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		t.Fatalf("%s %s: status %d, want %d; WWW-Authenticate %q; body %s",
			resp.Request.Method, resp.Request.URL, resp.StatusCode, want, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// bearerChallenge parses the single Bearer challenge of a response
// (RFC 6750 §3: auth-params of quoted strings).
func bearerChallenge(t *testing.T, resp *http.Response) map[string]string {
	t.Helper()
	values := resp.Header.Values("WWW-Authenticate")
	if len(values) != 1 {
		t.Fatalf("want one WWW-Authenticate header, got %q", values)
	}
	return parseBearer(t, values[0])
}

type protectedResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

func getPRM(t *testing.T, url string) protectedResourceMetadata {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	assertStatus(t, resp, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	var prm protectedResourceMetadata
	if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return prm
}

// clientRun is the JSON line client.mjs prints, plus the token it saved.
type clientRun struct {
	OK       bool     `json:"ok"`
	Login    bool     `json:"login"`
	Tools    []string `json:"tools"`
	Echo     string   `json:"echo"`
	Progress int      `json:"progress"`
	Issuer   string   `json:"issuer"`
	Token    struct {
		Header map[string]any `json:"header"`
		Claims map[string]any `json:"claims"`
	} `json:"token"`
	AuthorizationRequest map[string]string `json:"authorizationRequest"`
	Registered           bool              `json:"registered"`
	ClientID             string            `json:"clientId"`
	Pages                []string          `json:"pages"`
	RefreshToken         bool              `json:"refreshToken"`
	Called               *struct {
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
	} `json:"called"`

	accessToken string
}

// runClient runs client.mjs; state is a path prefix for its saved state and
// token files; reuse starts it from the state saved by an earlier run.
func runClient(t *testing.T, nodeDir, mcpURL, state string, reuse bool) clientRun {
	t.Helper()
	run, err := execClient(nodeDir, mcpURL, state, reuse)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// runClientAfterRotation logs in afresh right after the issuer restarted
// with a new key. toolgate must accept the first token signed with it: an
// unknown kid makes it refetch the JWKS at once (only repeated misses are
// rate-limited), and no restart of toolgate is involved.
func runClientAfterRotation(t *testing.T, nodeDir, mcpURL, state string) clientRun {
	t.Helper()
	run, err := execClient(nodeDir, mcpURL, state, false)
	if err != nil {
		t.Fatalf("token signed with the rotated key was refused:\n%s", failureSummary(err))
	}
	return run
}

// failureSummary keeps the lines of a client.mjs failure that say what
// went wrong, without the stack.
func failureSummary(err error) string {
	var keep []string
	for line := range strings.Lines(err.Error()) {
		if strings.Contains(line, "client: FAILED") || strings.HasPrefix(line, "last refusal") {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	return strings.Join(keep, "\n")
}

// execClient runs client.mjs once and returns its result line.
func execClient(nodeDir, mcpURL, state string, reuse bool) (clientRun, error) {
	args := []string{"client.mjs", "--url", mcpURL, "--state", state + ".json",
		"--token-out", state + ".token", "--message", echoMessage}
	if reuse {
		args = append(args, "--reuse")
	}
	var run clientRun
	if err := runNode(nodeDir, &run, args...); err != nil {
		return clientRun{}, err
	}
	if !run.OK {
		return clientRun{}, fmt.Errorf("client.mjs %s did not report ok", strings.Join(args[1:], " "))
	}
	token, err := os.ReadFile(state + ".token")
	if err != nil {
		return clientRun{}, fmt.Errorf("client.mjs saved no access token: %w", err)
	}
	run.accessToken = strings.TrimSpace(string(token))
	return run, nil
}

// assertClientRun checks what the SDK client did through toolgate and what
// token it got; an empty kid accepts any key.
func assertClientRun(t *testing.T, run clientRun, mcpURL, issuerURL, kid string) {
	t.Helper()
	if !slices.Contains(run.Tools, "echo") || !slices.Contains(run.Tools, "trigger-long-running-operation") {
		t.Errorf("tools/list through toolgate = %q, want echo and trigger-long-running-operation", run.Tools)
	}
	if want := "Echo: " + echoMessage; run.Echo != want {
		t.Errorf("echo through toolgate = %q, want %q", run.Echo, want)
	}
	if run.Progress < 1 {
		t.Errorf("long-running tool sent %d progress notifications through toolgate, want at least 1", run.Progress)
	}
	if run.Issuer != issuerURL {
		t.Errorf("client discovered issuer %q, want %q", run.Issuer, issuerURL)
	}
	if run.Login {
		if got := run.AuthorizationRequest["resource"]; got != mcpURL {
			t.Errorf("authorization request resource = %q, want %q", got, mcpURL)
		}
		if got := run.AuthorizationRequest["code_challenge_method"]; got != "S256" {
			t.Errorf("authorization request code_challenge_method = %q, want S256", got)
		}
	}
	header, claims := run.Token.Header, run.Token.Claims
	if header["alg"] != "RS256" || (kid != "" && header["kid"] != kid) {
		t.Errorf("access token header = %v, want alg RS256 and kid %q", header, kid)
	}
	if claims["aud"] != mcpURL || claims["iss"] != issuerURL || claims["sub"] != "alice" {
		t.Errorf("access token claims = %v, want aud %q, iss %q, sub alice", claims, mcpURL, issuerURL)
	}
	if scopes := strings.Fields(fmt.Sprint(claims["scope"])); !slices.Contains(scopes, requiredScope) {
		t.Errorf("access token scope = %q, want it to contain %q", claims["scope"], requiredScope)
	}
}

// checkStreamingToolCall opens a session through toolgate and calls a tool
// that reports progress: the response must stay text/event-stream and its
// events must arrive as they are sent, not all at once at the end.
func checkStreamingToolCall(t *testing.T, mcpURL, token string) {
	resp := postMCP(t, mcpURL, token, initializeRequest)
	assertStatus(t, resp, http.StatusOK)
	session := resp.Header.Get("Mcp-Session-Id")
	if session == "" {
		t.Fatal("initialize through toolgate returned no Mcp-Session-Id")
	}
	_, _ = io.Copy(io.Discard, resp.Body)

	resp = mcpRequest(t, http.MethodPost, mcpURL, token, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	assertStatus(t, resp, http.StatusAccepted)

	const steps = 4 // one every 400 ms
	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"trigger-long-running-operation",`+
		`"arguments":{"duration":1.6,"steps":%d},"_meta":{"progressToken":"p1"}}}`, steps)
	start := time.Now()
	resp = mcpRequest(t, http.MethodPost, mcpURL, token, session, call)
	assertStatus(t, resp, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("tools/call through toolgate: Content-Type %q, want text/event-stream", ct)
	}

	var firstProgress, result time.Duration
	progress := 0
	err := readSSE(resp.Body, func(data string) bool {
		var msg struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal([]byte(data), &msg) != nil {
			return true
		}
		switch {
		case msg.Method == "notifications/progress":
			if progress++; progress == 1 {
				firstProgress = time.Since(start)
			}
		case string(msg.ID) == "2" && msg.Result != nil:
			result = time.Since(start)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatalf("reading the SSE stream: %v", err)
	}
	if result == 0 || progress != steps {
		t.Fatalf("SSE stream had %d progress events (want %d) and result=%v", progress, steps, result != 0)
	}
	// The result comes 1.2 s after the first progress event; a buffering
	// proxy would deliver them together.
	if result-firstProgress < 500*time.Millisecond {
		t.Errorf("first progress event at %v and result at %v: the stream was buffered", firstProgress, result)
	}

	resp = mcpRequest(t, http.MethodDelete, mcpURL, token, session, "")
	assertStatus(t, resp, http.StatusOK)
}

// readSSE hands the data of each event to onEvent until it returns false or
// the stream ends.
func readSSE(body io.Reader, onEvent func(data string) bool) error {
	scanner := bufio.NewScanner(body)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	var data []string
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case line == "":
			if len(data) > 0 && !onEvent(strings.Join(data, "\n")) {
				return nil
			}
			data = data[:0]
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	return errors.New("stream ended before the result")
}
