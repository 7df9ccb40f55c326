package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/toolgate/toolgate/internal/testissuer"
)

// A static key set verifies tokens signed with its keys and never fetches,
// not even for an unknown kid.
func TestStaticKeySetVerifiesWithoutFetching(t *testing.T) {
	iss := testissuer.New(t, "")
	res, err := http.Get(iss.Server.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(res.Body)
	res.Body.Close()
	hits := iss.JWKSHits()

	keys, err := NewStaticKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://mcp.example.com/mcp"
	v, err := NewJWTVerifier(JWTOptions{Issuer: iss.URL, Audiences: []string{aud}, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(context.Background(), iss.Token(t, iss.Claims(aud))); err != nil || p.Subject != "alice" {
		t.Fatalf("Verify(good) = %v, %v", p, err)
	}
	stranger := testissuer.NewECKey(t, "stranger")
	forged := iss.Sign(t, iss.Claims(aud), stranger, "at+jwt", nil)
	var te *TokenError
	if _, err := v.Verify(context.Background(), forged); !errors.As(err, &te) {
		t.Fatalf("Verify(token signed by an unknown key) = %v, want a TokenError", err)
	}
	if got := iss.JWKSHits(); got != hits {
		t.Fatalf("static key set fetched the JWKS %d times", got-hits)
	}
}

func TestStaticKeySetRejectsEmptySet(t *testing.T) {
	if _, err := NewStaticKeySet([]byte(`{"keys":[]}`)); err == nil {
		t.Fatal("NewStaticKeySet accepted a set with no keys")
	}
}
