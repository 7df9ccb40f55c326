package authserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/toolgate/toolgate/authserver/store"
)

// Store keys of the server's own long-lived secrets. They never expire:
// regenerating the signing key would invalidate every token in flight, and
// regenerating the HMAC secret every registered client and session.
const (
	signingKeyName = "key:signing"
	hmacSecretName = "key:hmac"
	hmacSecretSize = 32
)

// signer signs access tokens with the server's private key.
type signer struct {
	alg  jwa.SignatureAlgorithm
	key  jwk.Key // private, with kid and alg set
	kid  string
	jwks []byte // public JWK Set JSON
}

// loadSigner uses pemKey when given; otherwise it loads the key stored under
// "key:signing", creating an ES256 key there the first time. When several
// replicas start at once, exactly one Create wins and the others read its key.
func loadSigner(ctx context.Context, st store.Store, pemKey []byte) (*signer, error) {
	if len(pemKey) > 0 {
		priv, err := parsePrivateKeyPEM(pemKey)
		if err != nil {
			return nil, fmt.Errorf("authserver: signing key: %w", err)
		}
		return newSigner(priv)
	}
	stored, err := loadOrCreate(ctx, st, signingKeyName, generateSigningKey)
	if err != nil {
		return nil, err
	}
	priv, err := parsePrivateKeyPEM(stored)
	if err != nil {
		return nil, fmt.Errorf("authserver: signing key stored under %q: %w", signingKeyName, err)
	}
	return newSigner(priv)
}

// loadHMACSecret returns the 32-byte secret behind session cookies, CSRF
// tokens and self-contained client registrations.
func loadHMACSecret(ctx context.Context, st store.Store) ([]byte, error) {
	secret, err := loadOrCreate(ctx, st, hmacSecretName, func() ([]byte, error) {
		b := make([]byte, hmacSecretSize)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if len(secret) != hmacSecretSize {
		return nil, fmt.Errorf("authserver: the secret stored under %q is %d bytes, want %d", hmacSecretName, len(secret), hmacSecretSize)
	}
	return secret, nil
}

// loadOrCreate returns the value under key, creating it with generate when
// absent. It never replaces a value that exists: a lost Create race means
// another process stored one first, so that one is read and used.
func loadOrCreate(ctx context.Context, st store.Store, key string, generate func() ([]byte, error)) ([]byte, error) {
	v, err := st.Get(ctx, key)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("authserver: reading %q from the store: %w", key, err)
	}
	v, err = generate()
	if err != nil {
		return nil, fmt.Errorf("authserver: generating %q: %w", key, err)
	}
	err = st.Create(ctx, key, v, time.Time{})
	if errors.Is(err, store.ErrExists) {
		v, err = st.Get(ctx, key)
	}
	if err != nil {
		return nil, fmt.Errorf("authserver: storing %q: %w", key, err)
	}
	return v, nil
}

func generateSigningKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parsePrivateKeyPEM reads exactly one PEM block holding a PKCS#8, SEC1 EC
// or PKCS#1 RSA private key.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one PEM block; give exactly one private key")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q; want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return s, nil
}

// newSigner picks the algorithm from the key: ES256 for P-256, RS256 for
// RSA of at least 2048 bits. Anything else is refused rather than guessed.
func newSigner(priv crypto.Signer) (*signer, error) {
	var alg jwa.SignatureAlgorithm
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("authserver: signing key: EC curve %s is not supported; use P-256 (ES256)", k.Curve.Params().Name)
		}
		alg = jwa.ES256
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("authserver: signing key: RSA key of %d bits is too small; use at least 2048", k.N.BitLen())
		}
		alg = jwa.RS256
	default:
		return nil, fmt.Errorf("authserver: signing key: %T is not supported; use an EC P-256 or RSA key", priv)
	}
	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, fmt.Errorf("authserver: signing key: %w", err)
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("authserver: signing key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, err
	}
	jwks, err := publicJWKS(key)
	if err != nil {
		return nil, err
	}
	return &signer{alg: alg, key: key, kid: kid, jwks: jwks}, nil
}

func publicJWKS(priv jwk.Key) ([]byte, error) {
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return nil, fmt.Errorf("authserver: public signing key: %w", err)
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	return json.Marshal(set)
}

// derivedKeys are independent HMAC keys derived from the stored secret, one
// per purpose, so a value signed for one purpose never verifies as another.
type derivedKeys struct {
	session      []byte // browser session cookie
	csrf         []byte // form tokens
	clientID     []byte // self-contained dynamic registrations
	clientSecret []byte // secrets of confidential dynamic registrations
	pending      []byte // sealed authorization requests awaiting sign-in and consent
	idpFlow      []byte // AES-256-GCM key of the upstream sign-in cookie
	refresh      []byte // refresh token secrets, one per family and generation
}

func deriveKeys(secret []byte) (derivedKeys, error) {
	var k derivedKeys
	for _, d := range []struct {
		dst  *[]byte
		info string
	}{
		{&k.session, "toolgate authserver session cookie v1"},
		{&k.csrf, "toolgate authserver csrf v1"},
		{&k.clientID, "toolgate authserver client id v1"},
		{&k.clientSecret, "toolgate authserver client secret v1"},
		{&k.pending, "toolgate authserver pending request v1"},
		{&k.idpFlow, "toolgate authserver upstream sign-in cookie v1"},
		{&k.refresh, "toolgate authserver refresh token v1"},
	} {
		b, err := hkdf.Key(sha256.New, secret, nil, d.info, 32)
		if err != nil {
			return k, fmt.Errorf("authserver: deriving keys: %w", err)
		}
		*d.dst = b
	}
	return k, nil
}
