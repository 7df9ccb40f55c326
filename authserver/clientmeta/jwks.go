package clientmeta

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

const (
	// jwksMaxBytes caps a fetched JWK Set. A set of a few RSA keys is
	// about 2 KB; 64 KiB leaves room for rotation without letting a
	// jwks_uri make toolgate hold much memory per entry.
	jwksMaxBytes = 64 << 10
	// maxJWKSCacheSize bounds the key-set cache separately from the
	// document cache: at 64 KiB an entry, 100 entries cap it near 6.4 MB.
	// Only clients using private_key_jwt have a jwks_uri, so few are
	// needed; eviction costs one refetch.
	maxJWKSCacheSize = 100
)

var jwksKind = &kind{
	noun:      "the JWK Set at jwks_uri",
	param:     "jwks_uri",
	accept:    "application/jwk-set+json, application/json",
	wantType:  "application/jwk-set+json or application/json",
	mediaType: func(mt string) bool { return mt == "application/json" || mt == "application/jwk-set+json" },
	maxBytes:  func(*Fetcher) int64 { return jwksMaxBytes },
}

// fetchJWKS GETs uri and checks that the body has the shape of a JWK Set.
func (f *Fetcher) fetchJWKS(ctx context.Context, uri string) ([]byte, time.Duration, error) {
	body, ttl, err := f.get(ctx, uri, jwksKind)
	if err != nil {
		return nil, 0, err
	}
	if problem := jwksShapeProblem(body); problem != "" {
		return nil, 0, newError("the JWK Set at jwks_uri "+problem, nil)
	}
	return body, ttl, nil
}

// jwksShapeProblem says what keeps raw from being a JWK Set (RFC 7517 §5),
// or "" if it is one: a JSON object whose "keys" is a non-empty array of
// objects. Whether the keys are usable is the verifier's business.
func jwksShapeProblem(raw []byte) string {
	if !isJSONObject(raw) {
		return "is not a JSON object"
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return "is not valid JSON or its \"keys\" is not an array"
	}
	if len(set.Keys) == 0 {
		return "has no keys"
	}
	for _, k := range set.Keys {
		if !isJSONObject(k) {
			return "has a key that is not a JSON object"
		}
	}
	return ""
}

func isJSONObject(raw []byte) bool {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}
