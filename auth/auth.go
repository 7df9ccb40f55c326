// Package auth decides whether a bearer token is genuine and what it grants.
// It verifies JWT access tokens against the issuer's published keys, asks
// the issuer's RFC 7662 introspection endpoint (or Google's tokeninfo) about
// opaque tokens, caches verdicts, and reports every failure as a *TokenError
// whose Reason is safe to send back to the client. It never sees HTTP
// requests, never sends a token anywhere but the endpoint that judges it, and
// never logs or returns token contents.
package auth

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Principal is what a verified token says about its bearer.
type Principal struct {
	Subject  string
	Email    string
	Username string // RFC 7662 "username", when an introspection response gives one
	ClientID string
	Scopes   []string
	Expiry   time.Time
}

// Missing returns the scopes in want that p was not granted, in want's order.
func (p *Principal) Missing(want []string) []string {
	var missing []string
	for _, w := range want {
		if !p.HasScope(w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// HasScope reports whether scope was granted. Scope tokens are compared
// exactly, as RFC 6749 §3.3 says they are case-sensitive.
func (p *Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Verifier checks a bearer token. Every error is either a *TokenError (the
// token is bad: RFC 6750 invalid_token), ErrNotReady (toolgate cannot tell
// yet: the keys are not loaded) or wraps ErrUnavailable (the endpoint that
// judges opaque tokens failed).
type Verifier interface {
	Verify(ctx context.Context, token string) (*Principal, error)
}

// TokenError says why a token was rejected. Reason is written for the person
// fixing the setup; it never contains the token or its claims' values.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

func invalid(reason string) error { return &TokenError{Reason: reason} }

// ErrNotReady means the verifier has no keys yet (the issuer has not been
// reached). Callers answer 503, not 401: the token may well be good.
var ErrNotReady = errors.New("the authorization server's signing keys are not loaded yet")

// ErrUnavailable means the service that judges a token (an introspection or
// tokeninfo endpoint) failed or answered something unusable. The token is
// not accepted, but it is not declared invalid either: callers answer 503.
var ErrUnavailable = errors.New("token validation service unavailable")

// IsTokenError reports whether err means the token itself is bad.
func IsTokenError(err error) bool {
	var te *TokenError
	return errors.As(err, &te)
}

// splitScopes reads the scope claim: a space-delimited string (RFC 9068
// §2.2.3, Auth0) or an array (the "scp" claim of Okta and Entra ID).
func splitScopes(v any) []string {
	switch s := v.(type) {
	case string:
		return strings.Fields(s)
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return out
	case []string:
		return s
	}
	return nil
}
