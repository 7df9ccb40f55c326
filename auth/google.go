package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Google's documented endpoints. Google's issuer has no trailing slash, and
// its ID tokens say either "https://accounts.google.com" or
// "accounts.google.com" in "iss".
const (
	GoogleIssuer       = "https://accounts.google.com"
	GoogleJWKSURL      = "https://www.googleapis.com/oauth2/v3/certs"
	GoogleTokenInfoURL = "https://oauth2.googleapis.com/tokeninfo"
)

// GoogleOptions configures a GoogleVerifier. The zero values of the optional
// fields are the safe defaults.
type GoogleOptions struct {
	// ClientIDs are your Google OAuth client IDs (GOOGLE_CLIENT_IDS). An ID
	// token's "aud", or an access token's "aud" or "azp", must be one.
	ClientIDs []string
	// Keys is Google's JWKS (GoogleJWKSURL unless overridden), loaded and
	// refreshed by an Issuer with SkipDiscovery.
	Keys         *RemoteKeySet
	TokenInfoURL string // default GoogleTokenInfoURL
	Client       *http.Client
	Timeout      time.Duration // per tokeninfo call; default 5s
	Skew         time.Duration // default and maximum MaxSkew
	CacheSize    int           // per kind of token; 0 disables the caches
	// CacheTTL caps how long a verified ID token is trusted without a fresh
	// signature check (default 5 minutes). Tokeninfo answers are kept until
	// the access token expires.
	CacheTTL time.Duration
	Now      func() time.Time
}

// GoogleVerifier accepts what Google hands out: ID tokens (JWTs, verified
// with go-oidc against Google's keys) and opaque access tokens (checked at
// Google's tokeninfo endpoint). Users are keyed by "sub"; an email is passed
// on only when Google says it is verified. Neither kind is bound to this
// resource (Google's audience is always an OAuth client), which is why
// GOOGLE_CLIENT_IDS must list only clients you trust to call this server.
type GoogleVerifier struct {
	shape ByShape
}

// NewGoogleVerifier returns a verifier; it fails only on options that could
// never accept a token.
func NewGoogleVerifier(o GoogleOptions) (*GoogleVerifier, error) {
	if len(o.ClientIDs) == 0 || o.Keys == nil {
		return nil, errors.New("auth: Google verification needs client IDs and Google's key set")
	}
	if o.TokenInfoURL == "" {
		o.TokenInfoURL = GoogleTokenInfoURL
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	localDefaults(&o.Skew, &o.CacheTTL, &o.Now)
	id := &googleIDTokens{opt: o, cache: newTokenCache(o.CacheSize)}
	id.oidc = oidc.NewVerifier(GoogleIssuer, googleKeySet{o.Keys}, &oidc.Config{
		SupportedSigningAlgs: []string{oidc.RS256},
		// go-oidc compares "aud" with a single client ID and "exp" with no
		// skew; checkClaims does both against the list, with MaxSkew.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
		Now:               o.Now,
	})
	info := &googleTokenInfo{opt: o, client: withoutRedirects(o.Client), checks: newRemoteChecks(o.CacheSize, o.Now)}
	return &GoogleVerifier{shape: ByShape{JWT: id, Opaque: info}}, nil
}

// Verify implements Verifier: JWTs are ID tokens, anything else is an
// access token for tokeninfo.
func (g *GoogleVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	return g.shape.Verify(ctx, token)
}

// googleIDTokens verifies Google ID tokens.
type googleIDTokens struct {
	opt   GoogleOptions
	oidc  *oidc.IDTokenVerifier
	cache *tokenCache
}

func (g *googleIDTokens) Verify(ctx context.Context, token string) (*Principal, error) {
	now := g.opt.Now()
	key := sha256.Sum256([]byte(token))
	if e, ok := g.cache.get(key, now); ok && g.opt.Keys.still(e.kid, e.key) {
		return e.p, nil
	}
	if !g.opt.Keys.Loaded() {
		return nil, ErrNotReady
	}
	if err := checkCompact(token); err != nil {
		return nil, err
	}
	call := &signatureCheck{}
	tok, err := g.oidc.Verify(context.WithValue(ctx, signatureCheckKey{}, call), token)
	if err != nil {
		return nil, g.explain(call)
	}
	p, err := g.checkClaims(tok, now)
	if err != nil {
		return nil, err
	}
	until := now.Add(g.opt.CacheTTL)
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	g.cache.put(key, cacheEntry{p: p, kid: call.kid, key: call.key, until: until}, now)
	return p, nil
}

// explain turns a go-oidc failure into a reason. go-oidc's own messages
// quote claim values, so they are never passed on.
func (g *googleIDTokens) explain(call *signatureCheck) error {
	if call.refusal != nil {
		return call.refusal
	}
	if call.payload == nil {
		return invalid("token is not a Google ID token signed with RS256")
	}
	// The signature is good, so go-oidc refused a claim it checks itself:
	// the issuer, or claims it cannot read.
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(call.payload, &c) == nil && c.Iss != GoogleIssuer && c.Iss != "accounts.google.com" {
		return invalid("token was not issued by Google (iss is neither https://accounts.google.com nor accounts.google.com)")
	}
	return invalid("token claims are malformed")
}

func (g *googleIDTokens) checkClaims(tok *oidc.IDToken, now time.Time) (*Principal, error) {
	aud := matchOne(tok.Audience, g.opt.ClientIDs)
	if aud == "" {
		return nil, invalid("token is meant for another Google OAuth client (aud is not in GOOGLE_CLIENT_IDS)")
	}
	skew := g.opt.Skew
	if tok.Expiry.IsZero() {
		return nil, invalid("token has no expiry (exp)")
	}
	if !now.Before(tok.Expiry.Add(skew)) {
		return nil, invalid("token has expired")
	}
	if !tok.IssuedAt.IsZero() && now.Add(skew).Before(tok.IssuedAt) {
		return nil, invalid("token was issued in the future (iat); check the clocks")
	}
	var c struct {
		Email         string  `json:"email"`
		EmailVerified flag    `json:"email_verified"`
		Azp           string  `json:"azp"`
		Nbf           numeric `json:"nbf"`
	}
	if err := tok.Claims(&c); err != nil {
		return nil, invalid("token claims are malformed")
	}
	if c.Nbf.set && now.Add(skew).Before(c.Nbf.time()) {
		return nil, invalid("token is not valid yet (nbf)")
	}
	if tok.Subject == "" {
		return nil, invalid("token has no subject (sub)")
	}
	p := &Principal{Subject: tok.Subject, ClientID: aud, Expiry: tok.Expiry}
	if c.Azp != "" {
		p.ClientID = c.Azp
	}
	if c.EmailVerified {
		p.Email = c.Email
	}
	return p, nil
}

// googleKeySet lets go-oidc verify signatures with toolgate's RemoteKeySet,
// which bounds the JWKS size, rate-limits refetches on unknown kids and
// tells /readyz whether Google's keys are loaded; go-oidc's own remote key
// set does none of these.
type googleKeySet struct{ keys *RemoteKeySet }

// signatureCheck carries, per call, what the key set saw, so a refusal
// reaches the client with its precise reason (go-oidc flattens errors).
type signatureCheck struct {
	kid     string
	key     *publicKey
	refusal error
	payload []byte
}

type signatureCheckKey struct{}

// VerifySignature implements oidc.KeySet. The key is chosen by kid from
// Google's key set only, and the algorithm must fit it.
func (s googleKeySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	call, _ := ctx.Value(signatureCheckKey{}).(*signatureCheck)
	if call == nil {
		call = &signatureCheck{}
	}
	provider := jws.KeyProviderFunc(func(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		h := sig.ProtectedHeaders()
		if call.refusal = checkHeader(h); call.refusal != nil {
			return call.refusal
		}
		call.kid = h.KeyID()
		k, err := s.keys.key(ctx, call.kid)
		switch {
		case err != nil:
			call.refusal = err
		case k == nil:
			call.refusal = invalid("token is signed with a key (kid) Google does not publish")
		case !k.algs[h.Algorithm()]:
			call.refusal = invalid("algorithm does not fit the signing key")
		default:
			call.key = k
			sink.Key(h.Algorithm(), k.raw)
			return nil
		}
		return call.refusal
	})
	payload, err := jws.Verify([]byte(token), jws.WithKeyProvider(provider), jws.WithContext(ctx))
	if err != nil {
		if call.refusal == nil {
			call.refusal = invalid("signature or encoding is invalid")
		}
		return nil, call.refusal
	}
	call.payload = payload
	return payload, nil
}

// googleTokenInfo checks Google's opaque access tokens at tokeninfo.
type googleTokenInfo struct {
	opt    GoogleOptions
	client *http.Client
	checks *remoteChecks
}

// tokenInfo is Google's answer for a valid access token. Google writes the
// numbers and booleans as strings; numeric and flag read either form.
type tokenInfo struct {
	Aud           string  `json:"aud"`
	Azp           string  `json:"azp"`
	Sub           string  `json:"sub"`
	Scope         string  `json:"scope"`
	Exp           numeric `json:"exp"`
	ExpiresIn     numeric `json:"expires_in"`
	Email         string  `json:"email"`
	EmailVerified flag    `json:"email_verified"`
}

func (g *googleTokenInfo) Verify(ctx context.Context, token string) (*Principal, error) {
	return g.checks.verdict(token, func() (*Principal, time.Time, error) {
		info, err := g.fetch(ctx, token)
		if err != nil {
			return nil, time.Time{}, err
		}
		p, err := g.check(info, g.opt.Now())
		if err != nil {
			return nil, time.Time{}, err
		}
		return p, p.Expiry, nil
	})
}

// fetch asks tokeninfo about token the way Google's own client library
// does: a POST with the token in the Authorization header, so it never
// appears in a URL (and so in no proxy or access log).
func (g *googleTokenInfo) fetch(ctx context.Context, token string) (*tokenInfo, error) {
	ctx, cancel := callDeadline(ctx, g.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.opt.TokenInfoURL, http.NoBody)
	if err != nil {
		return nil, unavailable("tokeninfo URL %q is not usable", g.opt.TokenInfoURL)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, unavailable("Google tokeninfo request failed: %v", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusUnauthorized:
		// Google's answer for an unknown, expired or revoked token:
		// 400 {"error": "invalid_token", "error_description": "Invalid Value"}.
		return nil, invalid("Google does not recognise this access token: it is expired, revoked or not a Google access token")
	default:
		return nil, unavailable("Google tokeninfo at %s answered status %d", g.opt.TokenInfoURL, resp.StatusCode)
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, unavailable("Google tokeninfo at %s: %v", g.opt.TokenInfoURL, err)
	}
	var info tokenInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, unavailable("Google tokeninfo at %s answered with something other than its JSON object", g.opt.TokenInfoURL)
	}
	return &info, nil
}

func (g *googleTokenInfo) check(info *tokenInfo, now time.Time) (*Principal, error) {
	clientID := matchOne([]string{info.Azp, info.Aud}, g.opt.ClientIDs)
	if clientID == "" {
		return nil, invalid("token was issued to another Google OAuth client (neither aud nor azp is in GOOGLE_CLIENT_IDS)")
	}
	var exp time.Time
	switch {
	case info.Exp.set:
		exp = info.Exp.time()
	case info.ExpiresIn.set:
		exp = now.Add(time.Duration(info.ExpiresIn.v) * time.Second)
	default:
		return nil, invalid("Google reports no expiry (exp, expires_in) for this token")
	}
	if !now.Before(exp.Add(g.opt.Skew)) {
		return nil, invalid("token has expired")
	}
	if info.Sub == "" {
		return nil, invalid("Google reports no user (sub) for this token; the client must request the openid scope")
	}
	p := &Principal{Subject: info.Sub, ClientID: clientID, Scopes: strings.Fields(info.Scope), Expiry: exp}
	if info.EmailVerified {
		p.Email = info.Email
	}
	return p, nil
}

// matchOne returns the first of have that is in want, or "".
func matchOne(have, want []string) string {
	for _, h := range have {
		if h == "" {
			continue
		}
		for _, w := range want {
			if h == w {
				return h
			}
		}
	}
	return ""
}
