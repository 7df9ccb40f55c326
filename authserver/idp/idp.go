// Package idp signs users in at an upstream identity provider (Google,
// GitHub, or any OpenID Connect issuer) for toolgate's embedded
// authorization server. The provider only tells toolgate who the user is;
// its tokens stay here and never reach MCP clients.
package idp

import (
	"context"
	"errors"
)

// Identity is who the provider says signed in.
type Identity struct {
	// Subject is the provider's stable user id: the ID token's "sub", or
	// GitHub's numeric user id as a decimal string. Never an email.
	Subject string
	// Email is set only when the provider says it is verified.
	Email    string
	Name     string // display name, may be empty
	Username string // GitHub login, OIDC preferred_username; may be empty
	// Domain is Google's "hd" (hosted domain) claim, when present.
	Domain string
	// Orgs are the GitHub organisations the user belongs to (GitHub only,
	// and only when an organisation allowlist is configured).
	Orgs []string

	// googleConsumer marks a Google account without hd: its email domain
	// proves nothing about who owns the account.
	googleConsumer bool
}

// Flow is the per-sign-in secret material: the caller creates it with
// NewFlow, keeps it server-side (single use) under State, and hands it back
// to Exchange at the callback.
type Flow struct {
	State    string // random, sent to the provider and checked at callback
	Nonce    string // random, bound into the OIDC ID token
	Verifier string // PKCE code verifier used towards the provider
}

// ErrDenied means the user signed in but is not allowed here (allowlist);
// its message is safe to show the user.
var ErrDenied = errors.New("idp: this account is not allowed to sign in here")

// Provider is one configured upstream identity provider.
type Provider interface {
	// Name is what the sign-in button says: "Google", "GitHub", or the
	// configured OIDC provider's display name.
	Name() string
	// AuthCodeURL is where to send the browser to sign in.
	AuthCodeURL(ctx context.Context, f Flow) (string, error)
	// Exchange redeems the code the provider returned to the callback and
	// returns the verified identity, after applying the allowlists. An
	// allowlist refusal wraps ErrDenied.
	Exchange(ctx context.Context, code string, f Flow) (*Identity, error)
	// Ready reports whether the provider is usable (OIDC discovery done).
	Ready() error
}
