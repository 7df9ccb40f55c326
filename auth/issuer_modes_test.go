package auth

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/internal/testendpoints"
	"github.com/toolgate/toolgate/internal/testissuer"
)

// hosts records every host a client calls.
type hosts struct {
	mu   sync.Mutex
	seen []string
	base http.RoundTripper
}

func (h *hosts) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.URL.Host)
	h.mu.Unlock()
	return h.base.RoundTrip(r)
}

func waitReady(t *testing.T, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Google: keys from the configured URL, and no call to Google's discovery.
func TestIssuerSkipDiscovery(t *testing.T) {
	g := testendpoints.NewGoogle(t)
	h := &hosts{base: g.Server.Client().Transport}
	is := NewIssuer(GoogleIssuer, g.JWKSURL, &http.Client{Transport: h}, time.Hour, zap.NewNop())
	is.SkipDiscovery = true
	if is.Ready() == nil {
		t.Fatal("ready before loading")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go is.Run(ctx)
	waitReady(t, is.Ready)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, host := range h.seen {
		if host != g.Server.Listener.Addr().String() {
			t.Fatalf("called %s", host)
		}
	}
	if is.Metadata() != nil {
		t.Fatal("metadata was fetched")
	}
}

// Introspection only: metadata is enough, and no JWKS is fetched.
func TestIssuerMetadataOnly(t *testing.T) {
	iss := testissuer.New(t, "")
	is := NewIssuer(iss.URL, "", iss.Server.Client(), time.Hour, zap.NewNop())
	is.MetadataOnly = true
	done := make(chan struct{})
	go func() { is.Run(context.Background()); close(done) }()
	waitReady(t, is.Ready)
	select {
	case <-done: // nothing to refresh, so Run has returned
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept running with nothing to refresh")
	}
	if is.Metadata() == nil || iss.JWKSHits() != 0 {
		t.Fatalf("metadata %v, JWKS fetches %d", is.Metadata(), iss.JWKSHits())
	}
}
