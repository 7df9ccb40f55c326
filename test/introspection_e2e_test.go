//go:build unix

package e2e_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// introspectionClientID is the resource-server client issuer.mjs registers
// statically for toolgate; only it may introspect.
const introspectionClientID = "toolgate"

// TestIntrospectionEndToEnd runs the built toolgate against oidc-provider
// issuing opaque access tokens, which toolgate can judge only by asking the
// issuer's RFC 7662 introspection endpoint. INTROSPECTION_URL is left unset:
// toolgate must find the endpoint in the issuer's metadata.
//
// The SDK client logs in and works with its opaque token; tokens minted by
// mint.mjs, which toolgate has never seen, show the refusals: unknown,
// revoked at the issuer, and the issuer gone (fail closed, 503).
func TestIntrospectionEndToEnd(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)

	ports := freePorts(t, 3)
	issuerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	gateway := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	mcpURL := gateway + "/mcp"

	startProcess(t, "upstream", nodeDir, []string{fmt.Sprintf("PORT=%d", ports[0])}, "node", "upstream.mjs")
	waitTCP(t, "upstream", ports[0])
	upstream := newUpstreamRecorder(t, fmt.Sprintf("http://127.0.0.1:%d", ports[0]))

	secret := rand.Text()
	issuer := startIssuer(t, nodeDir, ports[1], mcpURL, "k1",
		"ACCESS_TOKEN_FORMAT=opaque",
		"INTROSPECTION_CLIENT_ID="+introspectionClientID,
		"INTROSPECTION_CLIENT_SECRET="+secret)
	metadata := issuerMetadata(t, issuerURL)
	if metadata.IntrospectionEndpoint == "" || metadata.RevocationEndpoint == "" {
		t.Fatalf("issuer metadata has introspection_endpoint %q and revocation_endpoint %q, want both",
			metadata.IntrospectionEndpoint, metadata.RevocationEndpoint)
	}

	// TOKEN_VALIDATOR stays auto (JWTs by the keys, anything else by
	// introspection) and INTROSPECTION_URL unset: the endpoint comes from
	// the metadata above.
	toolgate := startProcess(t, "toolgate", tmp, []string{
		"UPSTREAM_URL=" + upstream.url + "/mcp",
		"RESOURCE_SERVER_URL=" + mcpURL,
		"AUTHORIZATION_SERVER_URL=" + issuerURL,
		"LISTEN_ADDR=" + strings.TrimPrefix(gateway, "http://"),
		"REQUIRED_SCOPES=" + requiredScope,
		"INTROSPECTION_CLIENT_ID=" + introspectionClientID,
		"INTROSPECTION_CLIENT_SECRET=" + secret,
		"LOG_FORMAT=console",
	}, binary)
	waitReady(t, toolgate, gateway+"/readyz")

	// The official SDK logs in from nothing (401 → PRM → issuer metadata →
	// registration → PKCE → token) and lists and calls tools with the
	// opaque token it got.
	sdk := runClient(t, nodeDir, mcpURL, filepath.Join(tmp, "client"), false)

	t.Run("the SDK client works with an opaque token", func(t *testing.T) {
		if !sdk.Login || sdk.Issuer != issuerURL {
			t.Errorf("client run: login %v, issuer %q; want a login at %q", sdk.Login, sdk.Issuer, issuerURL)
		}
		if got := sdk.AuthorizationRequest; got["resource"] != mcpURL || got["code_challenge_method"] != "S256" {
			t.Errorf("authorization request = %v, want resource %s and PKCE S256", got, mcpURL)
		}
		if !slices.Contains(sdk.Tools, "echo") {
			t.Errorf("tools/list through toolgate = %q, want echo", sdk.Tools)
		}
		if want := "Echo: " + echoMessage; sdk.Echo != want {
			t.Errorf("echo through toolgate = %q, want %q", sdk.Echo, want)
		}
		if len(sdk.Token.Header) > 0 || strings.Contains(sdk.accessToken, ".") {
			t.Errorf("the issuer handed out a JWT (header %v); this test needs an opaque token", sdk.Token.Header)
		}
		// The identity toolgate forwards came from the introspection answer.
		if got := upstream.toolCalls(); !slices.Contains(got, upstreamCall{Tool: "echo", User: "alice"}) {
			t.Errorf("tools/call at the upstream = %v, want echo as alice", got)
		}
	})

	var mint struct {
		OK       bool   `json:"ok"`
		ClientID string `json:"clientId"`
		Resource string `json:"resource"`
	}
	tokensFile := filepath.Join(tmp, "minted.json")
	if err := runNode(nodeDir, &mint, "mint.mjs", "--url", mcpURL, "--count", "2", "--tokens-out", tokensFile); err != nil {
		t.Fatal(err)
	}
	var minted []string
	if raw, err := os.ReadFile(tokensFile); err != nil || json.Unmarshal(raw, &minted) != nil || len(minted) != 2 || mint.ClientID == "" {
		t.Fatalf("mint.mjs: want two tokens and a client_id; got %d tokens, client %q (%v)", len(minted), mint.ClientID, err)
	}
	revoked, unseen := minted[0], minted[1]

	t.Run("the issuer's introspection answer", func(t *testing.T) {
		// What toolgate relies on, straight from the issuer: for a token
		// bound to a resource indicator oidc-provider answers aud = the
		// resource without any extra configuration.
		status, ans := introspect(t, metadata.IntrospectionEndpoint, unseen, introspectionClientID, secret)
		if status != http.StatusOK || ans["active"] != true {
			t.Fatalf("introspection of a fresh token: status %d, answer %v; want 200 and active", status, ans)
		}
		want := map[string]any{"aud": mcpURL, "iss": issuerURL, "sub": "alice", "client_id": mint.ClientID, "token_type": "Bearer"}
		for k, v := range want {
			if ans[k] != v {
				t.Errorf("introspection answer %s = %v, want %v (answer %v)", k, ans[k], v, ans)
			}
		}
		if scopes := strings.Fields(fmt.Sprint(ans["scope"])); !slices.Contains(scopes, requiredScope) {
			t.Errorf("introspection answer scope = %v, want it to contain %s", ans["scope"], requiredScope)
		}
		// The endpoint authenticates its callers.
		if status, ans := introspect(t, metadata.IntrospectionEndpoint, unseen, introspectionClientID, "wrong"); status == http.StatusOK {
			t.Errorf("introspection with a wrong client secret: status 200, answer %v", ans)
		}
	})

	refusedFrom := upstream.requestCount()

	t.Run("garbage opaque token is invalid_token", func(t *testing.T) {
		resp := postMCP(t, mcpURL, "opaque-"+rand.Text(), initializeRequest)
		assertStatus(t, resp, http.StatusUnauthorized)
		if got := bearerChallenge(t, resp)["error"]; got != "invalid_token" {
			t.Errorf("challenge error = %q, want invalid_token", got)
		}
	})

	// toolgate reuses an "active" answer for up to 60 s (never past exp),
	// so a token it has already let through keeps passing for up to a minute
	// after its revocation; waiting that out has no place in a test. The
	// revoked token here is one toolgate has never seen, so its first
	// presentation is introspected and must fail.
	t.Run("token revoked at the issuer is invalid_token", func(t *testing.T) {
		revoke(t, metadata.RevocationEndpoint, revoked, mint.ClientID)
		if status, ans := introspect(t, metadata.IntrospectionEndpoint, revoked, introspectionClientID, secret); status != http.StatusOK || ans["active"] != false {
			t.Fatalf("introspection after revocation: status %d, answer %v; want 200 and not active", status, ans)
		}
		resp := postMCP(t, mcpURL, revoked, initializeRequest)
		assertStatus(t, resp, http.StatusUnauthorized)
		params := bearerChallenge(t, resp)
		if params["error"] != "invalid_token" || !strings.Contains(params["error_description"], "not active") {
			t.Errorf("challenge = %v, want invalid_token saying the token is not active", params)
		}
	})

	issuer.stop()

	t.Run("issuer down: an unseen token gets 503", func(t *testing.T) {
		resp := postMCP(t, mcpURL, unseen, initializeRequest)
		assertStatus(t, resp, http.StatusServiceUnavailable)
		// Not invalid_token: the token may be good, and a client told
		// otherwise would throw it away.
		if values := resp.Header.Values("WWW-Authenticate"); len(values) != 0 {
			t.Errorf("503 carries WWW-Authenticate %q, want none", values)
		}
		var body struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "temporarily_unavailable" {
			t.Errorf("503 body error = %q (%v), want temporarily_unavailable", body.Error, err)
		}
	})

	t.Run("refused requests never reach the upstream", func(t *testing.T) {
		if got := upstream.requestCount() - refusedFrom; got != 0 {
			t.Errorf("%d refused requests reached the upstream", got)
		}
	})

	t.Run("issuer down: a token introspected within the cache window passes", func(t *testing.T) {
		// The SDK's token was introspected seconds ago; the cached answer
		// still stands, so the 503 above is the unseen token's lookup
		// failing, not toolgate giving up on everything.
		resp := postMCP(t, mcpURL, sdk.accessToken, initializeRequest)
		assertStatus(t, resp, http.StatusOK)
	})

	t.Run("tokens never reach the logs", func(t *testing.T) {
		logs := toolgate.output()
		for i, tok := range []string{sdk.accessToken, revoked, unseen} {
			if strings.Contains(logs, tok) {
				t.Errorf("toolgate output contains access token #%d", i+1)
			}
		}
		if strings.Contains(logs, secret) {
			t.Errorf("toolgate output contains the introspection client secret")
		}
	})
}

type authorizationServerMetadata struct {
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

func issuerMetadata(t *testing.T, issuer string) authorizationServerMetadata {
	t.Helper()
	resp, err := httpClient.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("issuer metadata: %v", err)
	}
	defer resp.Body.Close()
	assertStatus(t, resp, http.StatusOK)
	var md authorizationServerMetadata
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatalf("issuer metadata: %v", err)
	}
	return md
}

// introspect asks the endpoint about token as the client id:secret
// (client_secret_basic) and returns the status and the decoded answer.
func introspect(t *testing.T, endpoint, token, id, secret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{
		"token": {token}, "token_type_hint": {"access_token"},
	}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatalf("introspect: status %d, undecodable answer: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, ans
}

// revoke revokes token (RFC 7009) as the public client that obtained it,
// which authenticates with its client_id alone.
func revoke(t *testing.T, endpoint, token, clientID string) {
	t.Helper()
	resp, err := httpClient.PostForm(endpoint, url.Values{
		"token": {token}, "token_type_hint": {"access_token"}, "client_id": {clientID},
	})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		t.Fatalf("revoke: status %d: %s", resp.StatusCode, body)
	}
}
