// Package config holds toolgate's one configuration struct: every setting,
// its environment variable, its default, and the validation that names the
// variable when something is wrong. It imports nothing of ours and has no
// side effects: loading never touches the network or the file system.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the single source of truth for toolgate's settings. The env tags
// are the public contract; README.md and config.example.env document them.
type Config struct {
	UpstreamURL            string        `env:"UPSTREAM_URL"`
	ResourceServerURL      string        `env:"RESOURCE_SERVER_URL"`
	AuthorizationServerURL string        `env:"AUTHORIZATION_SERVER_URL"`
	ListenAddr             string        `env:"LISTEN_ADDR" envDefault:":8080"`
	TokenAudience          string        `env:"TOKEN_AUDIENCE"`
	RequiredScopes         string        `env:"REQUIRED_SCOPES"`
	ScopesSupported        string        `env:"SCOPES_SUPPORTED"`
	JWKSURL                string        `env:"JWKS_URL"`
	ForwardAccessToken     bool          `env:"FORWARD_ACCESS_TOKEN" envDefault:"false"`
	MaxBodyBytes           int64         `env:"MAX_BODY_BYTES" envDefault:"4194304"`
	AllowedOrigins         string        `env:"ALLOWED_ORIGINS"`
	LogLevel               string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat              string        `env:"LOG_FORMAT" envDefault:"json"`
	ShutdownTimeout        time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
	JWKSRefreshInterval    time.Duration `env:"JWKS_REFRESH_INTERVAL" envDefault:"15m"`
	TokenCacheSize         int           `env:"TOKEN_CACHE_SIZE" envDefault:"10000"`
	UpstreamMaxIdleConns   int           `env:"UPSTREAM_MAX_IDLE_CONNS" envDefault:"256"`
	ToolPolicyFile         string        `env:"TOOL_POLICY_FILE"`
	ChallengeMode          string        `env:"CHALLENGE_MODE" envDefault:"auto"`

	// Token validation beyond JWTs: see README, "Authorization servers".
	TokenValidator               string `env:"TOKEN_VALIDATOR" envDefault:"auto"`
	IntrospectionURL             string `env:"INTROSPECTION_URL"`
	IntrospectionClientID        string `env:"INTROSPECTION_CLIENT_ID"`
	IntrospectionClientSecret    string `env:"INTROSPECTION_CLIENT_SECRET"`
	IntrospectionAuthMethod      string `env:"INTROSPECTION_AUTH_METHOD" envDefault:"client_secret_basic"`
	IntrospectionAllowNoAudience bool   `env:"INTROSPECTION_ALLOW_NO_AUDIENCE" envDefault:"false"`
	GoogleClientIDs              string `env:"GOOGLE_CLIENT_IDS"`
	GoogleTokenInfoURL           string `env:"GOOGLE_TOKENINFO_URL"`

	// The embedded authorization server, on when AUTHORIZATION_SERVER_URL is
	// empty: see README, "toolgate as the authorization server".
	DataDir                    string        `env:"DATA_DIR" envDefault:"toolgate-data"`
	StoreKind                  string        `env:"STORE" envDefault:"file"`
	RedisURL                   string        `env:"REDIS_URL"`
	SigningKey                 string        `env:"SIGNING_KEY"`
	SigningKeyFile             string        `env:"SIGNING_KEY_FILE"`
	AccessTokenTTL             time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"1h"`
	RefreshTokenTTL            time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"720h"`
	LocalUsers                 string        `env:"LOCAL_USERS"`
	LocalUsersFile             string        `env:"LOCAL_USERS_FILE"`
	OAuthClientsFile           string        `env:"OAUTH_CLIENTS_FILE"`
	ClientMetadataDocuments    bool          `env:"CLIENT_METADATA_DOCUMENTS" envDefault:"true"`
	ClientMetadataAllowPrivate bool          `env:"CLIENT_METADATA_ALLOW_PRIVATE_ADDRESSES" envDefault:"false"`
	ClientMetadataCAFile       string        `env:"CLIENT_METADATA_CA_FILE"`
	IDP                        string        `env:"IDP"`
	IDPIssuerURL               string        `env:"IDP_ISSUER_URL"`
	IDPClientID                string        `env:"IDP_CLIENT_ID"`
	IDPClientSecret            string        `env:"IDP_CLIENT_SECRET"`
	IDPName                    string        `env:"IDP_NAME"`
	AllowedEmails              string        `env:"ALLOWED_EMAILS"`
	AllowedDomains             string        `env:"ALLOWED_DOMAINS"`
	AllowedGitHubOrgs          string        `env:"ALLOWED_GITHUB_ORGS"`
	TrustedProxies             string        `env:"TRUSTED_PROXIES"`

	// Derived by Load; not read from the environment.
	Upstream        *url.URL `env:"-"`
	Resource        *url.URL `env:"-"`
	Issuer          *url.URL `env:"-"`
	Audiences       []string `env:"-"`
	Required        []string `env:"-"`
	Supported       []string `env:"-"`
	Origins         []string `env:"-"`
	JWKSOverrideURL *url.URL `env:"-"`
	// Google is true when Google's tokens are validated: TOKEN_VALIDATOR
	// is google, or auto with Google's issuer.
	Google        bool     `env:"-"`
	GoogleClients []string `env:"-"`
	// Introspects is true when introspection credentials are configured.
	Introspects bool `env:"-"`
	// Embedded is true when toolgate is the authorization server
	// (AUTHORIZATION_SERVER_URL empty); AuthorizationServerURL and Issuer
	// are then the origin of RESOURCE_SERVER_URL.
	Embedded bool `env:"-"`
	// Allowed* split the allowlists of the embedded server's sign-in.
	AllowEmails, AllowDomains, AllowOrgs []string `env:"-"`
	// Proxies are TRUSTED_PROXIES, parsed.
	Proxies []netip.Prefix `env:"-"`
}

// Error lists every problem found, one per line, each naming its variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Load reads the configuration from environ (KEY=VALUE pairs, as os.Environ
// returns) and validates all of it, reporting every problem at once.
func Load(environ []string) (*Config, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	var c Config
	var problems []string
	failed := map[string]bool{}
	if err := env.ParseWithOptions(&c, env.Options{Environment: m}); err != nil {
		problems = append(problems, parseProblems(err, m, failed)...)
	}
	problems = append(problems, c.validate(failed)...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return &c, nil
}

// parseProblems turns caarlos0/env's aggregate error into one line per
// variable, naming the variable rather than the Go field.
func parseProblems(err error, environ map[string]string, failed map[string]bool) []string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e.Error())
			continue
		}
		want := map[reflect.Kind]string{
			reflect.Bool:  "true or false",
			reflect.Int:   "a whole number",
			reflect.Int64: "a whole number",
		}[pe.Type.Kind()]
		if pe.Type == reflect.TypeOf(time.Duration(0)) {
			want = "a duration such as 15s or 10m"
		}
		name := pe.Name
		if f, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
			name = f.Tag.Get("env")
		}
		failed[name] = true
		out = append(out, fmt.Sprintf("%s must be %s; got %q", name, want, environ[name]))
	}
	return out
}

// validate checks values and derives the parsed fields. Variables in failed
// could not be parsed at all and were reported already.
func (c *Config) validate(failed map[string]bool) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	check := func(name string, bad bool, format string, args ...any) {
		if bad && !failed[name] {
			add(format, args...)
		}
	}

	if c.UpstreamURL == "" {
		add("UPSTREAM_URL is required: the full URL of the upstream MCP endpoint, e.g. http://127.0.0.1:3001/mcp")
	} else if u, err := url.Parse(c.UpstreamURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("UPSTREAM_URL must be an absolute http or https URL such as http://127.0.0.1:3001/mcp; got %q", c.UpstreamURL)
	} else {
		c.Upstream = u
	}

	if c.ResourceServerURL == "" {
		add("RESOURCE_SERVER_URL is required: the public URL MCP clients use, e.g. https://mcp.example.com/mcp")
	} else if u, err := publicURL(c.ResourceServerURL); err != nil {
		add("RESOURCE_SERVER_URL %v; got %q", err, c.ResourceServerURL)
	} else if u.RawQuery != "" || strings.HasSuffix(u.Path, "/") && u.Path != "/" {
		add("RESOURCE_SERVER_URL must have no query and no trailing slash (it is compared byte for byte as the token audience); got %q", c.ResourceServerURL)
	} else if strings.ToLower(u.Scheme) != u.Scheme || strings.ToLower(u.Host) != u.Host {
		add("RESOURCE_SERVER_URL must be canonical, with a lowercase scheme and host; got %q", c.ResourceServerURL)
	} else {
		c.Resource = u
	}

	if c.AuthorizationServerURL == "" {
		// toolgate is the authorization server; its issuer is the origin
		// clients already reach it at.
		c.Embedded = true
		if c.Resource != nil {
			c.AuthorizationServerURL = c.Resource.Scheme + "://" + c.Resource.Host
			c.Issuer, _ = url.Parse(c.AuthorizationServerURL)
		}
	} else if u, err := publicURL(c.AuthorizationServerURL); err != nil {
		add("AUTHORIZATION_SERVER_URL %v; got %q", err, c.AuthorizationServerURL)
	} else if u.RawQuery != "" {
		add("AUTHORIZATION_SERVER_URL must have no query (RFC 8414 issuer identifier); got %q", c.AuthorizationServerURL)
	} else {
		c.Issuer = u
	}

	if c.JWKSURL != "" {
		if u, err := publicURL(c.JWKSURL); err != nil {
			add("JWKS_URL %v; got %q", err, c.JWKSURL)
		} else {
			c.JWKSOverrideURL = u
		}
	}

	if c.ListenAddr == "" {
		add("LISTEN_ADDR must not be empty; use host:port such as :8080 or 127.0.0.1:8080")
	} else if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil || port == "" {
		add("LISTEN_ADDR must be host:port such as :8080 or 127.0.0.1:8080; got %q", c.ListenAddr)
	}

	c.Audiences = splitList(c.TokenAudience, ",")
	if len(c.Audiences) == 0 {
		c.Audiences = []string{c.ResourceServerURL}
	}
	c.Required = splitList(c.RequiredScopes, ", ")
	c.Supported = splitList(c.ScopesSupported, ", ")
	if len(c.Supported) == 0 {
		c.Supported = c.Required
	}
	for _, s := range append(append([]string(nil), c.Required...), c.Supported...) {
		if !validScope(s) {
			add("REQUIRED_SCOPES and SCOPES_SUPPORTED hold scope tokens (RFC 6749 §3.3: printable ASCII, no quote or backslash); %q is not one", s)
		}
	}
	for _, o := range splitList(c.AllowedOrigins, ", ") {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			add("ALLOWED_ORIGINS holds origins such as https://chatgpt.com (scheme://host[:port], no path); %q is not one", o)
			continue
		}
		c.Origins = append(c.Origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}

	check("MAX_BODY_BYTES", c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<30,
		"MAX_BODY_BYTES must be between 1024 and 1073741824 bytes; got %d", c.MaxBodyBytes)
	check("SHUTDOWN_TIMEOUT", c.ShutdownTimeout <= 0,
		"SHUTDOWN_TIMEOUT must be positive, e.g. 15s; got %s", c.ShutdownTimeout)
	check("JWKS_REFRESH_INTERVAL", c.JWKSRefreshInterval < time.Minute,
		"JWKS_REFRESH_INTERVAL must be at least 1m; got %s", c.JWKSRefreshInterval)
	check("TOKEN_CACHE_SIZE", c.TokenCacheSize < 0,
		"TOKEN_CACHE_SIZE must be 0 (off) or more; got %d", c.TokenCacheSize)
	check("UPSTREAM_MAX_IDLE_CONNS", c.UpstreamMaxIdleConns < 1,
		"UPSTREAM_MAX_IDLE_CONNS must be at least 1; got %d", c.UpstreamMaxIdleConns)
	p = append(p, c.validateTokenValidation()...)
	p = append(p, c.validateEmbedded(failed)...)
	switch c.ChallengeMode {
	case "auto", "http", "tool-result":
	default:
		add("CHALLENGE_MODE must be auto, http or tool-result; got %q", c.ChallengeMode)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL must be one of debug, info, warn, error; got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		add("LOG_FORMAT must be json or console; got %q", c.LogFormat)
	}
	return p
}

// googleIssuer is Google's issuer identifier, byte for byte.
const googleIssuer = "https://accounts.google.com"

// validateTokenValidation checks TOKEN_VALIDATOR and the settings of the
// validator it selects, and flags settings no validator will read.
func (c *Config) validateTokenValidation() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	switch c.TokenValidator {
	case "auto", "jwt", "introspection", "google":
	default:
		add("TOKEN_VALIDATOR must be auto, jwt, introspection or google; got %q", c.TokenValidator)
	}
	googleHost := c.Issuer != nil && strings.EqualFold(c.Issuer.Hostname(), "accounts.google.com")
	c.Google = c.TokenValidator == "google" || c.TokenValidator == "auto" && googleHost
	c.GoogleClients = splitList(c.GoogleClientIDs, ", ")

	if c.Google {
		switch {
		case c.Issuer == nil:
			// already reported
		case !googleHost:
			add("TOKEN_VALIDATOR=google needs AUTHORIZATION_SERVER_URL=%s; got %q", googleIssuer, c.AuthorizationServerURL)
		case c.AuthorizationServerURL != googleIssuer:
			add("AUTHORIZATION_SERVER_URL must be exactly %s for Google (its issuer has no trailing slash and no path); got %q", googleIssuer, c.AuthorizationServerURL)
		}
		if len(c.GoogleClients) == 0 {
			add("GOOGLE_CLIENT_IDS is required with Google: your Google OAuth client IDs, comma-separated, e.g. 1234-abc.apps.googleusercontent.com (Google's tokens name the client they were issued to, never this resource)")
		}
		if c.GoogleTokenInfoURL != "" {
			if _, err := publicURL(c.GoogleTokenInfoURL); err != nil {
				add("GOOGLE_TOKENINFO_URL %v; got %q", err, c.GoogleTokenInfoURL)
			}
		}
	} else {
		if c.GoogleClientIDs != "" {
			add("GOOGLE_CLIENT_IDS is used only with Google (AUTHORIZATION_SERVER_URL=%s); unset it or correct AUTHORIZATION_SERVER_URL", googleIssuer)
		}
		if c.GoogleTokenInfoURL != "" {
			add("GOOGLE_TOKENINFO_URL is used only with Google (AUTHORIZATION_SERVER_URL=%s); unset it", googleIssuer)
		}
	}

	if c.IntrospectionURL != "" {
		if _, err := publicURL(c.IntrospectionURL); err != nil {
			add("INTROSPECTION_URL %v; got %q", err, c.IntrospectionURL)
		}
	}
	switch c.IntrospectionAuthMethod {
	case "client_secret_basic", "client_secret_post":
	default:
		add("INTROSPECTION_AUTH_METHOD must be client_secret_basic or client_secret_post; got %q", c.IntrospectionAuthMethod)
	}
	configured := c.IntrospectionURL != "" || c.IntrospectionClientID != "" || c.IntrospectionClientSecret != ""
	switch {
	case c.TokenValidator == "introspection" && (c.IntrospectionClientID == "" || c.IntrospectionClientSecret == ""):
		add("INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET are required with TOKEN_VALIDATOR=introspection: the client credentials toolgate presents at the introspection endpoint (RFC 7662 §2.1 requires the caller to authenticate)")
	case configured && (c.IntrospectionClientID == "" || c.IntrospectionClientSecret == ""):
		add("INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET must both be set to introspect opaque tokens (RFC 7662 §2.1 requires the caller to authenticate)")
	case configured && c.TokenValidator == "jwt":
		add("INTROSPECTION_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET are not used with TOKEN_VALIDATOR=jwt; unset them, or use TOKEN_VALIDATOR=auto to introspect opaque tokens")
	case configured && c.Google:
		add("INTROSPECTION_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET are not used with Google, which has no RFC 7662 endpoint (its opaque tokens go to tokeninfo); unset them")
	}
	c.Introspects = c.IntrospectionClientID != "" && c.IntrospectionClientSecret != "" && !c.Google && c.TokenValidator != "jwt"
	return p
}

// publicURL accepts an absolute https URL, or http for loopback hosts only
// (local development), and never a fragment or user info.
func publicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("must be an absolute https URL (http is allowed only for loopback hosts)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("must not have a fragment")
	}
	if u.User != nil {
		return nil, errors.New("must not carry user info")
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return nil, errors.New("must use https (http is allowed only for loopback hosts such as 127.0.0.1, ::1 or localhost)")
	}
	return u, nil
}

// IsLoopback reports whether host names this machine only.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitList splits on any of the separator characters and drops empties and
// duplicates, keeping first-seen order.
func splitList(s, seps string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) || r == '\t' || r == '\n' })
	seen := make(map[string]bool, len(fields))
	out := fields[:0]
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func validScope(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// Variables lists every environment variable toolgate reads, sorted; the
// docs test uses it to prove config.example.env and README.md mention each.
func Variables() []string {
	params, _ := env.GetFieldParams(&Config{})
	out := make([]string, 0, len(params))
	for _, p := range params {
		out = append(out, p.Key)
	}
	sort.Strings(out)
	return out
}
