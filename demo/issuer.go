package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Issuer is a development authorization server with one ES256 key made at
// start. It publishes RFC 8414 metadata and a JWKS, and mints RFC 9068
// access tokens on request of the process that owns it; it has no
// authorization endpoint, so no client can obtain a token from it.
type Issuer struct {
	URL string
	key jwk.Key
	pub []byte // the JWKS document
}

// NewIssuer makes a key for an issuer that will be served at url.
func NewIssuer(url string) (*Issuer, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kidBytes := make([]byte, 8)
	_, _ = rand.Read(kidBytes)
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	_ = key.Set(jwk.KeyIDKey, "demo-"+hex.EncodeToString(kidBytes))
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return &Issuer{URL: strings.TrimSuffix(url, "/"), key: key, pub: doc}, nil
}

// ServeHTTP serves the metadata and the JWKS.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                   i.URL,
			"jwks_uri":                 i.URL + "/jwks.json",
			"scopes_supported":         Scopes,
			"response_types_supported": []string{"code"},
		})
	case "/jwks.json":
		_, _ = w.Write(i.pub)
	default:
		http.NotFound(w, r)
	}
}

// Mint signs an access token for sub, valid for ttl, for audience aud.
func (i *Issuer) Mint(sub, aud string, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	tok, err := jwt.NewBuilder().
		Issuer(i.URL).Subject(sub).Audience([]string{aud}).
		IssuedAt(now).Expiration(now.Add(ttl)).JwtID(hex.EncodeToString(jti)).
		Claim("client_id", "toolgate-demo").
		Claim("scope", strings.Join(scopes, " ")).
		Build()
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "at+jwt") // RFC 9068 explicit typing
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, i.key, jws.WithProtectedHeaders(hdr)))
	return string(signed), err
}
