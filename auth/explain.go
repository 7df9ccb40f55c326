package auth

import (
	"crypto"
	"fmt"
	"sort"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// SigningKey is a key of a JWKS document that toolgate would verify tokens
// with, and the "alg" values it may verify.
type SigningKey struct {
	KID    string
	Algs   []string
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// IgnoredKey is a key toolgate skips, and why.
type IgnoredKey struct {
	KID, Type, Reason string
}

// DescribeKeySet applies RemoteKeySet's rules to a JWKS document and says
// which keys toolgate would use and which it would skip. It exists for
// diagnostics (toolgate check); verification never calls it.
func DescribeKeySet(body []byte) ([]SigningKey, []IgnoredKey, error) {
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var usable []SigningKey
	var ignored []IgnoredKey
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kty := k.KeyType().String()
		if u := k.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
			ignored = append(ignored, IgnoredKey{KID: k.KeyID(), Type: kty, Reason: fmt.Sprintf("use %q is not sig", u)})
			continue
		}
		pk, err := toPublicKey(k)
		if err != nil {
			reason := err.Error()
			if kty == "oct" {
				reason = "symmetric (HMAC) key; never used to verify"
			}
			ignored = append(ignored, IgnoredKey{KID: k.KeyID(), Type: kty, Reason: reason})
			continue
		}
		sk := SigningKey{KID: k.KeyID(), Public: pk.raw}
		for a := range pk.algs {
			sk.Algs = append(sk.Algs, a.String())
		}
		sort.Strings(sk.Algs)
		usable = append(usable, sk)
	}
	return usable, ignored, nil
}
