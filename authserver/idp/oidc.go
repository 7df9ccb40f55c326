package idp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const googleIssuer = "https://accounts.google.com"

// OIDCOptions configures an OpenID Connect provider (Google, or any issuer
// that publishes a discovery document).
type OIDCOptions struct {
	Issuer                 string // e.g. https://accounts.google.com
	ClientID, ClientSecret string
	RedirectURL            string   // toolgate's callback, e.g. https://mcp.example.com/oauth/callback
	Scopes                 []string // default openid email profile; openid is always added
	DisplayName            string   // button text; default "Google" for Google's issuer, else the issuer host
	Allow                  Allow
	Client                 *http.Client // for discovery, token and keys; nil means a default client
}

// OIDC signs users in at an OpenID Connect issuer. Discovery is lazy so
// that toolgate can start while the issuer is unreachable: Ready reports
// whether it has succeeded, Start keeps retrying in the background, and
// AuthCodeURL/Exchange try once more themselves if it has not.
type OIDC struct {
	opts      OIDCOptions
	name      string
	host      string // issuer host, for error messages
	client    *http.Client
	configErr error

	// Backoff between discovery attempts in Start; tests shorten it.
	minBackoff, maxBackoff time.Duration

	discoverMu sync.Mutex // one discovery attempt at a time

	mu      sync.Mutex
	ready   *oidcReady // nil until discovery succeeds
	lastErr error
}

// oidcReady is what discovery yields.
type oidcReady struct {
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// NewOIDC returns a provider for o. It does no I/O; configuration mistakes
// are reported by Ready.
func NewOIDC(o OIDCOptions) *OIDC {
	p := &OIDC{
		opts:       o,
		host:       hostOf(o.Issuer),
		client:     boundedClient(o.Client),
		minBackoff: time.Second,
		maxBackoff: 30 * time.Second,
	}
	p.opts.Scopes = oidcScopes(o.Scopes)
	p.name = o.DisplayName
	if p.name == "" {
		p.name = defaultDisplayName(o.Issuer)
	}
	p.configErr = checkOIDCOptions(o)
	return p
}

func oidcScopes(configured []string) []string {
	if len(configured) == 0 {
		return []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if slices.Contains(configured, oidc.ScopeOpenID) {
		return slices.Clone(configured)
	}
	return append([]string{oidc.ScopeOpenID}, configured...)
}

func defaultDisplayName(issuer string) string {
	if issuer == googleIssuer || issuer == googleIssuer+"/" {
		return "Google"
	}
	return hostOf(issuer)
}

// checkOIDCOptions reports every problem at once.
func checkOIDCOptions(o OIDCOptions) error {
	var errs []error
	if err := checkEndpoint("OIDC issuer", o.Issuer); err != nil {
		errs = append(errs, err)
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("OIDC client ID is empty"))
	}
	if err := checkEndpoint("OIDC redirect URL", o.RedirectURL); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("idp: %w", err)
	}
	return nil
}

// Name is the sign-in button text.
func (p *OIDC) Name() string { return p.name }

// Ready returns nil once discovery has succeeded, otherwise why not.
func (p *OIDC) Ready() error {
	if p.configErr != nil {
		return p.configErr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.ready != nil:
		return nil
	case p.lastErr != nil:
		return p.lastErr
	}
	return fmt.Errorf("idp: discovery at %s has not completed yet", p.host)
}

// Start runs discovery until it succeeds or ctx ends, waiting 1s after the
// first failure and doubling up to 30s, so a down issuer is not hammered.
func (p *OIDC) Start(ctx context.Context) {
	if p.configErr != nil {
		return
	}
	wait := p.minBackoff
	for {
		if _, err := p.discovered(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, p.maxBackoff)
	}
}

// discovered returns the discovery result, running discovery first if no
// attempt has succeeded yet.
func (p *OIDC) discovered(ctx context.Context) (*oidcReady, error) {
	if p.configErr != nil {
		return nil, p.configErr
	}
	if r := p.current(); r != nil {
		return r, nil
	}
	p.discoverMu.Lock()
	defer p.discoverMu.Unlock()
	if r := p.current(); r != nil {
		return r, nil
	}
	r, err := p.discover(ctx)
	p.mu.Lock()
	p.ready, p.lastErr = r, err
	p.mu.Unlock()
	return r, err
}

func (p *OIDC) current() *oidcReady {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// discover fetches the issuer's discovery document. go-oidc refuses a
// document whose "issuer" differs from the configured one.
func (p *OIDC) discover(ctx context.Context) (*oidcReady, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("idp: discovering the OpenID provider at %s: %w", p.host, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("idp: reading the discovery document of %s: %w", p.host, err)
	}
	endpoint := provider.Endpoint()
	if err := checkEndpoint("authorization_endpoint", endpoint.AuthURL); err != nil {
		return nil, fmt.Errorf("idp: discovery document of %s: %w", p.host, err)
	}
	if err := checkEndpoint("token_endpoint", endpoint.TokenURL); err != nil {
		return nil, fmt.Errorf("idp: discovery document of %s: %w", p.host, err)
	}
	endpoint.AuthStyle = authStyle(meta.AuthMethods)
	return &oidcReady{
		oauth: &oauth2.Config{
			ClientID:     p.opts.ClientID,
			ClientSecret: p.opts.ClientSecret,
			RedirectURL:  p.opts.RedirectURL,
			Scopes:       p.opts.Scopes,
			Endpoint:     endpoint,
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: p.opts.ClientID}),
	}, nil
}

// authStyle picks client authentication from what the issuer advertises,
// rather than guessing and retrying. OIDC Discovery says an absent list
// means client_secret_basic.
func authStyle(methods []string) oauth2.AuthStyle {
	if len(methods) == 0 || slices.Contains(methods, "client_secret_basic") {
		return oauth2.AuthStyleInHeader
	}
	if slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleAutoDetect
}

// AuthCodeURL is the issuer's authorization URL for this sign-in, with
// state, nonce and a PKCE S256 challenge.
func (p *OIDC) AuthCodeURL(ctx context.Context, f Flow) (string, error) {
	if err := checkFlow(f, true); err != nil {
		return "", err
	}
	r, err := p.discovered(ctx)
	if err != nil {
		return "", err
	}
	return r.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), nil
}

// Exchange redeems code, verifies the ID token (signature, issuer,
// audience, expiry, nonce) and applies the allowlist. The provider's
// access token is not used.
func (p *OIDC) Exchange(ctx context.Context, code string, f Flow) (*Identity, error) {
	if err := checkFlow(f, true); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, errors.New("idp: the provider returned no authorization code")
	}
	r, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := r.oauth.Exchange(withClient(ctx, p.client), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("idp: exchanging the code at %s: %w", p.host, tokenError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("idp: the token response from %s has no id_token", p.host)
	}
	id, err := p.identify(ctx, r.verifier, raw, f.Nonce)
	if err != nil {
		return nil, err
	}
	if strings.TrimSuffix(p.opts.Issuer, "/") != googleIssuer {
		// hd is Google's claim; from any other issuer it means nothing
		// toolgate can rely on.
		id.Domain = ""
	} else {
		id.googleConsumer = id.Domain == ""
	}
	if err := p.opts.Allow.check(id); err != nil {
		return nil, err
	}
	return id, nil
}

// idClaims are the ID token claims toolgate reads beyond the registered ones.
type idClaims struct {
	Email             string       `json:"email"`
	EmailVerified     verifiedFlag `json:"email_verified"`
	Name              string       `json:"name"`
	PreferredUsername string       `json:"preferred_username"`
	HostedDomain      string       `json:"hd"`
}

// identify verifies the raw ID token and turns it into an Identity.
func (p *OIDC) identify(ctx context.Context, v *oidc.IDTokenVerifier, raw, nonce string) (*Identity, error) {
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("idp: verifying the ID token from %s: %w", p.host, err)
	}
	if subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("idp: the ID token from %s does not carry this sign-in's nonce", p.host)
	}
	if tok.Subject == "" {
		return nil, fmt.Errorf("idp: the ID token from %s has no subject", p.host)
	}
	var c idClaims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("idp: reading the ID token claims from %s: %w", p.host, err)
	}
	id := &Identity{
		Subject:  tok.Subject,
		Name:     c.Name,
		Username: c.PreferredUsername,
		Domain:   c.HostedDomain,
	}
	if c.EmailVerified {
		id.Email = c.Email
	}
	return id, nil
}

// verifiedFlag reads email_verified, which some issuers send as the string
// "true". Anything other than true or "true" counts as not verified rather
// than failing the sign-in.
type verifiedFlag bool

func (v *verifiedFlag) UnmarshalJSON(b []byte) error {
	s := string(b)
	*v = verifiedFlag(s == "true" || s == `"true"`)
	return nil
}
