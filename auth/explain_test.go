package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// DescribeKeySet must keep exactly the keys parseKeySet keeps, or toolgate
// check would describe keys the server does not use.
func TestDescribeKeySetFollowsParseKeySet(t *testing.T) {
	const ec = `"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"`
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK, _ := jwk.PublicKeyOf(&small.PublicKey)
	_ = smallJWK.Set(jwk.KeyIDKey, "small")
	smallJSON, _ := json.Marshal(smallJWK)

	tests := []struct {
		name, jwks string
		usable     []string // kids
		ignored    []string // "kid: reason substring"
	}{
		{"symmetric key", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`, nil, []string{"h: HMAC"}},
		{"encryption key", `{"keys":[{"kty":"EC","crv":"P-256","use":"enc","kid":"e",` + ec + `}]}`, nil, []string{`e: use "enc"`}},
		{"EC signature key", `{"keys":[{"kty":"EC","crv":"P-256","kid":"e",` + ec + `}]}`, []string{"e"}, nil},
		{"alg that does not fit", `{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256","kid":"e",` + ec + `}]}`, nil, []string{"e: does not fit"}},
		{"RSA under 2048 bits", `{"keys":[` + string(smallJSON) + `]}`, nil, []string{"small: shorter than 2048"}},
		{"mixed", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"},{"kty":"EC","crv":"P-256","alg":"ES256","kid":"e",` + ec + `}]}`, []string{"e"}, []string{"h: HMAC"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			usable, ignored, err := DescribeKeySet([]byte(tc.jwks))
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range usable {
				kids = append(kids, k.KID)
				if k.Public == nil || len(k.Algs) == 0 {
					t.Errorf("key %+v", k)
				}
			}
			if !slices.Equal(kids, tc.usable) {
				t.Errorf("usable %v, want %v", kids, tc.usable)
			}
			if len(ignored) != len(tc.ignored) {
				t.Fatalf("ignored %+v, want %v", ignored, tc.ignored)
			}
			for i, want := range tc.ignored {
				kid, reason, _ := strings.Cut(want, ": ")
				if ignored[i].KID != kid || !strings.Contains(ignored[i].Reason, reason) {
					t.Errorf("ignored %+v, want %s", ignored[i], want)
				}
			}
			km, err := parseKeySet([]byte(tc.jwks))
			if (err == nil) != (len(usable) > 0) || err == nil && len(km.byKID) != len(usable) {
				t.Errorf("parseKeySet keeps %v (%v); DescribeKeySet %d keys", km, err, len(usable))
			}
		})
	}
	if _, _, err := DescribeKeySet([]byte(`<html>`)); err == nil {
		t.Error("not JSON: want an error")
	}
}
