package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/demo"
)

// runDemo starts the sample MCP server and toolgate in front of it, with
// toolgate as the authorization server and one generated user, all on
// loopback, and tells the user how to connect.
func runDemo(ctx context.Context, args, environ []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address toolgate listens on (loopback only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if !config.IsLoopback(host) {
		return fmt.Errorf("-addr %q: the demo serves over plain http with a printed password; it binds loopback only", *addr)
	}

	upstreamURL, stopUpstream, err := listenLoopback(demo.NewServer(), "/mcp")
	if err != nil {
		return err
	}
	defer stopUpstream()

	// A fresh data directory per run: the demo's keys, codes and refresh
	// tokens go when it stops, and two demos on other ports don't collide.
	dir, err := os.MkdirTemp("", "toolgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(demo.Policy), 0o600); err != nil {
		return err
	}
	const user = "demo"
	password := rand.Text()[:16]
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}

	// Only logging settings pass through: a REQUIRED_SCOPES or
	// AUTHORIZATION_SERVER_URL exported for a real deployment must not
	// change the demo.
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "LOG_LEVEL=") || strings.HasPrefix(kv, "LOG_FORMAT=") {
			env = append(env, kv)
		}
	}
	resource := "http://" + *addr + "/mcp"
	env = append(env,
		"UPSTREAM_URL="+upstreamURL,
		"RESOURCE_SERVER_URL="+resource,
		"LISTEN_ADDR="+*addr,
		"SCOPES_SUPPORTED="+strings.Join(demo.Scopes, " "),
		"TOOL_POLICY_FILE="+policyFile,
		"DATA_DIR="+filepath.Join(dir, "data"),
		"LOCAL_USERS="+user+":"+string(hash),
		// HTTP 401/403 challenges, which every OAuth-capable MCP client
		// acts on. ChatGPT's tool-result challenges (CHALLENGE_MODE=auto)
		// would not help here: ChatGPT cannot reach a loopback address.
		"CHALLENGE_MODE=http",
	)
	if !hasVar(environ, "LOG_FORMAT") {
		env = append(env, "LOG_FORMAT=console")
	}
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, env, listening) }()
	select {
	case err := <-done:
		return err
	case <-listening:
	}
	origin := "http://" + *addr
	fmt.Fprintf(out, `
toolgate demo is running. Press Ctrl-C to stop.

  MCP endpoint          %[1]s
  sign in as            user %[3]s   password %[4]s
  authorization server  %[2]s (toolgate itself)
  upstream (sample)     %[5]s

Connect any MCP client that speaks OAuth to %[1]s — for example MCP Inspector:
  npx @modelcontextprotocol/inspector
  then: transport "Streamable HTTP", URL %[1]s, "Open Auth Settings" → "Quick OAuth Flow".
  The client registers itself, your browser shows toolgate's sign-in and consent pages,
  and the client gets a token for this endpoint only.

Tools: echo is public; search is public and says more when you are signed in;
whoami needs sign-in; add_note needs the notes:write scope (consent asks for it).

Anyone may call echo without signing in:
  curl -s %[1]s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'

whoami without a token is answered 401 with the WWW-Authenticate challenge that makes
MCP clients sign in:
  curl -si %[1]s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'

`, resource, origin, user, password, upstreamURL)
	err = <-done
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// listenLoopback serves h on a free loopback port and returns its URL.
func listenLoopback(h http.Handler, path string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + path, func() { _ = srv.Close() }, nil
}

func hasVar(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
