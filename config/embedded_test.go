package config

import (
	"fmt"
	"strings"
	"testing"
)

var embeddedMinimal = []string{
	"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
	"RESOURCE_SERVER_URL=https://mcp.example.com/mcp",
	"LOCAL_USERS=alice:$2a$10$abcdefghijklmnopqrstuu",
}

func TestEmbeddedIssuerIsTheResourceOrigin(t *testing.T) {
	c, err := Load(embeddedMinimal)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded || c.AuthorizationServerURL != "https://mcp.example.com" || c.Issuer.String() != "https://mcp.example.com" {
		t.Fatalf("embedded %v, issuer %q / %v: want the origin of RESOURCE_SERVER_URL", c.Embedded, c.AuthorizationServerURL, c.Issuer)
	}
	if c.StoreKind != "file" || c.DataDir == "" || c.AccessTokenTTL.String() != "1h0m0s" || !c.ClientMetadataDocuments || c.ClientMetadataAllowPrivate {
		t.Fatalf("defaults: store %q dir %q ttl %v cimd %v private %v", c.StoreKind, c.DataDir, c.AccessTokenTTL, c.ClientMetadataDocuments, c.ClientMetadataAllowPrivate)
	}
}

func TestEmbeddedValidationNamesTheVariable(t *testing.T) {
	base := embeddedMinimal[:2]
	tests := []struct {
		env  []string
		want string
	}{
		{nil, "needs a way to sign users in: set LOCAL_USERS"},
		{[]string{"IDP=okta", "IDP_CLIENT_ID=a", "IDP_CLIENT_SECRET=b"}, "IDP must be google, github or oidc"},
		{[]string{"IDP=oidc", "IDP_CLIENT_ID=a", "IDP_CLIENT_SECRET=b"}, "IDP_ISSUER_URL is required with IDP=oidc"},
		{[]string{"IDP=oidc", "IDP_ISSUER_URL=http://sso.example.com", "IDP_CLIENT_ID=a", "IDP_CLIENT_SECRET=b"}, "IDP_ISSUER_URL must use https"},
		{[]string{"IDP=google"}, "IDP_CLIENT_ID and IDP_CLIENT_SECRET are required with IDP=google: the OAuth client you registered at the provider, with redirect URI https://mcp.example.com/oauth/callback"},
		{[]string{"IDP=github", "IDP_ISSUER_URL=https://github.com", "IDP_CLIENT_ID=a", "IDP_CLIENT_SECRET=b"}, "IDP_ISSUER_URL is not used with IDP=github"},
		{[]string{"IDP=google", "IDP_CLIENT_ID=a", "IDP_CLIENT_SECRET=b", "ALLOWED_GITHUB_ORGS=x"}, "ALLOWED_GITHUB_ORGS is used only with IDP=github"},
		{[]string{"LOCAL_USERS=a:b", "IDP_CLIENT_ID=a"}, "IDP_CLIENT_ID is set but IDP is empty"},
		{[]string{"LOCAL_USERS=a:b", "LOCAL_USERS_FILE=/x"}, "LOCAL_USERS and LOCAL_USERS_FILE are both set"},
		{[]string{"LOCAL_USERS=a:b", "STORE=sql"}, `STORE must be file or redis; got "sql"`},
		{[]string{"LOCAL_USERS=a:b", "STORE=redis"}, "REDIS_URL must be a redis:// or rediss:// URL"},
		{[]string{"LOCAL_USERS=a:b", "REDIS_URL=redis://r:6379"}, "REDIS_URL is set but STORE=file"},
		{[]string{"LOCAL_USERS=a:b", "ACCESS_TOKEN_TTL=10s"}, "ACCESS_TOKEN_TTL must be between 1m and 24h"},
		{[]string{"LOCAL_USERS=a:b", "ACCESS_TOKEN_TTL=soon"}, "ACCESS_TOKEN_TTL must be a duration"},
		{[]string{"LOCAL_USERS=a:b", "TOKEN_VALIDATOR=introspection"}, "TOKEN_VALIDATOR=introspection does not apply when toolgate is the authorization server"},
		{[]string{"LOCAL_USERS=a:b", "JWKS_URL=https://x.example.com/jwks"}, "JWKS_URL does not apply"},
		{[]string{"LOCAL_USERS=a:b", "SIGNING_KEY=x", "SIGNING_KEY_FILE=/k"}, "SIGNING_KEY and SIGNING_KEY_FILE are both set"},
		{[]string{"LOCAL_USERS=a:b", "ALLOWED_EMAILS=a@example.com"}, "ALLOWED_EMAILS is set but IDP is empty"},
		{[]string{"LOCAL_USERS=a:b", "INTROSPECTION_CLIENT_ID=x", "INTROSPECTION_CLIENT_SECRET=y"}, "INTROSPECTION_URL, INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET do not apply"},
		{[]string{"LOCAL_USERS=a:b", "REQUIRED_SCOPES=mcp", "SCOPES_SUPPORTED=other"}, `SCOPES_SUPPORTED must include every REQUIRED_SCOPES scope when toolgate is the authorization server (it grants them to every client); "mcp" is missing`},
		{[]string{"LOCAL_USERS=a:b", "TRUSTED_PROXIES=10.0.0.0/8, lb.internal"}, `TRUSTED_PROXIES holds IP addresses or CIDR prefixes such as 10.0.0.0/8; "lb.internal" is neither`},
		{[]string{"LOCAL_USERS=a:b", "RESOURCE_SERVER_URL=https://mcp.example.com/token"}, "RESOURCE_SERVER_URL's path \"/token\" is one of the paths of toolgate's own authorization server"},
	}
	for _, tt := range tests {
		_, err := Load(append(append([]string(nil), base...), tt.env...))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to contain %q", tt.env, err, tt.want)
		}
	}
}

// Settings of the embedded server next to an external issuer are a
// mistake worth stopping for: they would be silently ignored.
func TestEmbeddedSettingsWithExternalIssuer(t *testing.T) {
	_, err := Load(append(append([]string(nil), minimal...), "LOCAL_USERS=a:b", "IDP=google", "ALLOWED_DOMAINS=example.com"))
	if err == nil || !strings.Contains(err.Error(), "ALLOWED_DOMAINS, IDP, LOCAL_USERS configure toolgate's own authorization server, which runs only when AUTHORIZATION_SERVER_URL is empty") {
		t.Fatalf("error %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(append(append([]string(nil), embeddedMinimal...), "TRUSTED_PROXIES=10.1.2.3/8, 192.0.2.7, fd00::/8"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Proxies) != "[10.0.0.0/8 192.0.2.7/32 fd00::/8]" {
		t.Fatalf("proxies %v", c.Proxies)
	}
}
