package config

import (
	"errors"
	"strings"
	"testing"
)

var minimal = []string{
	"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
	"RESOURCE_SERVER_URL=https://mcp.example.com/mcp",
	"AUTHORIZATION_SERVER_URL=https://tenant.auth0.com/",
}

func TestDefaults(t *testing.T) {
	c, err := Load(minimal)
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":8080" || c.MaxBodyBytes != 4<<20 || c.ForwardAccessToken || c.LogLevel != "info" || c.LogFormat != "json" {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.Audiences) != 1 || c.Audiences[0] != "https://mcp.example.com/mcp" {
		t.Fatalf("audience defaults to the resource: %v", c.Audiences)
	}
	if c.Issuer.String() != "https://tenant.auth0.com/" {
		t.Fatalf("issuer kept byte for byte: %v", c.Issuer)
	}
}

func TestLists(t *testing.T) {
	c, err := Load(append(minimal,
		"REQUIRED_SCOPES=mcp:read, mcp:write mcp:read",
		"TOKEN_AUDIENCE=https://api.example.com,https://mcp.example.com/mcp",
		"ALLOWED_ORIGINS=https://ChatGPT.com, http://localhost:6274",
	))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Required, "|") != "mcp:read|mcp:write" || strings.Join(c.Supported, "|") != "mcp:read|mcp:write" {
		t.Fatalf("scopes: %v / %v", c.Required, c.Supported)
	}
	if len(c.Audiences) != 2 || strings.Join(c.Origins, "|") != "https://chatgpt.com|http://localhost:6274" {
		t.Fatalf("audiences %v origins %v", c.Audiences, c.Origins)
	}
}

func TestValidationNamesTheVariable(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"UPSTREAM_URL=ftp://x"}, `UPSTREAM_URL must be an absolute http or https URL`},
		{[]string{"RESOURCE_SERVER_URL=http://mcp.example.com/mcp"}, `RESOURCE_SERVER_URL must use https`},
		{[]string{"RESOURCE_SERVER_URL=http://127.0.0.1:8080/mcp"}, ``},
		{[]string{"RESOURCE_SERVER_URL=http://[::1]:8080/mcp"}, ``},
		{[]string{"RESOURCE_SERVER_URL=https://mcp.example.com/mcp/"}, `no trailing slash`},
		{[]string{"RESOURCE_SERVER_URL=https://MCP.example.com/mcp"}, `lowercase scheme and host`},
		{[]string{"RESOURCE_SERVER_URL=https://mcp.example.com/mcp#x"}, `RESOURCE_SERVER_URL must not have a fragment`},
		{[]string{"AUTHORIZATION_SERVER_URL=tenant.auth0.com"}, `AUTHORIZATION_SERVER_URL must be an absolute https URL`},
		{[]string{"AUTHORIZATION_SERVER_URL=https://user:pw@tenant.auth0.com/"}, `must not carry user info`},
		{[]string{"JWKS_URL=http://keys.example.com/jwks"}, `JWKS_URL must use https`},
		{[]string{"LISTEN_ADDR=8080"}, `LISTEN_ADDR must be host:port`},
		{[]string{"FORWARD_ACCESS_TOKEN=yes please"}, `FORWARD_ACCESS_TOKEN must be true or false`},
		{[]string{"MAX_BODY_BYTES=10"}, `MAX_BODY_BYTES must be between 1024 and 1073741824`},
		{[]string{"SHUTDOWN_TIMEOUT=soon"}, `SHUTDOWN_TIMEOUT must be a duration such as 15s`},
		{[]string{"JWKS_REFRESH_INTERVAL=1s"}, `JWKS_REFRESH_INTERVAL must be at least 1m`},
		{[]string{"REQUIRED_SCOPES=a\"b"}, `is not one`},
		{[]string{"ALLOWED_ORIGINS=https://chatgpt.com/path"}, `ALLOWED_ORIGINS holds origins`},
		{[]string{"LOG_LEVEL=verbose"}, `LOG_LEVEL must be one of`},
		{[]string{"LOG_FORMAT=xml"}, `LOG_FORMAT must be json or console`},
	}
	for _, tc := range tests {
		_, err := Load(append(append([]string(nil), minimal...), tc.env...))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: unexpected %v", tc.env, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load([]string{"MAX_BODY_BYTES=x", "LOG_FORMAT=xml"})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 5 {
		t.Fatalf("want 5 problems (3 required, MAX_BODY_BYTES, LOG_FORMAT), got %v", err)
	}
}

func TestTokenValidationDefaults(t *testing.T) {
	c, err := Load(minimal)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenValidator != "auto" || c.IntrospectionAuthMethod != "client_secret_basic" || c.IntrospectionAllowNoAudience ||
		c.Google || c.Introspects || c.GoogleClients != nil {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestTokenValidationModes(t *testing.T) {
	google := []string{
		"UPSTREAM_URL=http://127.0.0.1:3001/mcp",
		"RESOURCE_SERVER_URL=https://mcp.example.com/mcp",
		"AUTHORIZATION_SERVER_URL=https://accounts.google.com",
	}
	introspect := []string{"INTROSPECTION_CLIENT_ID=toolgate", "INTROSPECTION_CLIENT_SECRET=s3cret"}
	tests := []struct {
		name                string
		base                []string
		env                 []string
		google, introspects bool
	}{
		{"Google is detected from the issuer", google, []string{"GOOGLE_CLIENT_IDS=a.apps.googleusercontent.com, b.apps.googleusercontent.com"}, true, false},
		{"Google forced", google, []string{"TOKEN_VALIDATOR=google", "GOOGLE_CLIENT_IDS=a", "GOOGLE_TOKENINFO_URL=http://127.0.0.1:9/tokeninfo", "JWKS_URL=http://127.0.0.1:9/certs"}, true, false},
		{"Google issuer, JWT forced", google, []string{"TOKEN_VALIDATOR=jwt"}, false, false},
		{"introspection for opaque tokens", minimal, introspect, false, true},
		{"introspection with a URL and POST credentials", minimal, append([]string{"INTROSPECTION_URL=https://tenant.example.com/introspect", "INTROSPECTION_AUTH_METHOD=client_secret_post"}, introspect...), false, true},
		{"introspection forced", minimal, append([]string{"TOKEN_VALIDATOR=introspection", "INTROSPECTION_ALLOW_NO_AUDIENCE=true"}, introspect...), false, true},
	}
	for _, tc := range tests {
		c, err := Load(append(append([]string(nil), tc.base...), tc.env...))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Google != tc.google || c.Introspects != tc.introspects {
			t.Errorf("%s: google=%v introspects=%v", tc.name, c.Google, c.Introspects)
		}
	}
	c, _ := Load(append(google, "GOOGLE_CLIENT_IDS=a.apps.googleusercontent.com, b.apps.googleusercontent.com,a.apps.googleusercontent.com"))
	if strings.Join(c.GoogleClients, "|") != "a.apps.googleusercontent.com|b.apps.googleusercontent.com" {
		t.Fatalf("GoogleClients = %v", c.GoogleClients)
	}
}

func TestTokenValidationNamesTheVariable(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"TOKEN_VALIDATOR=opaque"}, `TOKEN_VALIDATOR must be auto, jwt, introspection or google; got "opaque"`},
		{[]string{"AUTHORIZATION_SERVER_URL=https://accounts.google.com"}, `GOOGLE_CLIENT_IDS is required with Google`},
		{[]string{"AUTHORIZATION_SERVER_URL=https://accounts.google.com/", "GOOGLE_CLIENT_IDS=a"}, `AUTHORIZATION_SERVER_URL must be exactly https://accounts.google.com for Google`},
		{[]string{"TOKEN_VALIDATOR=google", "GOOGLE_CLIENT_IDS=a"}, `TOKEN_VALIDATOR=google needs AUTHORIZATION_SERVER_URL=https://accounts.google.com`},
		{[]string{"AUTHORIZATION_SERVER_URL=https://accounts.google.com", "GOOGLE_CLIENT_IDS=a", "GOOGLE_TOKENINFO_URL=http://tokeninfo.example.com"}, `GOOGLE_TOKENINFO_URL must use https`},
		{[]string{"GOOGLE_CLIENT_IDS=a"}, `GOOGLE_CLIENT_IDS is used only with Google`},
		{[]string{"GOOGLE_TOKENINFO_URL=https://tokeninfo.example.com"}, `GOOGLE_TOKENINFO_URL is used only with Google`},
		{[]string{"TOKEN_VALIDATOR=introspection"}, `INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET are required with TOKEN_VALIDATOR=introspection`},
		{[]string{"INTROSPECTION_CLIENT_ID=toolgate"}, `INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET must both be set`},
		{[]string{"INTROSPECTION_URL=https://as.example.com/introspect"}, `must both be set`},
		{[]string{"INTROSPECTION_URL=http://as.example.com/introspect", "INTROSPECTION_CLIENT_ID=a", "INTROSPECTION_CLIENT_SECRET=b"}, `INTROSPECTION_URL must use https`},
		{[]string{"INTROSPECTION_AUTH_METHOD=private_key_jwt"}, `INTROSPECTION_AUTH_METHOD must be client_secret_basic or client_secret_post`},
		{[]string{"INTROSPECTION_ALLOW_NO_AUDIENCE=maybe"}, `INTROSPECTION_ALLOW_NO_AUDIENCE must be true or false`},
		{[]string{"TOKEN_VALIDATOR=jwt", "INTROSPECTION_CLIENT_ID=a", "INTROSPECTION_CLIENT_SECRET=b"}, `not used with TOKEN_VALIDATOR=jwt`},
		{[]string{"AUTHORIZATION_SERVER_URL=https://accounts.google.com", "GOOGLE_CLIENT_IDS=a", "INTROSPECTION_CLIENT_ID=a", "INTROSPECTION_CLIENT_SECRET=b"}, `not used with Google`},
	}
	for _, tc := range tests {
		_, err := Load(append(append([]string(nil), minimal...), tc.env...))
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.env, err, tc.want)
		}
	}
}

// The client secret is a credential: no problem report may repeat it.
func TestIntrospectionSecretNeverInErrors(t *testing.T) {
	_, err := Load(append(append([]string(nil), minimal...), "TOKEN_VALIDATOR=jwt", "INTROSPECTION_CLIENT_ID=a", "INTROSPECTION_CLIENT_SECRET=hunter2-secret"))
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("err = %v", err)
	}
}
