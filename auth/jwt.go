package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// MaxSkew is the most clock skew toolgate tolerates on exp, nbf and iat.
const MaxSkew = 60 * time.Second

// JWTOptions configures a JWTVerifier. The zero values of the optional
// fields are the safe defaults.
type JWTOptions struct {
	Issuer    string        // compared byte for byte with "iss"
	Audiences []string      // "aud" must contain one of these
	Keys      *RemoteKeySet // the issuer's JWKS; keys named by jku/x5u/jwk headers are never used
	Skew      time.Duration // default and maximum MaxSkew
	CacheSize int           // verified tokens remembered; 0 disables the cache
	// CacheTTL caps how long a verified token is trusted without a fresh
	// signature check. A cached token whose key the issuer has withdrawn
	// is re-verified at once. Default 5 minutes.
	CacheTTL time.Duration
	Now      func() time.Time
}

// localDefaults fills the timing options shared by verifiers that check
// signatures themselves: at most MaxSkew, a 5-minute cap on trusting a
// cached token without a fresh check, and the real clock.
func localDefaults(skew, cacheTTL *time.Duration, now *func() time.Time) {
	if *skew <= 0 || *skew > MaxSkew {
		*skew = MaxSkew
	}
	if *cacheTTL <= 0 {
		*cacheTTL = 5 * time.Minute
	}
	if *now == nil {
		*now = time.Now
	}
}

// JWTVerifier verifies JWT access tokens (RFC 9068, and Auth0's "typ: JWT"
// profile) against one issuer.
type JWTVerifier struct {
	opt   JWTOptions
	cache *tokenCache
}

// NewJWTVerifier returns a verifier; it fails only on options that could
// never accept a token.
func NewJWTVerifier(o JWTOptions) (*JWTVerifier, error) {
	if o.Issuer == "" || len(o.Audiences) == 0 || o.Keys == nil {
		return nil, errors.New("auth: issuer, audiences and keys are required")
	}
	localDefaults(&o.Skew, &o.CacheTTL, &o.Now)
	return &JWTVerifier{opt: o, cache: newTokenCache(o.CacheSize)}, nil
}

// Verify returns the principal of a valid token. A token verified before is
// answered from the cache without repeating the signature check.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	now := v.opt.Now()
	// Hash the token's bytes in place: converting to []byte would copy a
	// kilobyte on every request. sha256 does not retain its input.
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	if e, ok := v.cache.get(key, now); ok && v.opt.Keys.still(e.kid, e.key) {
		return e.p, nil
	}
	p, kid, pk, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	until := now.Add(v.opt.CacheTTL)
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	v.cache.put(key, cacheEntry{p: p, kid: kid, key: pk, until: until}, now)
	return p, nil
}

// verify checks token from scratch and returns its principal and the kid
// and key that verified it.
func (v *JWTVerifier) verify(ctx context.Context, token string, now time.Time) (*Principal, string, *publicKey, error) {
	if err := checkCompact(token); err != nil {
		return nil, "", nil, err
	}
	var kid string
	var used *publicKey

	// The key provider runs inside jwt.Parse with the protected header; it
	// records why it refused so the caller gets a precise reason.
	var refusal error
	provider := jws.KeyProviderFunc(func(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		h := sig.ProtectedHeaders()
		if refusal = checkHeader(h); refusal != nil {
			return refusal
		}
		kid = h.KeyID()
		k, err := v.opt.Keys.key(ctx, kid)
		if err != nil {
			refusal = err
			return err
		}
		if k == nil {
			refusal = invalid("token is signed with a key (kid) the authorization server does not publish")
			return refusal
		}
		alg := h.Algorithm()
		if !k.algs[alg] {
			refusal = invalid(fmt.Sprintf("algorithm %s does not fit the signing key", sanitize(alg.String())))
			return refusal
		}
		used = k
		sink.Key(alg, k.raw)
		return nil
	})
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKeyProvider(provider),
		jwt.WithValidate(false),
		jwt.WithContext(ctx),
	)
	if err != nil {
		if refusal != nil {
			return nil, "", nil, refusal
		}
		return nil, "", nil, invalid("signature or encoding is invalid")
	}
	p, err := v.checkClaims(tok, now)
	return p, kid, used, err
}

func (v *JWTVerifier) checkClaims(tok jwt.Token, now time.Time) (*Principal, error) {
	if tok.Issuer() != v.opt.Issuer {
		return nil, invalid("token was issued by another authorization server (iss does not match AUTHORIZATION_SERVER_URL)")
	}
	if !containsAny(tok.Audience(), v.opt.Audiences) {
		return nil, invalid("token is not meant for this resource (aud does not contain the resource URL or TOKEN_AUDIENCE)")
	}
	skew := v.opt.Skew
	exp := tok.Expiration()
	if exp.IsZero() {
		return nil, invalid("token has no expiry (exp)")
	}
	if !now.Before(exp.Add(skew)) {
		return nil, invalid("token has expired")
	}
	if nbf := tok.NotBefore(); !nbf.IsZero() && now.Add(skew).Before(nbf) {
		return nil, invalid("token is not valid yet (nbf)")
	}
	if iat := tok.IssuedAt(); !iat.IsZero() && now.Add(skew).Before(iat) {
		return nil, invalid("token was issued in the future (iat); check the clocks")
	}
	p := &Principal{Subject: tok.Subject(), Expiry: exp}
	if p.Subject == "" {
		return nil, invalid("token has no subject (sub)")
	}
	if e, ok := tok.Get("email"); ok {
		p.Email, _ = e.(string)
	}
	for _, c := range []string{"client_id", "azp"} {
		if id, ok := tok.Get(c); ok {
			if s, ok := id.(string); ok && s != "" {
				p.ClientID = s
				break
			}
		}
	}
	if s, ok := tok.Get("scope"); ok {
		p.Scopes = splitScopes(s)
	} else if s, ok := tok.Get("scp"); ok {
		p.Scopes = splitScopes(s)
	}
	return p, nil
}

// checkCompact accepts only the JWS compact form: three base64url segments.
// JSON serialisations (several signatures, unprotected headers) and JWE have
// no business in an Authorization header and widen what jwx would parse.
func checkCompact(token string) error {
	dots := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			if dots == 0 {
				return invalid("token is not a JWT")
			}
			return invalid("token is not a compact JWS")
		}
	}
	switch dots {
	case 2:
		return nil
	case 4:
		return invalid("token is encrypted (JWE); toolgate verifies signed JWT access tokens")
	default:
		return invalid("token is not a JWT; it may be an opaque token issued without an audience for this API")
	}
}

// checkHeader enforces explicit typing (RFC 8725 §3.11) and refuses headers
// toolgate does not understand.
func checkHeader(h jws.Headers) error {
	switch alg := h.Algorithm(); {
	case alg == jwa.NoSignature || alg == "":
		return invalid("unsigned token (alg none)")
	case strings.HasPrefix(alg.String(), "HS"):
		return invalid("symmetric algorithms (HS*) are not accepted; the authorization server must sign with an asymmetric key")
	}
	switch strings.ToLower(h.Type()) {
	case "", "jwt", "at+jwt", "application/at+jwt":
	default:
		return invalid(fmt.Sprintf("token type %s is not an access token (want at+jwt or JWT)", sanitize(h.Type())))
	}
	if len(h.Critical()) > 0 {
		return invalid("token header has critical extensions toolgate does not support")
	}
	return nil
}

func containsAny(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// sanitize keeps a header value printable and quote-free, short enough to
// quote in an error_description without ever echoing a payload.
func sanitize(s string) string {
	const max = 32
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
