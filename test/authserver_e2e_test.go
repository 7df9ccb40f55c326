//go:build unix

package e2e_test

// toolgate as the authorization server (AUTHORIZATION_SERVER_URL empty),
// end to end: the built binary before server-everything, the official
// TypeScript SDK client doing the whole OAuth dance against toolgate's own
// endpoints (dynamic registration, a pre-registered client, a client ID
// metadata document served over https), and the negatives of the code flow
// driven over raw HTTP by a small Go "browser".

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
)

const (
	e2eUser     = "alice"
	e2ePassword = "correct horse battery"
)

// embeddedGate is a running toolgate that is its own authorization server.
type embeddedGate struct {
	origin, mcp string
	proc        *process
}

func userLine(t *testing.T, name, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return name + ":" + string(hash)
}

func startEmbedded(t *testing.T, binary, dir string, port int, env ...string) *embeddedGate {
	t.Helper()
	g := &embeddedGate{origin: fmt.Sprintf("http://127.0.0.1:%d", port)}
	g.mcp = g.origin + "/mcp"
	g.proc = startProcess(t, fmt.Sprintf("toolgate :%d", port), dir, append([]string{
		"RESOURCE_SERVER_URL=" + g.mcp,
		"LISTEN_ADDR=" + strings.TrimPrefix(g.origin, "http://"),
		"LOG_FORMAT=console",
	}, env...), binary)
	waitReady(t, g.proc, g.origin+"/readyz")
	return g
}

func TestEmbeddedAuthorizationServer(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)
	ports := freePorts(t, 2)
	startProcess(t, "upstream", nodeDir, []string{fmt.Sprintf("PORT=%d", ports[0])}, "node", "upstream.mjs")
	waitTCP(t, "upstream", ports[0])

	// The client ID metadata document, served over https by a test server
	// whose certificate toolgate trusts only through CLIENT_METADATA_CA_FILE.
	var docHits atomic.Int64
	docs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		docHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  "https://" + r.Host + "/client.json",
			"client_name":                "e2e metadata-document client",
			"redirect_uris":              []string{"http://127.0.0.1/callback"},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	t.Cleanup(docs.Close)
	caFile := filepath.Join(tmp, "docs-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: docs.Certificate().Raw})))
	clientsFile := filepath.Join(tmp, "clients.yaml")
	writeFile(t, clientsFile, `clients:
  - client_id: e2e-confidential
    client_name: Pre-registered e2e client
    client_secret: e2e-secret-of-some-length
    redirect_uris: [http://127.0.0.1/callback]
`)
	dataDir := filepath.Join(tmp, "data")
	env := []string{
		fmt.Sprintf("UPSTREAM_URL=http://127.0.0.1:%d/mcp", ports[0]),
		"SCOPES_SUPPORTED=mcp:read mcp:write",
		"LOCAL_USERS=" + userLine(t, e2eUser, e2ePassword),
		"DATA_DIR=" + dataDir,
		"OAUTH_CLIENTS_FILE=" + clientsFile,
		"CLIENT_METADATA_ALLOW_PRIVATE_ADDRESSES=true",
		"CLIENT_METADATA_CA_FILE=" + caFile,
	}
	g := startEmbedded(t, binary, tmp, ports[1], env...)

	t.Run("metadata names toolgate as the authorization server", func(t *testing.T) {
		prm := getPRM(t, g.origin+"/.well-known/oauth-protected-resource/mcp")
		if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != g.origin {
			t.Fatalf("PRM authorization_servers = %v, want [%s]", prm.AuthorizationServers, g.origin)
		}
		var md map[string]any
		getJSON(t, g.origin+"/.well-known/oauth-authorization-server", &md)
		for k, want := range map[string]any{
			"issuer":                                         g.origin,
			"authorization_endpoint":                         g.origin + "/authorize",
			"token_endpoint":                                 g.origin + "/token",
			"registration_endpoint":                          g.origin + "/register",
			"client_id_metadata_document_supported":          true,
			"authorization_response_iss_parameter_supported": true,
		} {
			if md[k] != want {
				t.Errorf("metadata %s = %v, want %v", k, md[k], want)
			}
		}
		if fmt.Sprint(md["code_challenge_methods_supported"]) != "[S256]" {
			t.Errorf("code_challenge_methods_supported = %v, want [S256]", md["code_challenge_methods_supported"])
		}
	})

	login := []string{"LOGIN_PASSWORD=" + e2ePassword}
	var first clientRun
	t.Run("SDK client registers dynamically, signs in, consents, calls tools", func(t *testing.T) {
		first = sdkLogin(t, nodeDir, login, "--url", g.mcp, "--username", e2eUser, "--state", filepath.Join(tmp, "dcr.json"))
		assertEmbeddedRun(t, first, g, e2eUser)
		if !first.Registered || !strings.HasPrefix(first.ClientID, "tgc1.") {
			t.Errorf("registered = %v, client_id %.12q…: want a stateless tgc1 registration", first.Registered, first.ClientID)
		}
		if strings.Join(first.Pages, ",") != "sign-in,consent" {
			t.Errorf("pages = %v, want the sign-in page, then the consent page", first.Pages)
		}
		if got := first.AuthorizationRequest; got["resource"] != g.mcp || got["code_challenge_method"] != "S256" {
			t.Errorf("authorization request = %v, want resource %s with S256", got, g.mcp)
		}
	})

	t.Run("SDK client with a pre-registered confidential client", func(t *testing.T) {
		run := sdkLogin(t, nodeDir, login, "--url", g.mcp, "--username", e2eUser,
			"--client-id", "e2e-confidential", "--client-secret", "e2e-secret-of-some-length")
		assertEmbeddedRun(t, run, g, e2eUser)
		if run.Registered || run.ClientID != "e2e-confidential" || run.Token.Claims["client_id"] != "e2e-confidential" {
			t.Errorf("registered %v, client %q, token client_id %v: want the pre-registered client", run.Registered, run.ClientID, run.Token.Claims["client_id"])
		}
	})

	t.Run("SDK client with a client ID metadata document over https", func(t *testing.T) {
		docURL := docs.URL + "/client.json"
		run := sdkLogin(t, nodeDir, login, "--url", g.mcp, "--username", e2eUser, "--client-metadata-url", docURL)
		assertEmbeddedRun(t, run, g, e2eUser)
		if run.Registered || run.ClientID != docURL || run.Token.Claims["client_id"] != docURL {
			t.Errorf("registered %v, client %q, token client_id %v: want the document URL %s", run.Registered, run.ClientID, run.Token.Claims["client_id"], docURL)
		}
		if docHits.Load() == 0 {
			t.Error("toolgate never fetched the metadata document")
		}
	})

	t.Run("wrong password stops at the sign-in page", func(t *testing.T) {
		err := runNodeEnv(nodeDir, []string{"LOGIN_PASSWORD=wrong password"}, &clientRun{}, "client.mjs", "--url", g.mcp, "--username", e2eUser)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("client with a wrong password: %v, want it stopped with HTTP 401", err)
		}
	})

	t.Run("code flow negatives", func(t *testing.T) {
		codeFlowNegatives(t, g)
	})

	t.Run("toolgate check accepts the server's own token", func(t *testing.T) {
		b := newBrowser(t, g)
		tok := b.tokens(t, b.code(t, nil))
		cmd := exec.Command(binary, "check", "--token", "-")
		cmd.Env = append(baseEnv(), append(env, "RESOURCE_SERVER_URL="+g.mcp)...)
		cmd.Stdin = strings.NewReader(tok.AccessToken)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "token accepted") || !strings.Contains(string(out), "0 failures") {
			t.Fatalf("toolgate check: %v\n%s", err, out)
		}
		if strings.Contains(string(out), tok.AccessToken) {
			t.Fatal("toolgate check printed the token")
		}
	})

	t.Run("restart keeps the signing key and refresh tokens", func(t *testing.T) {
		b := newBrowser(t, g)
		tok := b.tokens(t, b.code(t, nil))
		g.proc.stop()
		g2 := startEmbedded(t, binary, tmp, ports[1], env...)
		assertStatus(t, postMCP(t, g2.mcp, tok.AccessToken, initializeBody), http.StatusOK)
		again := b.refresh(t, tok.RefreshToken)
		if again.status != http.StatusOK {
			t.Fatalf("refresh after restart = %d %s, want 200", again.status, again.Error)
		}
	})
}

// TestEmbeddedFederatedSignIn: users sign in at an upstream OpenID Connect
// provider (oidc-provider, as Google or Keycloak would be); toolgate issues
// its own token. A second gateway's allowlist turns the same user away.
func TestEmbeddedFederatedSignIn(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)
	ports := freePorts(t, 4)
	startProcess(t, "upstream", nodeDir, []string{fmt.Sprintf("PORT=%d", ports[0])}, "node", "upstream.mjs")
	waitTCP(t, "upstream", ports[0])
	idpURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	allowed := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	refused := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	// One client at the provider with both gateways' callbacks.
	startIssuer(t, nodeDir, ports[1], "http://127.0.0.1:1/unused", "idp",
		"LOGIN_CLIENT_ID=toolgate", "LOGIN_CLIENT_SECRET=idp-secret-of-some-length",
		"LOGIN_REDIRECT_URI="+allowed+"/oauth/callback,"+refused+"/oauth/callback")
	common := []string{
		fmt.Sprintf("UPSTREAM_URL=http://127.0.0.1:%d/mcp", ports[0]),
		"IDP=oidc", "IDP_ISSUER_URL=" + idpURL, "IDP_NAME=Example SSO",
		"IDP_CLIENT_ID=toolgate", "IDP_CLIENT_SECRET=idp-secret-of-some-length",
	}
	g := startEmbedded(t, binary, tmp, ports[2], append(common, "DATA_DIR="+filepath.Join(tmp, "a"), "ALLOWED_DOMAINS=example.test")...)
	run := sdkLogin(t, nodeDir, nil, "--url", g.mcp, "--idp")
	assertEmbeddedRun(t, run, g, "alice")
	if run.Token.Claims["email"] != "alice@example.test" {
		t.Errorf("token email = %v, want the provider's verified email", run.Token.Claims["email"])
	}
	if strings.Join(run.Pages, ",") != "sign-in-upstream,consent" {
		t.Errorf("pages = %v, want the provider button, then consent", run.Pages)
	}

	// The same user, at a gateway that admits only bob: the provider signs
	// alice in, toolgate turns her away and issues nothing.
	g2 := startEmbedded(t, binary, tmp, ports[3], append(common, "DATA_DIR="+filepath.Join(tmp, "b"), "ALLOWED_EMAILS=bob@example.test")...)
	err := runNodeEnv(nodeDir, nil, &clientRun{}, "client.mjs", "--url", g2.mcp, "--idp")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("sign-in of a user outside ALLOWED_EMAILS: %v, want it stopped with HTTP 403 naming the refusal", err)
	}
}

// TestDemoEndToEnd starts `toolgate demo` as a user would and drives it
// with the SDK client, signing in as the printed user.
func TestDemoEndToEnd(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)
	port := freePorts(t, 1)[0]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProcess(t, "toolgate demo", tmp, []string{"LOG_LEVEL=warn"}, binary, "demo", "-addr", addr)
	var password string
	re := regexp.MustCompile(`user (\S+)\s+password (\S+)`)
	eventually(t, p, "the demo's banner", startTimeout, func() bool {
		m := re.FindStringSubmatch(p.output())
		if m != nil {
			password = m[2]
			return m[1] == "demo"
		}
		return false
	})
	mcpURL := "http://" + addr + "/mcp"
	run := sdkLogin(t, nodeDir, []string{"LOGIN_PASSWORD=" + password}, "--url", mcpURL, "--username", "demo", "--call", "whoami")
	if run.Called == nil || run.Called.IsError || !strings.Contains(run.Called.Text, "demo") {
		t.Fatalf("whoami after signing in = %+v, want it to name the demo user", run.Called)
	}
	if run.Token.Claims["aud"] != mcpURL || run.Token.Claims["sub"] != "demo" {
		t.Errorf("token claims %v: want aud %s, sub demo", run.Token.Claims, mcpURL)
	}
	// Ctrl-C ends the demo cleanly.
	p.stop()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("demo exited with %d after SIGTERM, want 0:\n%s", code, lastLines(p.output(), 10))
	}
}

// sdkLogin runs client.mjs with args and env and returns its result line.
func sdkLogin(t *testing.T, nodeDir string, env []string, args ...string) clientRun {
	t.Helper()
	var run clientRun
	if err := runNodeEnv(nodeDir, env, &run, append([]string{"client.mjs", "--message", echoMessage}, args...)...); err != nil {
		t.Fatal(err)
	}
	if !run.OK {
		t.Fatalf("client.mjs %v did not report ok", args)
	}
	return run
}

// assertEmbeddedRun checks an SDK run against toolgate's own server: the
// tools answered, and the token is toolgate's RFC 9068 token for this
// resource and user.
func assertEmbeddedRun(t *testing.T, run clientRun, g *embeddedGate, sub string) {
	t.Helper()
	if run.Echo == "" || len(run.Tools) == 0 {
		t.Errorf("tools %v, echo %q: want tools listed and echo answered", run.Tools, run.Echo)
	}
	if run.Issuer != g.origin && run.Issuer != g.origin+"/" {
		t.Errorf("discovered issuer %q, want %s", run.Issuer, g.origin)
	}
	h, c := run.Token.Header, run.Token.Claims
	if h["typ"] != "at+jwt" || h["kid"] == nil {
		t.Errorf("token header %v: want typ at+jwt and a kid", h)
	}
	if c["iss"] != g.origin || c["aud"] != g.mcp || c["sub"] != sub || c["jti"] == nil || c["client_id"] == nil {
		t.Errorf("token claims %v: want iss %s, aud %s, sub %s, a jti and a client_id", c, g.origin, g.mcp, sub)
	}
	if !run.RefreshToken {
		t.Error("no refresh token issued")
	}
}

// initializeBody is an MCP initialize request, the first POST of a session.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// ---- a small Go "browser" for the negatives ----

// browser registers one public client and plays its user's browser: it
// signs in and approves on toolgate's pages, keeping cookies, and never
// follows a redirect to the client, so each step can be inspected.
type browser struct {
	g        *embeddedGate
	http     *http.Client
	clientID string
	redirect string
	verifier string
}

func newBrowser(t *testing.T, g *embeddedGate) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{g: g, redirect: "http://127.0.0.1:9/callback", verifier: strings.Repeat("v", 20) + randomish(t)}
	b.http = &http.Client{Jar: jar, Timeout: httpTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := `{"client_name":"go browser","redirect_uris":["` + b.redirect + `"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`
	resp, err := b.http.Post(g.origin+"/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&reg) != nil || reg.ClientID == "" {
		t.Fatalf("POST /register = %d, want 201 with a client_id", resp.StatusCode)
	}
	b.clientID = reg.ClientID
	return b
}

func randomish(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is a valid authorization request; override changes or,
// with an empty value, removes parameters.
func (b *browser) authorizeURL(override map[string]string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {b.clientID},
		"redirect_uri":          {b.redirect},
		"state":                 {"st-1"},
		"code_challenge":        {challengeOf(b.verifier)},
		"code_challenge_method": {"S256"},
		"resource":              {b.g.mcp},
		"scope":                 {"mcp:read"},
	}
	for k, v := range override {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return b.g.origin + "/authorize?" + q.Encode()
}

// step is one browser request's outcome.
type step struct {
	status   int
	location *url.URL
	body     string
}

func (b *browser) do(t *testing.T, method, u string, form url.Values) step {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.g.origin)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	s := step{status: resp.StatusCode, body: string(raw)}
	if loc := resp.Header.Get("Location"); loc != "" {
		s.location, _ = resp.Request.URL.Parse(loc)
	}
	return s
}

var (
	formRE   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	buttonRE = regexp.MustCompile(`(?is)<button\b([^>]*)>(.*?)</button>`)
)

func attrOf(tag, name string) string {
	m := regexp.MustCompile(`(?is)\s` + name + `\s*=\s*("([^"]*)"|'([^']*)')`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[2] + m[3])
}

// submit fills in the page's form the way a user would: credentials on the
// sign-in form, the approve (or deny) button on the consent form.
func (b *browser) submit(t *testing.T, page step, approve bool) step {
	t.Helper()
	want := regexp.MustCompile(`(?i)approve|allow`)
	if !approve {
		want = regexp.MustCompile(`(?i)deny|cancel`)
	}
	for _, f := range formRE.FindAllStringSubmatch(page.body, -1) {
		form := url.Values{}
		password := false
		for _, in := range inputRE.FindAllString(f[2], -1) {
			name, typ := attrOf(in, "name"), strings.ToLower(attrOf(in, "type"))
			switch {
			case name == "":
			case typ == "password":
				form.Set(name, e2ePassword)
				password = true
			case name == "username":
				form.Set(name, e2eUser)
			default:
				form.Set(name, attrOf(in, "value"))
			}
		}
		chosen := password
		for _, btn := range buttonRE.FindAllStringSubmatch(f[2], -1) {
			if !password && (want.MatchString(attrOf(btn[0], "value")) || want.MatchString(btn[2])) {
				if n := attrOf(btn[0], "name"); n != "" {
					form.Set(n, attrOf(btn[0], "value"))
				}
				chosen = true
				break
			}
		}
		if !chosen {
			continue
		}
		action, err := url.Parse(attrOf(f[1], "action"))
		if err != nil {
			t.Fatal(err)
		}
		return b.do(t, http.MethodPost, (&url.URL{Scheme: "http", Host: strings.TrimPrefix(b.g.origin, "http://")}).ResolveReference(action).String(), form)
	}
	t.Fatalf("no form to submit on the page (HTTP %d):\n%.600s", page.status, page.body)
	return step{}
}

// authorize runs an authorization request through sign-in and consent
// and returns the redirect back to the client.
func (b *browser) authorize(t *testing.T, override map[string]string) *url.URL {
	t.Helper()
	s := b.do(t, http.MethodGet, b.authorizeURL(override), nil)
	for i := 0; i < 4 && s.location == nil; i++ {
		if s.status != http.StatusOK {
			t.Fatalf("authorization stopped with HTTP %d:\n%.600s", s.status, s.body)
		}
		s = b.submit(t, s, true)
	}
	if s.location == nil || !strings.HasPrefix(s.location.String(), b.redirect) {
		t.Fatalf("authorization ended at HTTP %d, location %v, not at the client's redirect URI", s.status, s.location)
	}
	if got := s.location.Query().Get("iss"); got != b.g.origin {
		t.Errorf("authorization response iss = %q, want %s (RFC 9207)", got, b.g.origin)
	}
	return s.location
}

// code returns a fresh authorization code.
func (b *browser) code(t *testing.T, override map[string]string) string {
	t.Helper()
	back := b.authorize(t, override)
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %v", back)
	}
	return code
}

type tokenAnswer struct {
	status       int
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

func (b *browser) token(t *testing.T, form url.Values) tokenAnswer {
	t.Helper()
	form.Set("client_id", b.clientID)
	resp, err := httpClient.PostForm(b.g.origin+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	a.status = resp.StatusCode
	return a
}

func (b *browser) exchange(t *testing.T, code, verifier, redirect string) tokenAnswer {
	t.Helper()
	return b.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}, "resource": {b.g.mcp}})
}

func (b *browser) tokens(t *testing.T, code string) tokenAnswer {
	t.Helper()
	a := b.exchange(t, code, b.verifier, b.redirect)
	if a.status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("token exchange = %d %s, want 200 with access and refresh tokens", a.status, a.Error)
	}
	return a
}

func (b *browser) refresh(t *testing.T, refreshToken string) tokenAnswer {
	t.Helper()
	return b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// codeFlowNegatives: everything a client can get wrong, each refused with
// the error RFC 6749 / 7636 / 8707 name, and nothing issued.
func codeFlowNegatives(t *testing.T, g *embeddedGate) {
	b := newBrowser(t, g)
	authorizeError := func(t *testing.T, override map[string]string, want string) {
		t.Helper()
		s := b.do(t, http.MethodGet, b.authorizeURL(override), nil)
		if s.location == nil || !strings.HasPrefix(s.location.String(), b.redirect) {
			t.Fatalf("HTTP %d without a redirect to the client; want a redirect with error=%s", s.status, want)
		}
		q := s.location.Query()
		if q.Get("error") != want || q.Get("state") != "st-1" || q.Get("iss") != g.origin || q.Get("code") != "" {
			t.Fatalf("redirect %v: want error=%s with state, iss and no code", s.location, want)
		}
	}
	t.Run("PKCE missing", func(t *testing.T) {
		authorizeError(t, map[string]string{"code_challenge": "", "code_challenge_method": ""}, "invalid_request")
	})
	t.Run("PKCE plain", func(t *testing.T) {
		authorizeError(t, map[string]string{"code_challenge": b.verifier, "code_challenge_method": "plain"}, "invalid_request")
	})
	t.Run("wrong resource", func(t *testing.T) {
		authorizeError(t, map[string]string{"resource": g.origin + "/other"}, "invalid_target")
	})
	t.Run("unregistered redirect URI is never redirected to", func(t *testing.T) {
		s := b.do(t, http.MethodGet, b.authorizeURL(map[string]string{"redirect_uri": "https://attacker.example/cb"}), nil)
		if s.status != http.StatusBadRequest || s.location != nil {
			t.Fatalf("HTTP %d, location %v: want 400 and no redirect", s.status, s.location)
		}
	})
	t.Run("verifier mismatch", func(t *testing.T) {
		code := b.code(t, nil)
		if a := b.exchange(t, code, strings.Repeat("x", 43), b.redirect); a.status != http.StatusBadRequest || a.Error != "invalid_grant" || a.AccessToken != "" {
			t.Fatalf("exchange with the wrong verifier = %d %s, want 400 invalid_grant", a.status, a.Error)
		}
	})
	t.Run("redirect URI mismatch at the token endpoint", func(t *testing.T) {
		code := b.code(t, nil)
		if a := b.exchange(t, code, b.verifier, "http://127.0.0.1:9/other"); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Fatalf("exchange with another redirect_uri = %d %s, want 400 invalid_grant", a.status, a.Error)
		}
	})
	t.Run("code reuse revokes what the code gave", func(t *testing.T) {
		code := b.code(t, nil)
		first := b.tokens(t, code)
		if a := b.exchange(t, code, b.verifier, b.redirect); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Fatalf("second exchange of one code = %d %s, want 400 invalid_grant", a.status, a.Error)
		}
		if a := b.refresh(t, first.RefreshToken); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Fatalf("refresh token of a replayed code = %d %s, want 400 invalid_grant", a.status, a.Error)
		}
	})
	t.Run("refresh-token reuse revokes the family", func(t *testing.T) {
		first := b.tokens(t, b.code(t, nil))
		second := b.refresh(t, first.RefreshToken)
		if second.status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("refresh = %d %s, want 200 with a new refresh token", second.status, second.Error)
		}
		// Retrying the same refresh at once (a lost response) is not reuse:
		// it gets the same new token.
		if retry := b.refresh(t, first.RefreshToken); retry.status != http.StatusOK || retry.RefreshToken != second.RefreshToken {
			t.Fatalf("immediate retry = %d %s, want 200 with the same new refresh token", retry.status, retry.Error)
		}
		third := b.refresh(t, second.RefreshToken)
		if third.status != http.StatusOK {
			t.Fatalf("second refresh = %d %s, want 200", third.status, third.Error)
		}
		// first is now two rotations old: reuse.
		if a := b.refresh(t, first.RefreshToken); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Fatalf("reused refresh token = %d %s, want 400 invalid_grant", a.status, a.Error)
		}
		if a := b.refresh(t, third.RefreshToken); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Fatalf("newest refresh token after reuse = %d %s, want 400 invalid_grant: the family is revoked", a.status, a.Error)
		}
		second = third
		// The access tokens already issued stay valid until they expire.
		assertStatus(t, postMCP(t, g.mcp, second.AccessToken, initializeBody), http.StatusOK)
	})
	t.Run("token for another resource is refused by the gateway", func(t *testing.T) {
		assertStatus(t, postMCP(t, g.mcp, "not-a-token", initializeBody), http.StatusUnauthorized)
	})
}

// TestEmbeddedReplicasShareRedis runs two toolgate replicas with
// STORE=redis behind one public origin, as a load balancer would: what one
// replica issues (registration, code, refresh token, access token), the
// other honours, because keys and state live in Redis.
func TestEmbeddedReplicasShareRedis(t *testing.T) {
	nodeDir, binary, tmp := e2eSetup(t)
	redisURL := startRedis(t, tmp)
	ports := freePorts(t, 3)
	startProcess(t, "upstream", nodeDir, []string{fmt.Sprintf("PORT=%d", ports[0])}, "node", "upstream.mjs")
	waitTCP(t, "upstream", ports[0])
	env := []string{
		fmt.Sprintf("UPSTREAM_URL=http://127.0.0.1:%d/mcp", ports[0]),
		"SCOPES_SUPPORTED=mcp:read mcp:write",
		"LOCAL_USERS=" + userLine(t, e2eUser, e2ePassword),
		"STORE=redis", "REDIS_URL=" + redisURL,
	}
	// Both replicas serve the public origin of the first; the second
	// listens elsewhere, as a second pod behind the same load balancer.
	a := startEmbedded(t, binary, tmp, ports[1], env...)
	bProc := startProcess(t, "toolgate replica b", tmp, append([]string{
		"RESOURCE_SERVER_URL=" + a.mcp,
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", ports[2]),
		"LOG_FORMAT=console",
	}, env...), binary)
	bOrigin := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	waitReady(t, bProc, bOrigin+"/readyz")

	// Register and sign in at replica a; redeem the code at replica b.
	br := newBrowser(t, a)
	code := br.code(t, nil)
	br.g = &embeddedGate{origin: bOrigin, mcp: a.mcp}
	tok := br.tokens(t, code)
	// b's access token works at a, and rotations at either replica move
	// the one family both see: a token two rotations old is reuse at a.
	assertStatus(t, postMCP(t, a.mcp, tok.AccessToken, initializeBody), http.StatusOK)
	next := br.refresh(t, tok.RefreshToken)
	if next.status != http.StatusOK {
		t.Fatalf("refresh at replica b = %d %s, want 200", next.status, next.Error)
	}
	br.g = a
	third := br.refresh(t, next.RefreshToken)
	if third.status != http.StatusOK {
		t.Fatalf("refresh at replica a of the token replica b issued = %d %s, want 200", third.status, third.Error)
	}
	if again := br.refresh(t, tok.RefreshToken); again.status != http.StatusBadRequest || again.Error != "invalid_grant" {
		t.Fatalf("two-rotations-old refresh token at replica a = %d %s, want 400 invalid_grant (reuse, seen through Redis)", again.status, again.Error)
	}
	assertStatus(t, postMCP(t, bOrigin+"/mcp", next.AccessToken, initializeBody), http.StatusOK)
}

// startRedis runs redis-server on a free loopback port for this test and
// returns its URL. Without redis-server the test skips, unless CI is set
// (.ci/run installs it). The server answering must be ours (its process
// id): a port free a moment ago can be taken by another test's server.
func startRedis(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH; .ci/run installs it")
		}
		t.Skip("redis-server is not on PATH (Debian: apt-get install redis-server)")
	}
	for attempt := 1; attempt <= 5; attempt++ {
		port := freePorts(t, 1)[0]
		p := startProcess(t, "redis", dir, nil, bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if redisIsOurs(p, addr) {
			return "redis://" + addr + "/0"
		}
		p.stop()
	}
	t.Fatal("redis-server did not come up on a port of its own in 5 attempts")
	return ""
}

func redisIsOurs(p *process, addr string) bool {
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline) && !p.exited(); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := client.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			return strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", p.cmd.Process.Pid))
		}
	}
	return false
}
