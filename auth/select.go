package auth

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Provider is a family of authorization servers whose tokens need handling
// of their own. It is decided once, at start-up, from the issuer; the
// request path only ever sees the Verifier built for it.
type Provider string

const (
	// ProviderGeneric is any OAuth / OpenID Connect server: JWT access
	// tokens, and opaque ones through RFC 7662 introspection when set up.
	ProviderGeneric Provider = "generic"
	// ProviderAuth0 is an Auth0 tenant (*.auth0.com): JWT access tokens;
	// an opaque token means the client asked for no audience.
	ProviderAuth0 Provider = "auth0"
	// ProviderGoogle is https://accounts.google.com: Google ID tokens and
	// Google's opaque access tokens.
	ProviderGoogle Provider = "google"
)

// ProviderOf recognises the provider from the issuer identifier. An Auth0
// tenant on a custom domain is not recognisable and gets generic handling,
// which differs only in how an opaque token's rejection is explained.
func ProviderOf(issuer string) Provider {
	u, err := url.Parse(issuer)
	if err != nil {
		return ProviderGeneric
	}
	switch host := strings.ToLower(u.Hostname()); {
	case host == "accounts.google.com":
		return ProviderGoogle
	case strings.HasSuffix(host, ".auth0.com"):
		return ProviderAuth0
	}
	return ProviderGeneric
}

// ByShape sends each token to the verifier that fits its shape: a compact
// JWS to JWT, anything else (opaque strings, JWE) to Opaque. With Opaque
// nil every token goes to JWT, whose rejection of a non-JWT says why.
type ByShape struct {
	JWT    Verifier
	Opaque Verifier
}

// Verify implements Verifier.
func (s ByShape) Verify(ctx context.Context, token string) (*Principal, error) {
	if s.Opaque != nil && !IsJWS(token) {
		return s.Opaque.Verify(ctx, token)
	}
	return s.JWT.Verify(ctx, token)
}

// IsJWS reports whether token has the shape of a compact JWS: three
// base64url segments whose first decodes to a JSON object. The header check
// keeps an opaque token that happens to contain two dots (Google's start
// with "ya29.") away from the JWT verifier.
func IsJWS(token string) bool {
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	if dots != 2 {
		return false
	}
	header := token[:strings.IndexByte(token, '.')]
	if len(header) > 16 {
		header = header[:16] // 12 bytes are enough to see the opening brace
	}
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// auth0OpaqueReason is the error_description for an opaque Auth0 token. It
// speaks to whoever reads the client's error; the log line names the fix.
const auth0OpaqueReason = "token is not a JWT for this API: Auth0 issues an opaque token when the client requests no audience"

// Auth0Opaque rejects the opaque token Auth0 issues when a client requests
// no audience (it is good for Auth0's /userinfo only). Every rejection is
// invalid_token; a warning naming the fix in the Auth0 tenant is logged at
// most once per LogEvery, so a client retrying in a loop cannot flood the log.
type Auth0Opaque struct {
	Resource string // RESOURCE_SERVER_URL, the API Identifier Auth0 needs
	Log      *zap.Logger
	LogEvery time.Duration // default 1 minute
	Now      func() time.Time

	lastLog atomic.Int64 // unix nanoseconds; 0 = never
}

// Verify implements Verifier; it never accepts a token.
func (a *Auth0Opaque) Verify(context.Context, string) (*Principal, error) {
	a.hint()
	return nil, invalid(auth0OpaqueReason)
}

func (a *Auth0Opaque) hint() {
	if a.Log == nil {
		return
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	every := a.LogEvery
	if every <= 0 {
		every = time.Minute
	}
	t := now().UnixNano()
	last := a.lastLog.Load()
	if last != 0 && t-last < int64(every) || !a.lastLog.CompareAndSwap(last, t) {
		return
	}
	a.Log.Warn("rejected an opaque Auth0 access token: the client requested no audience, so Auth0 did not issue a JWT for this API",
		zap.String("fix", "in Auth0, create an API (Applications > APIs) whose Identifier is exactly RESOURCE_SERVER_URL, then either set it as the tenant's Default Audience (Settings > API Authorization Settings) or enable the Resource Parameter Compatibility Profile so the RFC 8707 resource parameter MCP clients send selects it"),
		zap.String("api_identifier", a.Resource))
}
