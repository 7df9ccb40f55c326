// Package testupstream runs a real MCP server, built with the official Go
// SDK, on 127.0.0.1 for tests and benchmarks. It records what reached it so
// tests can prove what toolgate forwarded and what it kept back.
package testupstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Upstream is a running MCP server. URL is its MCP endpoint.
type Upstream struct {
	URL    string
	Server *httptest.Server

	requests  atomic.Int64
	cancelled atomic.Int64
	mu        sync.Mutex
	last      *http.Request
	lastBody  []byte
}

type echoIn struct {
	Text string `json:"text"`
}

type countdownIn struct {
	From int `json:"from"`
}

type whoamiIn struct{}

// New starts the server with four tools: echo (returns its text), whoami
// (returns the identity headers it received), countdown (sends one progress
// notification per step, 50 ms apart, so the response is an SSE stream whose
// events arrive over time) and declared (which declares its own
// securitySchemes, noauth, in _meta, as Apps SDK servers do). Responses are
// event streams.
func New(t testing.TB) *Upstream { return start(t, nil) }

// NewJSON is New with application/json responses instead of event streams.
func NewJSON(t testing.TB) *Upstream {
	return start(t, &mcp.StreamableHTTPOptions{JSONResponse: true})
}

func start(t testing.TB, opts *mcp.StreamableHTTPOptions) *Upstream {
	t.Helper()
	u := &Upstream{}
	server := mcp.NewServer(&mcp.Implementation{Name: "test-upstream", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its text."},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Reports the identity headers."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ whoamiIn) (*mcp.CallToolResult, any, error) {
			h := req.Extra.Header
			text := fmt.Sprintf("user=%s email=%s authorization=%t", h.Get("X-Forwarded-User"), h.Get("X-Forwarded-Email"), h.Get("Authorization") != "")
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "countdown", Description: "Streams progress."},
		func(ctx context.Context, req *mcp.CallToolRequest, in countdownIn) (*mcp.CallToolResult, any, error) {
			token := req.Params.GetProgressToken()
			for i := in.From; i > 0; i-- {
				if token != nil {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: token, Progress: float64(in.From - i + 1), Total: float64(in.From),
						Message: fmt.Sprintf("%d", i),
					})
				}
				select {
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "liftoff"}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "declared", Description: "Declares its own schemes.",
		Meta: mcp.Meta{"securitySchemes": []map[string]any{{"type": "noauth"}}}},
		func(ctx context.Context, req *mcp.CallToolRequest, _ whoamiIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "declared ok"}}}, nil, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, opts)
	mux := http.NewServeMux()
	mux.Handle("/upstream/mcp", u.record(handler))
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Server.Close)
	u.URL = u.Server.URL + "/upstream/mcp"
	return u
}

func (u *Upstream) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.lastBody = body
		u.mu.Unlock()
		next.ServeHTTP(w, r)
		if r.Context().Err() != nil {
			u.cancelled.Add(1)
		}
	})
}

// Cancelled counts requests whose HTTP request context ended before the
// handler finished, as it does when the proxy in front cancels them.
func (u *Upstream) Cancelled() int64 { return u.cancelled.Load() }

// Requests counts the requests that reached the upstream.
func (u *Upstream) Requests() int64 { return u.requests.Load() }

// Last returns a copy of the last request that reached the upstream, and
// the exact body bytes it carried.
func (u *Upstream) Last() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.lastBody
}
