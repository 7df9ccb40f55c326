package main

import (
	"net"
	"net/http"
	"testing"
)

// freePort asks the kernel for a free loopback port. The port is released
// before toolgate binds it; on a busy machine another process could take it
// in between, which would fail the test loudly rather than silently.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// restartOn serves the upstream's handler again on addr after it was closed.
func restartOn(t *testing.T, g *gate, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not rebind %s: %v", addr, err)
	}
	srv := &http.Server{Handler: g.up.Server.Config.Handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}
