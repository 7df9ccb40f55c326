package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/internal/testissuer"
	"github.com/toolgate/toolgate/internal/testupstream"
)

// gate is a running toolgate for one test.
type gate struct {
	base     string // http://127.0.0.1:PORT
	mcp      string // base + /mcp
	iss      *testissuer.Issuer
	up       *testupstream.Upstream
	stop     context.CancelFunc
	finished chan error
}

// startGate runs serve() with a real issuer and a real go-sdk upstream;
// extra overrides or adds environment variables. It waits until ready.
func startGate(t *testing.T, extra ...string) *gate {
	t.Helper()
	iss := testissuer.New(t, "")
	up := testupstream.New(t)
	return startGateWith(t, iss, up, true, extra...)
}

func startGateWith(t *testing.T, iss *testissuer.Issuer, up *testupstream.Upstream, waitReady bool, extra ...string) *gate {
	t.Helper()
	// The resource URL must name the port before it is known; reserve it
	// by listening on port 0 inside serve and rewriting after: simpler to
	// use a fixed path and learn the port from the listening channel.
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	g := &gate{iss: iss, up: up, stop: cancel, finished: make(chan error, 1)}
	port := freePort(t)
	g.base = "http://127.0.0.1:" + port
	g.mcp = g.base + "/mcp"
	environ := append([]string{
		"UPSTREAM_URL=" + up.URL,
		"RESOURCE_SERVER_URL=" + g.mcp,
		"AUTHORIZATION_SERVER_URL=" + iss.URL,
		"LISTEN_ADDR=127.0.0.1:" + port,
		"LOG_LEVEL=error",
	}, extra...)
	go func() { g.finished <- serve(ctx, environ, listening) }()
	select {
	case <-listening:
	case err := <-g.finished:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("toolgate did not start listening")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.finished:
		case <-time.After(10 * time.Second):
			t.Error("toolgate did not shut down")
		}
	})
	if waitReady {
		g.waitReady(t, 5*time.Second)
	}
	return g
}

func (g *gate) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("toolgate did not become ready")
}

func (g *gate) token(t *testing.T) string {
	return g.iss.Token(t, g.iss.Claims(g.mcp))
}

// bearerTransport adds a token to every request, as an MCP client would.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func connect(t *testing.T, g *gate, token string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, opts)
	httpClient := http.DefaultClient
	if token != "" {
		httpClient = &http.Client{Transport: bearerTransport{token: token, base: http.DefaultTransport}}
	}
	transport := &mcp.StreamableClientTransport{Endpoint: g.mcp, HTTPClient: httpClient, MaxRetries: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("connect through toolgate: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func text(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	if len(r.Content) != 1 {
		t.Fatalf("content = %#v", r.Content)
	}
	return r.Content[0].(*mcp.TextContent).Text
}

func TestGoSDKClientThroughToolgate(t *testing.T) {
	g := startGate(t)
	var progress atomic.Int32
	cs := connect(t, g, g.token(t), &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	ctx := context.Background()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 4 {
		t.Fatalf("tools = %d, want 4", len(tools.Tools))
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "héllo \u2028 world"}})
	if err != nil || text(t, res) != "héllo \u2028 world" {
		t.Fatalf("echo: %v %v", res, err)
	}

	// Identity reaches the upstream; the token does not.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, res); got != "user=alice email= authorization=false" {
		t.Fatalf("upstream saw %q", got)
	}

	// Progress notifications stream through as SSE events before the result.
	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"from": 4}}
	params.SetProgressToken("p1")
	res, err = cs.CallTool(ctx, params)
	if err != nil || text(t, res) != "liftoff" {
		t.Fatalf("countdown: %v %v", res, err)
	}
	// The SDK hands notifications to their handler on its own goroutine,
	// so the last one may be handled just after the result: wait a little.
	for deadline := time.Now().Add(2 * time.Second); progress.Load() < 4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := progress.Load(); n != 4 {
		t.Fatalf("progress notifications = %d, want 4", n)
	}
}

func TestForwardAccessToken(t *testing.T) {
	g := startGate(t, "FORWARD_ACCESS_TOKEN=true")
	cs := connect(t, g, g.token(t), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || text(t, res) != "user=alice email= authorization=true" {
		t.Fatalf("whoami: %v %v", res, err)
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	err := run(context.Background(), nil, []string{
		"RESOURCE_SERVER_URL=http://mcp.example.com/mcp",
		"MAX_BODY_BYTES=lots",
		"LOG_FORMAT=xml",
	})
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"UPSTREAM_URL is required", "AUTHORIZATION_SERVER_URL is empty, so toolgate is the authorization server", "RESOURCE_SERVER_URL must use https", "MAX_BODY_BYTES must be a whole number", "LOG_FORMAT must be json or console"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestReadinessFollowsIssuer(t *testing.T) {
	iss := testissuer.New(t, "")
	iss.SetDown(true)
	g := startGateWith(t, iss, testupstream.New(t), false)
	var status int
	var body map[string]string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(g.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		status = resp.StatusCode
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if strings.Contains(body["reason"], "status 503") {
			break
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body["reason"], "status 503") {
		t.Fatalf("readyz = %d %v, want 503 naming the failure", status, body)
	}
	// A valid token cannot be checked yet: 503, not invalid_token.
	req, _ := http.NewRequest(http.MethodPost, g.mcp, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+g.token(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("before keys: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	iss.SetDown(false)
	g.waitReady(t, 5*time.Second) // first retry comes after 1 s of backoff
	resp, err = http.Get(g.base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
}

func TestShutdownEndsOpenStreams(t *testing.T) {
	g := startGate(t, "SHUTDOWN_TIMEOUT=5s")
	connect(t, g, g.token(t), nil) // opens the standalone GET stream
	g.stop()
	select {
	case err := <-g.finished:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
		g.finished <- nil // for the cleanup
	case <-time.After(4 * time.Second):
		t.Fatal("shutdown waited for the open GET stream")
	}
}

// Events leave toolgate as the upstream sends them, and a client that hangs
// up mid-stream cancels the upstream's work.
func TestStreamingAndCancellation(t *testing.T) {
	g := startGate(t)
	tok := g.token(t)
	sid := session(t, g, tok)
	body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"countdown","arguments":{"from":40},"_meta":{"progressToken":"p"}}}`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.mcp, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers: %v", resp.Header)
	}
	// The countdown takes 2 s in all; its first progress event must arrive
	// long before that, or toolgate is buffering.
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		first <- string(buf[:n])
	}()
	select {
	case ev := <-first:
		if !strings.Contains(ev, "notifications/progress") {
			t.Fatalf("first bytes %q", ev)
		}
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("no event before the stream ended: the response was buffered")
	}
	cancel() // hang up mid-stream
	deadline := time.Now().Add(3 * time.Second)
	for g.up.Cancelled() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g.up.Cancelled() == 0 {
		t.Fatal("the upstream kept working after the client went away")
	}
}

// A GET stream never outlives the token that opened it.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	g := startGate(t)
	long := g.token(t)
	sid := session(t, g, long)
	c := g.iss.Claims(g.mcp)
	c["exp"] = time.Now().Add(1500 * time.Millisecond).Unix()
	short := g.iss.Token(t, c)

	req, _ := http.NewRequest(http.MethodGet, g.mcp, nil)
	req.Header.Set("Authorization", "Bearer "+short)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open after its token expired")
	}
}
