package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// googleIDPIssuer is where IDP=google signs users in.
const googleIDPIssuer = "https://accounts.google.com"

// ServerPaths are the paths toolgate's own authorization server answers at
// the resource's origin; the MCP endpoint may not be one of them.
var ServerPaths = []string{"/authorize", "/token", "/register", "/revoke", "/jwks.json", "/oauth/callback", "/.well-known/oauth-authorization-server"}

// validateEmbedded checks the embedded authorization server's settings when
// it is on, and flags them when it is off (an AUTHORIZATION_SERVER_URL left
// in the environment would otherwise silently ignore LOCAL_USERS and IDP).
func (c *Config) validateEmbedded(failed map[string]bool) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	c.AllowEmails = splitList(strings.ToLower(c.AllowedEmails), ", ")
	c.AllowDomains = splitList(strings.ToLower(c.AllowedDomains), ", ")
	c.AllowOrgs = splitList(c.AllowedGitHubOrgs, ", ")

	for _, f := range splitList(c.TrustedProxies, ", ") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				add("TRUSTED_PROXIES holds IP addresses or CIDR prefixes such as 10.0.0.0/8; %q is neither", f)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.Proxies = append(c.Proxies, p.Masked())
	}

	if !c.Embedded {
		var set []string
		for name, v := range map[string]string{
			"LOCAL_USERS": c.LocalUsers, "LOCAL_USERS_FILE": c.LocalUsersFile, "IDP": c.IDP,
			"OAUTH_CLIENTS_FILE": c.OAuthClientsFile, "SIGNING_KEY": c.SigningKey, "SIGNING_KEY_FILE": c.SigningKeyFile,
			"REDIS_URL": c.RedisURL, "TRUSTED_PROXIES": c.TrustedProxies,
			"IDP_ISSUER_URL": c.IDPIssuerURL, "IDP_CLIENT_ID": c.IDPClientID, "IDP_CLIENT_SECRET": c.IDPClientSecret,
			"IDP_NAME": c.IDPName, "ALLOWED_EMAILS": c.AllowedEmails, "ALLOWED_DOMAINS": c.AllowedDomains,
			"ALLOWED_GITHUB_ORGS": c.AllowedGitHubOrgs, "CLIENT_METADATA_CA_FILE": c.ClientMetadataCAFile,
		} {
			if v != "" {
				set = append(set, name)
			}
		}
		if len(set) > 0 {
			sort.Strings(set)
			add("%s configure toolgate's own authorization server, which runs only when AUTHORIZATION_SERVER_URL is empty; unset them, or unset AUTHORIZATION_SERVER_URL (now %q)", strings.Join(set, ", "), c.AuthorizationServerURL)
		}
		return p
	}

	if c.Resource != nil {
		for _, sp := range ServerPaths {
			if c.Resource.Path == sp || strings.HasPrefix(c.Resource.Path, "/authorize/") {
				add("RESOURCE_SERVER_URL's path %q is one of the paths of toolgate's own authorization server (%s); serve MCP at another path such as /mcp", c.Resource.Path, strings.Join(ServerPaths, ", "))
				break
			}
		}
	}
	switch c.TokenValidator {
	case "auto", "jwt":
	default:
		if !failed["TOKEN_VALIDATOR"] {
			add("TOKEN_VALIDATOR=%s does not apply when toolgate is the authorization server (AUTHORIZATION_SERVER_URL empty): it validates its own JWTs; unset TOKEN_VALIDATOR", c.TokenValidator)
		}
	}
	if c.IntrospectionURL != "" || c.IntrospectionClientID != "" || c.IntrospectionClientSecret != "" {
		add("INTROSPECTION_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET do not apply when toolgate is the authorization server (AUTHORIZATION_SERVER_URL empty): its tokens are JWTs it checks itself; unset them")
	}
	if c.ScopesSupported != "" {
		for _, r := range c.Required {
			if !slices.Contains(c.Supported, r) {
				add("SCOPES_SUPPORTED must include every REQUIRED_SCOPES scope when toolgate is the authorization server (it grants them to every client); %q is missing", r)
			}
		}
	}
	if c.JWKSURL != "" {
		add("JWKS_URL does not apply when toolgate is the authorization server (AUTHORIZATION_SERVER_URL empty): it signs tokens itself; unset JWKS_URL")
	}
	if c.TokenAudience != "" {
		add("TOKEN_AUDIENCE does not apply when toolgate is the authorization server (AUTHORIZATION_SERVER_URL empty): its tokens are issued for RESOURCE_SERVER_URL; unset TOKEN_AUDIENCE")
	}

	if c.LocalUsers == "" && c.LocalUsersFile == "" && c.IDP == "" {
		add("AUTHORIZATION_SERVER_URL is empty, so toolgate is the authorization server, and it needs a way to sign users in: set LOCAL_USERS (name:bcrypt-hash pairs; `toolgate hash-password` makes a hash) or LOCAL_USERS_FILE, or IDP=google|github|oidc with IDP_CLIENT_ID and IDP_CLIENT_SECRET. To use an existing authorization server instead, set AUTHORIZATION_SERVER_URL to its issuer")
	}
	if c.LocalUsers != "" && c.LocalUsersFile != "" {
		add("LOCAL_USERS and LOCAL_USERS_FILE are both set; use one")
	}
	if c.SigningKey != "" && c.SigningKeyFile != "" {
		add("SIGNING_KEY and SIGNING_KEY_FILE are both set; use one")
	}
	switch c.StoreKind {
	case "file":
		if c.DataDir == "" {
			add("DATA_DIR must not be empty with STORE=file: it holds the signing key, codes and refresh tokens")
		}
		if c.RedisURL != "" {
			add("REDIS_URL is set but STORE=file; set STORE=redis to use it")
		}
	case "redis":
		if u, err := url.Parse(c.RedisURL); c.RedisURL == "" || err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			add("REDIS_URL must be a redis:// or rediss:// URL such as redis://redis:6379/0 with STORE=redis")
		}
	default:
		add("STORE must be file or redis; got %q", c.StoreKind)
	}
	check := func(name string, bad bool, format string, args ...any) {
		if bad && !failed[name] {
			add(format, args...)
		}
	}
	check("ACCESS_TOKEN_TTL", c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour,
		"ACCESS_TOKEN_TTL must be between 1m and 24h; got %s", c.AccessTokenTTL)
	check("REFRESH_TOKEN_TTL", c.RefreshTokenTTL < time.Hour || c.RefreshTokenTTL > 365*24*time.Hour,
		"REFRESH_TOKEN_TTL must be between 1h and 8760h (a year); got %s", c.RefreshTokenTTL)
	if c.ClientMetadataCAFile != "" && !c.ClientMetadataDocuments {
		add("CLIENT_METADATA_CA_FILE is set but CLIENT_METADATA_DOCUMENTS=false")
	}
	return append(p, c.validateIDP()...)
}

func (c *Config) validateIDP() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch c.IDP {
	case "":
		for name, v := range map[string]string{"IDP_ISSUER_URL": c.IDPIssuerURL, "IDP_CLIENT_ID": c.IDPClientID, "IDP_CLIENT_SECRET": c.IDPClientSecret,
			"ALLOWED_GITHUB_ORGS": c.AllowedGitHubOrgs, "IDP_NAME": c.IDPName, "ALLOWED_EMAILS": c.AllowedEmails, "ALLOWED_DOMAINS": c.AllowedDomains} {
			if v != "" {
				add("%s is set but IDP is empty; set IDP=google, github or oidc", name)
			}
		}
		return p
	case "google":
		if c.IDPIssuerURL != "" && c.IDPIssuerURL != googleIDPIssuer {
			add("IDP_ISSUER_URL must be empty or %s with IDP=google; got %q", googleIDPIssuer, c.IDPIssuerURL)
		}
		c.IDPIssuerURL = googleIDPIssuer
	case "github":
		if c.IDPIssuerURL != "" {
			add("IDP_ISSUER_URL is not used with IDP=github (GitHub is not an OpenID Connect issuer); unset it")
		}
	case "oidc":
		if c.IDPIssuerURL == "" {
			add("IDP_ISSUER_URL is required with IDP=oidc: the issuer identifier of your identity provider, e.g. https://login.example.com/realms/staff")
		} else if _, err := publicURL(c.IDPIssuerURL); err != nil {
			add("IDP_ISSUER_URL %v; got %q", err, c.IDPIssuerURL)
		}
	default:
		add("IDP must be google, github or oidc; got %q", c.IDP)
		return p
	}
	if c.IDPClientID == "" || c.IDPClientSecret == "" {
		add("IDP_CLIENT_ID and IDP_CLIENT_SECRET are required with IDP=%s: the OAuth client you registered at the provider, with redirect URI %s/oauth/callback", c.IDP, c.AuthorizationServerURL)
	}
	if c.AllowedGitHubOrgs != "" && c.IDP != "github" {
		add("ALLOWED_GITHUB_ORGS is used only with IDP=github")
	}
	return p
}
