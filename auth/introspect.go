package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client authentication methods for the introspection endpoint (RFC 8414
// names).
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
)

// IntrospectionOptions configures an IntrospectionVerifier. The zero values
// of the optional fields are the safe defaults.
type IntrospectionOptions struct {
	// Endpoint returns the introspection endpoint, or "" while it is not
	// known (it may come from the issuer's metadata, learnt after start).
	Endpoint     func() string
	ClientID     string
	ClientSecret string
	AuthMethod   string   // ClientSecretBasic (default) or ClientSecretPost
	Issuer       string   // "iss", when the answer has one, must equal it
	Audiences    []string // "aud" must contain one of these
	// AllowNoAudience accepts an answer without "aud". Unsafe: such a
	// token may have been issued for any resource server of the issuer.
	AllowNoAudience bool
	Client          *http.Client
	Timeout         time.Duration // per call; default 5s
	Skew            time.Duration // default and maximum MaxSkew
	CacheSize       int           // answers remembered; 0 disables the cache
	// CacheTTL caps how long an "active" answer is reused, so a token the
	// authorization server revokes stops working within it. Default 60s;
	// never beyond the token's exp.
	CacheTTL time.Duration
	Now      func() time.Time
}

// IntrospectionVerifier accepts opaque (or any) access tokens that the
// authorization server's RFC 7662 endpoint calls active. It fails closed:
// when the endpoint cannot be reached or answers something unusable, the
// token is not accepted and the error wraps ErrUnavailable. The token is
// sent to the endpoint only, in the POST body, and never logged or echoed.
type IntrospectionVerifier struct {
	opt    IntrospectionOptions
	client *http.Client
	checks *remoteChecks
}

// NewIntrospectionVerifier returns a verifier; it fails only on options that
// could never accept a token.
func NewIntrospectionVerifier(o IntrospectionOptions) (*IntrospectionVerifier, error) {
	if o.Endpoint == nil || o.ClientID == "" || o.Issuer == "" || len(o.Audiences) == 0 {
		return nil, errors.New("auth: introspection needs an endpoint, client credentials, the issuer and audiences")
	}
	switch o.AuthMethod {
	case "":
		o.AuthMethod = ClientSecretBasic
	case ClientSecretBasic, ClientSecretPost:
	default:
		return nil, errors.New("auth: introspection client authentication must be client_secret_basic or client_secret_post")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Skew <= 0 || o.Skew > MaxSkew {
		o.Skew = MaxSkew
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &IntrospectionVerifier{opt: o, client: withoutRedirects(o.Client), checks: newRemoteChecks(o.CacheSize, o.Now)}, nil
}

// Ready returns nil once the endpoint is known.
func (v *IntrospectionVerifier) Ready() error {
	if v.opt.Endpoint() == "" {
		return errNoEndpoint
	}
	return nil
}

var errNoEndpoint = unavailable("the introspection endpoint is not known yet: the issuer's metadata has not been loaded (or has no introspection_endpoint; set INTROSPECTION_URL)")

// Verify asks the endpoint about token, unless a recent answer is
// remembered (see remoteChecks: active answers for CacheTTL at most,
// rejections for 30 s, one call per token, bounded calls in flight).
func (v *IntrospectionVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	endpoint := v.opt.Endpoint()
	if endpoint == "" {
		return nil, errNoEndpoint
	}
	return v.checks.verdict(token, func() (*Principal, time.Time, error) {
		ans, err := v.introspect(ctx, endpoint, token)
		if err != nil {
			return nil, time.Time{}, err
		}
		now := v.opt.Now()
		p, err := v.check(ans, now)
		if err != nil {
			return nil, time.Time{}, err
		}
		until := now.Add(v.opt.CacheTTL)
		if !p.Expiry.IsZero() && p.Expiry.Before(until) {
			until = p.Expiry
		}
		return p, until, nil
	})
}

// introspection is the part of an RFC 7662 §2.2 answer toolgate reads.
type introspection struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Username  string          `json:"username"`
	Email     string          `json:"email"` // an extension many servers add, as in JWT access tokens
	TokenType string          `json:"token_type"`
	Exp       numeric         `json:"exp"`
	Nbf       numeric         `json:"nbf"`
	Sub       string          `json:"sub"`
	Aud       Audience        `json:"aud"`
	Iss       string          `json:"iss"`
	Cnf       json.RawMessage `json:"cnf"`
}

func (v *IntrospectionVerifier) introspect(ctx context.Context, endpoint, token string) (*introspection, error) {
	ctx, cancel := callDeadline(ctx, v.opt.Timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.opt.AuthMethod == ClientSecretPost {
		form.Set("client_id", v.opt.ClientID)
		form.Set("client_secret", v.opt.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable("introspection endpoint %q is not a usable URL", endpoint)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.opt.AuthMethod == ClientSecretBasic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(v.opt.ClientID), url.QueryEscape(v.opt.ClientSecret))
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, unavailable("introspection request failed: %v", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, unavailable("introspection endpoint %s refused toolgate's credentials (status %d); check INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET and INTROSPECTION_AUTH_METHOD", endpoint, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, unavailable("introspection endpoint %s answered status %d", endpoint, resp.StatusCode)
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, unavailable("introspection endpoint %s: %v", endpoint, err)
	}
	var ans introspection
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, unavailable("introspection endpoint %s answered with something other than an RFC 7662 JSON object", endpoint)
	}
	return &ans, nil
}

// check turns an answer into a principal, applying the same rules as the
// JWT verifier where the answer carries the claim.
func (v *IntrospectionVerifier) check(a *introspection, now time.Time) (*Principal, error) {
	if !a.Active {
		return nil, invalid("token is not active: the authorization server reports it expired, revoked or unknown")
	}
	if a.Iss != "" && a.Iss != v.opt.Issuer {
		return nil, invalid("token was issued by another authorization server (iss does not match AUTHORIZATION_SERVER_URL)")
	}
	switch {
	case len(a.Aud) > 0:
		if !containsAny(a.Aud, v.opt.Audiences) {
			return nil, invalid("token is not meant for this resource (aud does not contain the resource URL or TOKEN_AUDIENCE)")
		}
	case !v.opt.AllowNoAudience:
		return nil, invalid("the authorization server names no audience (aud) for this token, so it may be meant for another resource; bind tokens to the resource URL, or set INTROSPECTION_ALLOW_NO_AUDIENCE=true")
	}
	if t := strings.ToLower(a.TokenType); t != "" && t != "bearer" && t != "access_token" {
		return nil, invalid("token is not a bearer access token (token_type)")
	}
	if len(a.Cnf) > 0 && string(a.Cnf) != "null" {
		return nil, invalid("token is sender-constrained (cnf, DPoP or mTLS); toolgate accepts bearer tokens only")
	}
	var exp time.Time
	if a.Exp.set {
		exp = a.Exp.time()
		if !now.Before(exp.Add(v.opt.Skew)) {
			return nil, invalid("token has expired")
		}
	}
	if a.Nbf.set && now.Add(v.opt.Skew).Before(a.Nbf.time()) {
		return nil, invalid("token is not valid yet (nbf)")
	}
	if a.Sub == "" {
		return nil, invalid("token has no subject (sub)")
	}
	return &Principal{
		Subject:  a.Sub,
		Username: a.Username,
		Email:    a.Email,
		ClientID: a.ClientID,
		Scopes:   splitScopes(a.Scope),
		Expiry:   exp,
	}, nil
}
