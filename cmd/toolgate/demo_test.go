package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	res, err = anon.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError || res.Meta["mcp/www_authenticate"] == nil {
		t.Fatalf("anonymous whoami should be challenged: %v %v", res, err)
	}

	token, err := os.ReadFile(filepath.Join(os.TempDir(), "toolgate-demo", "token"))
	if err != nil {
		t.Fatal(err)
	}
	signed := connect(t, g, string(token), nil)
	res, err = signed.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || text(t, res) != "you are demo-user" {
		t.Fatalf("whoami with token: %v %v", res, err)
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
