package auth

import (
	"context"
	"testing"

	"github.com/toolgate/toolgate/internal/testissuer"
)

// benchVerifier is newVerifier for benchmarks: real keys from a real JWKS
// over httptest, loaded before the clock starts.
func benchVerifier(b *testing.B, iss *testissuer.Issuer, cacheSize int) *JWTVerifier {
	b.Helper()
	keys := NewRemoteKeySet(iss.Server.URL+"/jwks", iss.Server.Client())
	if err := keys.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	v, err := NewJWTVerifier(JWTOptions{Issuer: iss.URL, Audiences: []string{resource}, Keys: keys, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkVerifyCached is the hot path: a token seen before costs a SHA-256
// of its bytes and a map lookup, no signature check.
func BenchmarkVerifyCached(b *testing.B) {
	iss := testissuer.New(b, "")
	v := benchVerifier(b, iss, 100)
	token := iss.Token(b, iss.Claims(resource))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(token)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel shows whether the cache's lock becomes the
// bottleneck when every core verifies at once.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	iss := testissuer.New(b, "")
	v := benchVerifier(b, iss, 100)
	token := iss.Token(b, iss.Claims(resource))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyUncached is the first request with a new token: parse,
// signature check and claims, with the cache switched off.
func BenchmarkVerifyUncached(b *testing.B) {
	iss := testissuer.New(b, "")
	v := benchVerifier(b, iss, 0)
	for _, key := range iss.Keys() { // rsa-1 (RS256), ec-1 (ES256)
		b.Run(key.Alg.String(), func(b *testing.B) {
			token := iss.Sign(b, iss.Claims(resource), key, "at+jwt", nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
