package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/internal/testissuer"
)

// A client that declares a large body and then stalls gets 400 once the
// read deadline passes; its connection does not hold a buffer forever.
func TestStalledBodyTimesOut(t *testing.T) {
	defer func(d time.Duration) { bodyReadTimeout = d }(bodyReadTimeout)
	bodyReadTimeout = 300 * time.Millisecond

	const resource = "http://127.0.0.1/mcp"
	iss := testissuer.New(t, "")
	keys := auth.NewRemoteKeySet(iss.Server.URL+"/jwks", iss.Server.Client())
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: iss.URL, Audiences: []string{resource}, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	g := New(Options{Upstream: upURL, Transport: up.Client().Transport, Verifier: v, MaxBodyBytes: 4 << 20,
		ResourceMetadataURL: "http://127.0.0.1/.well-known/oauth-protected-resource/mcp"})
	srv := httptest.NewServer(g)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tok := iss.Token(t, iss.Claims(resource))
	_, _ = conn.Write([]byte("POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
		"\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n{\"jsonrpc\""))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest || time.Since(start) > 3*time.Second {
		t.Fatalf("status %d after %s", resp.StatusCode, time.Since(start))
	}
	if reached.Load() {
		t.Fatal("a partial body reached the upstream")
	}
}
