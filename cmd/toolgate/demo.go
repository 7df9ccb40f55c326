package main

import (
	"context"
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

	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/demo"
)

// runDemo starts the sample MCP server, a development issuer and toolgate in
// front of them, all on loopback, and tells the user how to connect.
func runDemo(ctx context.Context, args, environ []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address toolgate listens on (loopback unless you mean otherwise)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if !config.IsLoopback(host) {
		return fmt.Errorf("-addr %q: the demo serves over plain http and mints tokens for anyone who asks its owner; it binds loopback only", *addr)
	}

	upstreamURL, stopUpstream, err := listenLoopback(demo.NewServer(), "/mcp")
	if err != nil {
		return err
	}
	defer stopUpstream()
	issuerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer, err := demo.NewIssuer("http://" + issuerLn.Addr().String())
	if err != nil {
		return err
	}
	issuerSrv := &http.Server{Handler: issuer, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = issuerSrv.Serve(issuerLn) }()
	defer issuerSrv.Close()

	resource := "http://" + *addr + "/mcp"
	dir := filepath.Join(os.TempDir(), "toolgate-demo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	token, err := issuer.Mint("demo-user", resource, demo.Scopes, 24*time.Hour)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(demo.Policy), 0o600); err != nil {
		return err
	}

	// Only logging settings pass through: a REQUIRED_SCOPES or
	// CHALLENGE_MODE exported for a real deployment must not change the demo.
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "LOG_LEVEL=") || strings.HasPrefix(kv, "LOG_FORMAT=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"UPSTREAM_URL="+upstreamURL,
		"RESOURCE_SERVER_URL="+resource,
		"AUTHORIZATION_SERVER_URL="+issuer.URL,
		"LISTEN_ADDR="+*addr,
		"SCOPES_SUPPORTED="+strings.Join(demo.Scopes, " "),
		"TOOL_POLICY_FILE="+policyFile,
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
	fmt.Fprintf(out, `
toolgate demo is running. Press Ctrl-C to stop.

  MCP endpoint        %[1]s
  upstream (sample)   %[2]s
  issuer (dev only)   %[3]s
  access token        %[4]s   (sub demo-user, scopes %[5]s, 24 h)
  policy              %[6]s
                      echo: public   search: public, more when signed in
                      whoami: signed in   add_note: signed in with notes:write

Anyone may list tools and call echo:
  curl -s %[1]s -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'

whoami without a token returns the sign-in challenge ChatGPT acts on; with the token it runs:
  curl -s %[1]s -H "Authorization: Bearer $(cat %[4]s)" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'

MCP Inspector (npx @modelcontextprotocol/inspector): transport "Streamable HTTP",
URL %[1]s, Authentication: Bearer token = the contents of %[4]s.

`, resource, upstreamURL, issuer.URL, tokenFile, strings.Join(demo.Scopes, " "), policyFile)
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
