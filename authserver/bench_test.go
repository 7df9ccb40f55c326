package authserver

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/toolgate/toolgate/authserver/store/filestore"
)

func benchServer(b *testing.B) *Server {
	b.Helper()
	st, err := filestore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s, err := New(context.Background(), Options{
		Issuer:          "https://mcp.example.com",
		Resource:        "https://mcp.example.com/mcp",
		ScopesSupported: []string{"tools:read"},
		Store:           st,
		Users:           testUsers,
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAccessToken is the signing of one RFC 9068 token (ES256).
func BenchmarkAccessToken(b *testing.B) {
	s := benchServer(b)
	c := &client{id: "bench-client"}
	u := user{Sub: "alice", Email: "alice@example.com"}
	b.ReportAllocs()
	for b.Loop() {
		var resp tokenResponse
		if oerr := s.fillAccessToken(&resp, c, u, "tools:read", s.opt.Resource); oerr != nil {
			b.Fatal(oerr)
		}
	}
}

// BenchmarkRefreshRotation is one refresh grant against the file store:
// read the family, check, compare-and-swap (a file rewrite and fsync),
// sign a new access token.
func BenchmarkRefreshRotation(b *testing.B) {
	s := benchServer(b)
	ctx := context.Background()
	c := &client{id: "bench-client", grantTypes: []string{grantAuthorizationCode, grantRefreshToken}}
	rt, err := s.newFamily(ctx, randomToken(16), c, user{Sub: "alice", Local: true, AuthTime: time.Now().Unix()}, "tools:read", s.opt.Resource)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, oerr := s.rotateRefresh(ctx, c, url.Values{"refresh_token": {rt}})
		if oerr != nil {
			b.Fatal(oerr)
		}
		rt = resp.RefreshToken
	}
}
