// Package demo is everything `toolgate demo` runs besides the gateway: a
// sample MCP server (built with the official Go SDK) whose tools cover the
// public, mixed and protected cases, and the policy that describes them.
// toolgate's own authorization server signs the demo user in. It is for
// trying toolgate on one machine; nothing here is meant for production.
package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Policy describes the sample server's tools in TOOL_POLICY_FILE form.
const Policy = `# toolgate demo policy
default: [{type: oauth2}]
tools:
  echo:     [{type: noauth}]
  search:   [{type: noauth}, {type: oauth2, scopes: []}]
  whoami:   [{type: oauth2, scopes: []}]
  add_note: [{type: oauth2, scopes: [notes:write]}]
`

// Scopes are the scopes the demo advertises and grants.
var Scopes = []string{"notes:read", "notes:write"}

type textIn struct {
	Text string `json:"text" jsonschema:"the text to use"`
}

type queryIn struct {
	Query string `json:"query" jsonschema:"what to search for"`
}

type noIn struct{}

// NewServer returns the sample MCP server as a Streamable HTTP handler. It
// trusts the X-Forwarded-User header because toolgate, in front of it, sets
// it and strips any copy a client sends.
func NewServer() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "toolgate-demo", Version: "1.0.0"}, nil)
	var mu sync.Mutex
	notes := map[string][]string{}

	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Public: echoes the text back."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			return result(in.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "search", Description: "Mixed: public results for everyone, your notes too when signed in."},
		func(ctx context.Context, req *mcp.CallToolRequest, in queryIn) (*mcp.CallToolResult, any, error) {
			found := []string{fmt.Sprintf("public result for %q", in.Query)}
			if user := req.Extra.Header.Get("X-Forwarded-User"); user != "" {
				mu.Lock()
				for _, n := range notes[user] {
					if strings.Contains(n, in.Query) {
						found = append(found, "your note: "+n)
					}
				}
				mu.Unlock()
			}
			return result(strings.Join(found, "\n")), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Protected: says who toolgate says you are."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ noIn) (*mcp.CallToolResult, any, error) {
			return result("you are " + req.Extra.Header.Get("X-Forwarded-User")), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "add_note", Description: "Protected, needs notes:write: stores a note."},
		func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			user := req.Extra.Header.Get("X-Forwarded-User")
			mu.Lock()
			notes[user] = append(notes[user], in.Text)
			n := len(notes[user])
			mu.Unlock()
			return result(fmt.Sprintf("saved; you have %d notes", n)), nil, nil
		})
	// Stateless, so a single curl can call a tool without a session.
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
}

func result(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
