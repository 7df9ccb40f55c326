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

	env := append(environ,
		"UPSTREAM_URL="+upstreamURL,
		"RESOURCE_SERVER_URL="+resource,
		"AUTHORIZATION_SERVER_URL="+issuer.URL,
		"LISTEN_ADDR="+*addr,
		"SCOPES_SUPPORTED="+strings.Join(demo.Scopes, " "),
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

  MCP endpoint        %s
  upstream (sample)   %s   tools: echo, search, whoami, add_note
  issuer (dev only)   %s
  access token        %s   (sub demo-user, scopes %s, 24 h)

Without a token toolgate answers 401 with a challenge:
  curl -i -X POST %s -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"ping"}'

With the token the request reaches the sample server:
  curl -X POST %s -H "Authorization: Bearer $(cat %s)" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

MCP Inspector (npx @modelcontextprotocol/inspector): transport "Streamable HTTP",
URL %s, Authentication: Bearer token = the contents of %s.

`, resource, upstreamURL, issuer.URL, tokenFile, strings.Join(demo.Scopes, " "), resource, resource, tokenFile, resource, tokenFile)
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
