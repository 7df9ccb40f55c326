package clientmeta

import (
	"net/url"
	"strings"
	"testing"
)

func TestIsURL(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"https://example.com/client.json", true},
		{"https://example.com:8443/oauth/client.json", true},
		{"https://chatgpt.com/oauth/client.json", true},
		{"https://example.com/client?v=1", true},
		{"https://127.0.0.1/client.json", true}, // shape only; the dialer refuses it
		{"https://[::1]:9/c", true},

		{"", false},
		{"my-client", false},
		{"http://example.com/client.json", false},
		{"HTTPS://example.com/client.json", false},
		{"ftp://example.com/client.json", false},
		{"https://example.com", false},
		{"https://example.com/", false},
		{"https:///client.json", false},
		{"https://:443/client.json", false},
		{"https:example.com/client.json", false},
		{"https://example.com/client.json#frag", false},
		{"https://example.com/client.json#", false},
		{"https://user@example.com/client.json", false},
		{"https://user:pass@example.com/client.json", false},
		{"https://example.com/./client.json", false},
		{"https://example.com/a/../client.json", false},
		{"https://example.com/a/..", false},
		{"https://example.com/a/%2e%2e/client.json", false},
		{"https://example.com/a/%2E/client.json", false},
		{"https://example.com/a b", false},
		{"https://example.com/a\tb", false},
		{"https://example.com/a\\b", false},
		{" https://example.com/client.json", false},
		{"https://example.com/" + strings.Repeat("a", maxURLLength), false},
	}
	for _, tt := range tests {
		if got := IsURL(tt.in); got != tt.want {
			t.Errorf("IsURL(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRedirectMatches(t *testing.T) {
	tests := []struct {
		registered, requested string
		want                  bool
	}{
		{"https://app.example/cb", "https://app.example/cb", true},
		{"https://app.example/cb", "https://app.example/cb/", false},
		{"https://app.example/cb", "https://app.example/CB", false},
		{"https://app.example/cb", "https://APP.example/cb", false},
		{"https://app.example/cb", "https://app.example:443/cb", false},
		{"https://app.example:8443/cb", "https://app.example:9443/cb", false}, // port freedom is loopback only
		{"https://app.example/cb", "https://app.example/cb?x=1", false},
		{"https://app.example/cb", "https://app.example/cb#x", false},
		{"https://app.example/cb", "http://app.example/cb", false},

		// RFC 8252 §7.3: loopback ports may differ.
		{"http://127.0.0.1/cb", "http://127.0.0.1:51004/cb", true},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb", true},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1/cb", true},
		{"http://[::1]/cb", "http://[::1]:6000/cb", true},
		{"http://localhost/cb", "http://localhost:3000/cb", true},
		{"http://localhost/cb?a=b", "http://localhost:3000/cb?a=b", true},
		// ... but nothing else may.
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb2", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/CB", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/%63b", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb?x", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb?", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb#f", false},
		{"http://127.0.0.1/cb", "http://localhost:5000/cb", false},
		{"http://localhost/cb", "http://127.0.0.1:5000/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.2:5000/cb", false},
		{"http://127.0.0.1/cb", "https://127.0.0.1:5000/cb", false},
		{"http://127.0.0.1/cb", "http://evil@127.0.0.1:5000/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:x/cb", false},
		{"http://localhost/cb", "http://LOCALHOST:5000/cb", false},
		{"http://localhost/cb", "http://localhost.evil.example:5000/cb", false},
		{"http://example.com/cb", "http://example.com:5000/cb", false},
		{"", "", true}, // exact match; a document can never register ""
		{"", "http://127.0.0.1/", false},
	}
	for _, tt := range tests {
		if got := RedirectMatches(tt.registered, tt.requested); got != tt.want {
			t.Errorf("RedirectMatches(%q, %q) = %v, want %v", tt.registered, tt.requested, got, tt.want)
		}
	}
}

func TestAllowsRedirect(t *testing.T) {
	doc := &Document{RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/callback"}}
	for uri, want := range map[string]bool{
		"https://app.example/cb":          true,
		"http://127.0.0.1:40000/callback": true,
		"https://app.example/other":       false,
		"http://127.0.0.1:40000/cb":       false,
		"":                                false,
	} {
		if got := doc.AllowsRedirect(uri); got != want {
			t.Errorf("AllowsRedirect(%q) = %v, want %v", uri, got, want)
		}
	}
	if (&Document{}).AllowsRedirect("https://app.example/cb") {
		t.Error("a document without redirect URIs allowed a redirect")
	}
}

func FuzzIsURL(f *testing.F) {
	for _, s := range []string{"https://example.com/client.json", "https://a/b/../c", "https://u@h/p", "https://h/p#f", "http://h/p", "https://h/%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsURL(s) {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("IsURL(%q) but url.Parse fails: %v", s, err)
		}
		if u.Scheme != "https" || u.Hostname() == "" || u.User != nil || strings.Contains(s, "#") {
			t.Fatalf("IsURL(%q) accepted a URL without https, host, or with user info or fragment", s)
		}
		if u.Path == "" || u.Path == "/" || hasDotSegment(u.Path) {
			t.Fatalf("IsURL(%q) accepted a bad path %q", s, u.Path)
		}
	})
}

func FuzzRedirectMatches(f *testing.F) {
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb")
	f.Add("https://app.example/cb", "https://app.example/cb")
	f.Add("http://[::1]:1/x?y", "http://[::1]:2/x?y")
	f.Add("http://localhost/cb", "http://evil@localhost:1/cb")
	f.Fuzz(func(t *testing.T, registered, requested string) {
		if !RedirectMatches(registered, registered) || !RedirectMatches(requested, requested) {
			t.Fatalf("RedirectMatches(x, x) is false for %q or %q", registered, requested)
		}
		got := RedirectMatches(registered, requested)
		if got != RedirectMatches(requested, registered) {
			t.Fatalf("RedirectMatches not symmetric for %q, %q", registered, requested)
		}
		if !got || registered == requested {
			return
		}
		// A non-exact match is only ever loopback http with the same host.
		reg, err1 := url.Parse(registered)
		req, err2 := url.Parse(requested)
		if err1 != nil || err2 != nil || reg.Scheme != "http" || req.Scheme != "http" ||
			!IsLoopbackHost(reg.Hostname()) || reg.Hostname() != req.Hostname() ||
			reg.Path != req.Path || reg.RawQuery != req.RawQuery || req.User != nil || req.Fragment != "" {
			t.Fatalf("RedirectMatches(%q, %q) = true for a non-loopback or different URI", registered, requested)
		}
	})
}
