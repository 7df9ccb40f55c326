// Command loadenv is the environment bench/load.sh measures toolgate in: a
// fast upstream MCP server (the official Go SDK, stateless, JSON responses,
// one echo tool) and a minimal authorization server with a real RSA key that
// publishes RFC 8414 metadata and a JWKS. It writes the settings toolgate
// needs to <dir>/env and a signed access token to <dir>/token, then serves
// until it is killed.
//
// It exists only for benchmarks: it listens on 127.0.0.1 and nowhere else,
// issues tokens to nobody over the network, and never prints the token.
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadenv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadenv", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write env and token into (required)")
	toolgateAddr := fs.String("toolgate-addr", "", "loopback host:port toolgate will listen on; empty picks a free port")
	ttl := fs.Duration("token-ttl", 24*time.Hour, "lifetime of the access token")
	gogc := fs.Int("gogc", 1600, "GC percent for this process (the upstream), as GOGC")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	// The SDK's JSON decoding allocates about 370 KB per tools/call (go-sdk
	// v1.8.0 makes a new decoder, with a fresh buffer, for every message)
	// while the live heap stays under 1 MB, so at GOGC=100 the upstream collects garbage every few
	// requests and spends most of its time there. A larger GOGC makes it
	// the fast upstream the comparison needs: a slow upstream would hide
	// toolgate's cost.
	debug.SetGCPercent(*gogc)
	if *toolgateAddr == "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		*toolgateAddr = addr
	} else if host, _, err := net.SplitHostPort(*toolgateAddr); err != nil || host != "127.0.0.1" {
		return fmt.Errorf("-toolgate-addr must be 127.0.0.1:PORT; got %q", *toolgateAddr)
	}

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	iss := &issuer{url: "http://" + issLn.Addr().String(), key: key, kid: "loadenv-rsa-1"}
	resource := "http://" + *toolgateAddr + "/mcp"
	upstreamURL := "http://" + upLn.Addr().String() + "/mcp"

	token, err := iss.token(resource, time.Now(), *ttl)
	if err != nil {
		return err
	}
	env := strings.Join([]string{
		"UPSTREAM_URL=" + upstreamURL,
		"RESOURCE_SERVER_URL=" + resource,
		"AUTHORIZATION_SERVER_URL=" + iss.url,
		"LISTEN_ADDR=" + *toolgateAddr,
	}, "\n") + "\n"

	// Counting the upstream's new connections shows whether toolgate
	// reuses its upstream connections under load or reconnects.
	var conns atomic.Int64
	servers := []*http.Server{
		{
			Handler:           upstreamHandler(&conns),
			ReadHeaderTimeout: 10 * time.Second,
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			},
		},
		{Handler: iss.handler(), ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	go func() { errc <- servers[0].Serve(upLn) }()
	go func() { errc <- servers[1].Serve(issLn) }()

	// The files appear only once both servers accept connections, and
	// whole: load.sh starts as soon as it sees env.
	if err := writeFileAtomic(filepath.Join(*dir, "token"), []byte(token), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(*dir, "env"), []byte(env), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%stoken in %s\n", env, filepath.Join(*dir, "token"))

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	return nil
}

type echoIn struct {
	Text string `json:"text"`
}

// upstreamHandler is the fastest honest MCP server the SDK offers: no
// sessions, and a plain JSON response instead of an SSE stream per call.
// GET /loadenv/connections reports how many connections it has accepted.
func upstreamHandler(conns *atomic.Int64) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "loadenv-upstream", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its text."},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	mux.HandleFunc("GET /loadenv/connections", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, conns.Load())
	})
	return mux
}

// issuer is just enough of an authorization server for toolgate: metadata
// and a JWKS. Tokens are minted locally by token, never over HTTP.
type issuer struct {
	url string
	key *rsa.PrivateKey
	kid string
}

func (i *issuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                           i.url,
			"authorization_endpoint":           i.url + "/authorize",
			"token_endpoint":                   i.url + "/token",
			"jwks_uri":                         i.url + "/jwks",
			"response_types_supported":         []string{"code"},
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		pub := i.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.kid,
			"n": b64(pub.N.Bytes()),
			"e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	return mux
}

// token mints an RFC 9068 access token for audience, signed RS256.
func (i *issuer) token(audience string, now time.Time, ttl time.Duration) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": i.kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss":       i.url,
		"sub":       "bench-user",
		"aud":       audience,
		"client_id": "loadenv",
		"scope":     "mcp:read mcp:write",
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
		"jti":       fmt.Sprintf("loadenv-%d", now.UnixNano()),
	})
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// freeLoopbackAddr asks the kernel for a free port. Another process could
// take it before toolgate binds it; on a benchmark machine that is rare,
// and toolgate then fails loudly on LISTEN_ADDR.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
