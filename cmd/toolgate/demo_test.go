package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// toolgate demo, driven by the go-sdk client: public tools anonymously,
// protected ones with the token it wrote.
func TestDemo(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"-addr", "127.0.0.1:" + port}, []string{"LOG_LEVEL=error"}, &out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("demo did not stop")
		}
	})
	g := &gate{base: "http://127.0.0.1:" + port, mcp: "http://127.0.0.1:" + port + "/mcp"}
	g.waitReady(t, 5*time.Second)

	anon := connect(t, g, "", nil)
	res, err := anon.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || text(t, res) != "hi" {
		t.Fatalf("anonymous echo: %v %v", res, err)
	}
	// whoami without a token: 401 and the challenge that sends MCP clients
	// to the metadata, then to toolgate's own sign-in.
	req, _ := http.NewRequest(http.MethodPost, g.mcp, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if challenge := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="`+g.base+"/.well-known/oauth-protected-resource/mcp") {
		t.Fatalf("anonymous whoami = %d %q, want 401 with the resource metadata challenge", resp.StatusCode, challenge)
	}

	// The banner names a user and password, and the authorization server
	// they sign in at is toolgate itself. (test/authserver_e2e_test.go signs
	// in with them through the TypeScript SDK.)
	if !regexp.MustCompile(`user demo\s+password [A-Z2-7]{16}\b`).MatchString(out.String()) {
		t.Fatalf("banner does not name the demo user and password:\n%s", out.String())
	}
	prm := getJSON(t, g.base+"/.well-known/oauth-protected-resource/mcp")
	if fmt.Sprint(prm["authorization_servers"]) != "["+g.base+"]" {
		t.Fatalf("PRM authorization_servers = %v, want toolgate itself", prm["authorization_servers"])
	}
	md := getJSON(t, g.base+"/.well-known/oauth-authorization-server")
	if md["issuer"] != g.base || md["registration_endpoint"] != g.base+"/register" {
		t.Fatalf("authorization server metadata = %v", md)
	}
	if !strings.Contains(out.String(), g.mcp) {
		t.Fatalf("banner does not name the endpoint:\n%s", out.String())
	}
}

func TestDemoRefusesPublicAddress(t *testing.T) {
	err := runDemo(context.Background(), []string{"-addr", "0.0.0.0:8080"}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("err = %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the demo goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		t.Fatalf("GET %s = %d, want 200 with JSON", url, resp.StatusCode)
	}
	return v
}
