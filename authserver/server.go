// Package authserver is toolgate's embedded OAuth 2.1 authorization server.
// When no external authorization server is configured, MCP clients discover
// toolgate itself (RFC 8414), register (RFC 7591, a client ID metadata
// document, or pre-registered), send the user through /authorize (PKCE S256
// only, RFC 8707 resource, RFC 9207 iss), and get toolgate's own RFC 9068
// JWT access tokens whose audience is the MCP resource.
//
// The package signs users in (local bcrypt users or an upstream identity
// provider), asks for consent per client, and issues tokens. It must never
// hand an upstream provider's tokens to a client, never redirect to a
// redirect URI it has not matched against the client's registration, and
// never log a token, secret, password or code. All state lives in a
// store.Store; dynamic registrations are self-contained signed client_ids,
// so nothing is stored per registration.
package authserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/toolgate/toolgate/authserver/clientmeta"
	"github.com/toolgate/toolgate/authserver/idp"
	"github.com/toolgate/toolgate/authserver/store"
)

// Options configures a Server. Zero values of the optional fields are the
// safe defaults.
type Options struct {
	// Issuer is the origin of RESOURCE_SERVER_URL ("https://mcp.example.com",
	// no trailing slash). It is the "iss" of every token and the origin
	// every route is served at.
	Issuer string
	// Resource is RESOURCE_SERVER_URL exactly: the only acceptable RFC 8707
	// resource, and the "aud" of every access token.
	Resource        string
	ScopesSupported []string
	// DefaultScopes are always granted (REQUIRED_SCOPES: every request
	// needs them), along with the supported scopes the client asks for.
	DefaultScopes []string
	Store         store.Store
	// SigningKeyPEM is an optional PKCS#8, SEC1 EC or PKCS#1 RSA private
	// key. Without it the key stored under "key:signing" is used, or an
	// ES256 key is generated once and stored there.
	SigningKeyPEM   []byte
	AccessTokenTTL  time.Duration // default 1h
	RefreshTokenTTL time.Duration // default 30 days, extended by each rotation
	// Users are the local users: username → bcrypt hash.
	Users map[string][]byte
	// Provider is the optional upstream identity provider.
	Provider idp.Provider
	// Clients are the pre-registered clients.
	Clients []Client
	// Metadata fetches client ID metadata documents; nil turns them off.
	Metadata MetadataFetcher
	// RegistrationLimit and RegistrationBurst bound dynamic registrations
	// per client IP. Defaults 60 per minute, burst 60.
	RegistrationLimit rate.Limit
	RegistrationBurst int
	// TrustedProxies are the load balancers or reverse proxies in front of
	// toolgate whose X-Forwarded-For the rate limits believe
	// (TRUSTED_PROXIES). Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	Log            *zap.Logger
	Now            func() time.Time
}

// Client is a pre-registered client.
type Client struct {
	ID   string
	Name string
	// Secret makes the client confidential (client_secret_basic or
	// client_secret_post); empty means a public client (auth method none).
	Secret       string
	RedirectURIs []string
}

// MetadataFetcher fetches and validates client ID metadata documents, and
// the JWK Sets their jwks_uri names for private_key_jwt;
// *clientmeta.Fetcher implements it.
type MetadataFetcher interface {
	Fetch(ctx context.Context, clientID string) (*clientmeta.Document, error)
	FetchJWKS(ctx context.Context, uri string) ([]byte, error)
	// RefreshJWKS is FetchJWKS when an assertion names a kid the cached
	// set lacks; the fetcher decides whether to go back to the URI.
	RefreshJWKS(ctx context.Context, uri string) ([]byte, error)
}

// Lifetimes of the short-lived state.
const (
	defaultAccessTTL  = time.Hour
	defaultRefreshTTL = 30 * 24 * time.Hour
	pendingTTL        = 10 * time.Minute // an authorization request waiting for sign-in and consent
	idpStateTTL       = 10 * time.Minute // an upstream sign-in in progress
	codeTTL           = 60 * time.Second
	sessionTTL        = 12 * time.Hour
	readyCacheTTL     = 2 * time.Second
)

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	opt       Options
	log       *zap.Logger
	now       func() time.Time
	signer    *signer
	keys      derivedKeys
	clients   map[string]*client // pre-registered, by client_id
	dummyHash []byte             // compared against when a username is unknown

	registerLimit *limiter
	// assertionLimit bounds client assertions per address: each accepted
	// one records its jti in the store.
	assertionLimit *limiter
	loginIPLimit   *limiter
	loginUsrLimit  *limiter

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	cookieKey string // session cookie name
}

// New checks o, loads or creates the signing key and the HMAC secret, and
// returns a Server ready to Register.
func New(ctx context.Context, o Options) (*Server, error) {
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	clients, err := preRegistered(o.Clients)
	if err != nil {
		return nil, err
	}
	_, missing := o.Store.Get(ctx, signingKeyName)
	sg, err := loadSigner(ctx, o.Store, o.SigningKeyPEM)
	if err != nil {
		return nil, err
	}
	if len(o.SigningKeyPEM) == 0 && errors.Is(missing, store.ErrNotFound) {
		// Normal on a first start; after that it means the state was lost
		// (a volume not mounted, another DATA_DIR), and everyone must sign
		// in again. Said loudly, so it is never a silent surprise.
		o.Log.Warn("generated a new token signing key: the store held none (first start with this DATA_DIR or Redis, or its state was lost); tokens signed before no longer verify",
			zap.String("kid", sg.kid))
	}
	secret, err := loadHMACSecret(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	keys, err := deriveKeys(secret)
	if err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("toolgate dummy password"), dummyCost(o.Users))
	if err != nil {
		return nil, fmt.Errorf("authserver: preparing the dummy password hash: %w", err)
	}
	s := &Server{
		opt:            o,
		log:            o.Log,
		now:            o.Now,
		signer:         sg,
		keys:           keys,
		clients:        clients,
		dummyHash:      dummy,
		registerLimit:  newLimiter(o.RegistrationLimit, o.RegistrationBurst),
		assertionLimit: newLimiter(assertionLimit, assertionBurst),
		loginIPLimit:   newLimiter(loginLimit, loginBurst),
		loginUsrLimit:  newLimiter(loginLimit, loginBurst),
		cookieKey:      "toolgate",
	}
	if u, _ := url.Parse(o.Issuer); u.Scheme == "https" {
		// The __Host- prefix makes browsers refuse the cookie unless it is
		// Secure, host-only and Path=/, so no sibling subdomain can set it.
		s.cookieKey = "__Host-toolgate"
	}
	return s, nil
}

// checkOptions fills defaults and reports every problem with o at once.
func checkOptions(o *Options) error {
	var errs []error
	if err := checkIssuer(o.Issuer); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(o.Resource); o.Resource == "" || err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("authserver: Resource %q must be an absolute URL without a fragment", o.Resource))
	}
	if o.Store == nil {
		errs = append(errs, errors.New("authserver: Store is required"))
	}
	if len(o.Users) == 0 && o.Provider == nil {
		errs = append(errs, errors.New("authserver: nobody could sign in: configure local users or an upstream identity provider"))
	}
	for name, hash := range o.Users {
		if _, err := bcrypt.Cost(hash); err != nil {
			errs = append(errs, fmt.Errorf("authserver: the password hash of user %q is not a bcrypt hash", name))
		}
	}
	for _, sc := range o.DefaultScopes {
		if !slices.Contains(o.ScopesSupported, sc) {
			errs = append(errs, fmt.Errorf("authserver: default scope %q is not in ScopesSupported", sc))
		}
	}
	for _, sc := range o.ScopesSupported {
		if !validScopeToken(sc) {
			errs = append(errs, fmt.Errorf("authserver: scope %q is not a valid scope token (RFC 6749 §3.3)", sc))
		}
	}
	if o.AccessTokenTTL < 0 || o.RefreshTokenTTL < 0 {
		errs = append(errs, errors.New("authserver: token lifetimes must not be negative"))
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = defaultAccessTTL
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = defaultRefreshTTL
	}
	if o.RegistrationLimit <= 0 {
		// Registrations cost nothing to keep (they are stateless); the
		// limit only bounds the work. ChatGPT and Claude register from a
		// few shared addresses, so it is generous.
		o.RegistrationLimit = rate.Every(time.Second) // 60 per minute
	}
	if o.RegistrationBurst <= 0 {
		o.RegistrationBurst = 60
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return errors.Join(errs...)
}

// checkIssuer accepts an https origin, or an http origin on a loopback host
// for local development.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	bad := func(why string) error {
		return fmt.Errorf("authserver: Issuer %q must be a bare origin like https://mcp.example.com: %s", issuer, why)
	}
	switch {
	case issuer == "" || err != nil:
		return bad("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("scheme must be https")
	case u.Scheme == "http" && !isLoopbackIssuer(u.Hostname()):
		return bad("http is allowed only for loopback hosts")
	case u.Host == "" || u.User != nil:
		return bad("no host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || issuer[len(issuer)-1] == '/':
		return bad("no path, query, fragment or trailing slash")
	}
	return nil
}

// dummyCost is the bcrypt cost of the dummy hash: the highest cost among
// the users, so an unknown name takes as long as a known one.
func dummyCost(users map[string][]byte) int {
	cost := bcrypt.MinCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	return cost
}

// Register mounts every authorization-server route on mux.
func (s *Server) Register(mux *http.ServeMux) {
	cors := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /.well-known/oauth-authorization-server", s.handleMetadata},
		{"GET /jwks.json", s.handleJWKS},
		{"POST /token", s.handleToken},
		{"POST /register", s.handleRegister},
		{"POST /revoke", s.handleRevoke},
	}
	for _, c := range cors {
		mux.Handle(c.pattern, withCORS(c.h))
		_, path, _ := strings.Cut(c.pattern, " ")
		mux.HandleFunc("OPTIONS "+path, handlePreflight)
	}
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /authorize/login", s.handleLogin)
	mux.HandleFunc("POST /authorize/idp", s.handleIDPStart)
	mux.HandleFunc("GET /oauth/callback", s.handleIDPCallback)
	mux.HandleFunc("POST /authorize/consent", s.handleConsent)
	mux.HandleFunc("POST /authorize/switch", s.handleSwitchUser)
}

// JWKS returns the public JWK Set that /jwks.json serves.
func (s *Server) JWKS() []byte {
	return slices.Clone(s.signer.jwks)
}

// Ready reports whether the store answers (checked at most every two
// seconds) and the upstream provider, if any, is usable.
func (s *Server) Ready() error {
	if err := s.storeReady(); err != nil {
		return err
	}
	if s.opt.Provider != nil {
		if err := s.opt.Provider.Ready(); err != nil {
			return fmt.Errorf("authserver: identity provider %s is not ready: %w", s.opt.Provider.Name(), err)
		}
	}
	return nil
}

func (s *Server) storeReady() error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	now := time.Now()
	if !s.readyAt.IsZero() && now.Sub(s.readyAt) < readyCacheTTL {
		return s.readyErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.readyErr = nil
	if err := s.opt.Store.Ping(ctx); err != nil {
		s.readyErr = fmt.Errorf("authserver: store is not reachable: %w", err)
	}
	s.readyAt = now
	return s.readyErr
}

// hashHex is the store key form of a secret value: the store never holds a
// usable code or refresh secret.
func hashHex(v string) string {
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("%x", sum)
}

// isLoopbackIssuer accepts every loopback address (all of 127/8, ::1) and
// localhost: whatever toolgate itself may listen on for development.
func isLoopbackIssuer(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}
