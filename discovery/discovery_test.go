package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://as.example.com", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration"}},
		{"https://tenant.auth0.com/", []string{
			"https://tenant.auth0.com/.well-known/oauth-authorization-server",
			"https://tenant.auth0.com/.well-known/openid-configuration"}},
		{"https://sso.example.com/realms/mcp", []string{
			"https://sso.example.com/.well-known/oauth-authorization-server/realms/mcp",
			"https://sso.example.com/.well-known/openid-configuration/realms/mcp",
			"https://sso.example.com/realms/mcp/.well-known/openid-configuration"}},
	}
	for _, tc := range tests {
		got, err := MetadataURLs(tc.issuer)
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s:\n got %v\nwant %v (%v)", tc.issuer, got, tc.want, err)
		}
	}
	if _, err := MetadataURLs("not a url"); err == nil {
		t.Error("relative issuer accepted")
	}
}

func TestMetadataURLOfResource(t *testing.T) {
	for raw, want := range map[string]string{
		"https://mcp.example.com/mcp":     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com":         "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":        "https://mcp.example.com/.well-known/oauth-protected-resource",
		"http://127.0.0.1:8080/a/b%20c":   "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b%20c",
		"https://mcp.example.com:8443/x/": "https://mcp.example.com:8443/.well-known/oauth-protected-resource/x",
	} {
		u, _ := url.Parse(raw)
		if got := MetadataURL(u); got != want {
			t.Errorf("%s: got %s, want %s", raw, got, want)
		}
	}
}

// issuerServer serves metadata documents at the given paths.
func issuerServer(t *testing.T, docs map[string]func(base string) any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(f(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchServerMetadata(t *testing.T) {
	ctx := context.Background()

	// RFC 8414 first; OIDC discovery when that is missing.
	srv := issuerServer(t, map[string]func(string) any{
		"/.well-known/openid-configuration/t1": func(base string) any {
			return map[string]any{"issuer": base + "/t1", "jwks_uri": base + "/keys"}
		},
	})
	md, err := FetchServerMetadata(ctx, srv.Client(), srv.URL+"/t1")
	if err != nil || md.JWKSURI != srv.URL+"/keys" || md.Source != srv.URL+"/.well-known/openid-configuration/t1" {
		t.Fatalf("path-inserted OIDC discovery: %+v %v", md, err)
	}

	// A document naming another issuer, even by a trailing slash, is refused.
	srv = issuerServer(t, map[string]func(string) any{
		"/.well-known/oauth-authorization-server": func(base string) any { return map[string]any{"issuer": base + "/"} },
	})
	_, err = FetchServerMetadata(ctx, srv.Client(), srv.URL)
	var mm *IssuerMismatchError
	if !errors.As(err, &mm) || !IsPermanent(err) || !strings.Contains(err.Error(), "trailing slash") {
		t.Fatalf("issuer mismatch: %v", err)
	}

	// Nothing anywhere: one error naming every URL tried.
	srv = issuerServer(t, nil)
	_, err = FetchServerMetadata(ctx, srv.Client(), srv.URL)
	if err == nil || strings.Count(err.Error(), "status 404") != 2 {
		t.Fatalf("no metadata: %v", err)
	}
}

func TestResourceHandler(t *testing.T) {
	h, err := NewResourceHandler(ResourceMetadata{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"}, BearerMethodsSupported: []string{"header"}})
	if err != nil {
		t.Fatal(err)
	}
	for method, status := range map[string]int{"GET": 200, "HEAD": 200, "OPTIONS": 204, "POST": 405} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/.well-known/oauth-protected-resource/mcp", nil))
		if rec.Code != status || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v", method, rec.Code, rec.Header())
		}
		if method == "GET" && rec.Body.String() != `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://as.example.com"],"bearer_methods_supported":["header"]}` {
			t.Errorf("body %s", rec.Body)
		}
	}
}
