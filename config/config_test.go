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
