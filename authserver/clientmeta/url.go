package clientmeta

import (
	"net/url"
	"strings"
)

// maxURLLength keeps absurd client_ids out of caches, logs and requests.
const maxURLLength = 2048

// IsURL reports whether clientID has the shape of a metadata-document
// client_id: https scheme, a host, a non-empty path other than "/", no
// fragment, no user info, no "." or ".." path segments. It does no I/O, so
// callers use it to decide how to treat a client_id.
func IsURL(clientID string) bool {
	if len(clientID) > maxURLLength || !strings.HasPrefix(clientID, "https://") {
		return false
	}
	// url.Parse tolerates some of these; a client_id is compared byte for
	// byte with the document, so anything ambiguous is refused outright.
	if strings.ContainsAny(clientID, "#\\") || hasSpaceOrControl(clientID) {
		return false
	}
	u, err := url.Parse(clientID)
	if err != nil || u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return false
	}
	if u.Path == "" || u.Path == "/" {
		return false
	}
	return !hasDotSegment(u.Path) && !hasDotSegment(u.EscapedPath())
}

// hasDotSegment reports whether path has a "." or ".." segment. Callers
// check both the decoded and the escaped path, so "%2e%2e" counts too.
func hasDotSegment(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

// AllowsRedirect reports whether uri matches one of the document's
// registered redirect URIs under RedirectMatches.
func (d *Document) AllowsRedirect(uri string) bool {
	for _, registered := range d.RedirectURIs {
		if RedirectMatches(registered, uri) {
			return true
		}
	}
	return false
}

// RedirectMatches reports whether the redirect URI requested at the
// authorization endpoint matches a registered one. The rule is exact string
// comparison, with one exception from RFC 8252 §7.3: for loopback http
// redirect URIs (http://127.0.0.1, http://[::1], http://localhost) the port
// is ignored, because native apps pick a free port at run time. Scheme,
// host, path and query must still match exactly.
func RedirectMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	reg, ok := parseLoopbackRedirect(registered)
	if !ok {
		return false
	}
	req, ok := parseLoopbackRedirect(requested)
	if !ok {
		return false
	}
	return reg.Hostname() == req.Hostname() &&
		reg.EscapedPath() == req.EscapedPath() &&
		reg.RawQuery == req.RawQuery &&
		reg.ForceQuery == req.ForceQuery
}

// parseLoopbackRedirect parses s if it is a plain loopback http URI: the
// only kind whose port may differ between registration and request.
func parseLoopbackRedirect(s string) (*url.URL, bool) {
	if !strings.HasPrefix(s, "http://") || strings.Contains(s, "#") {
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Opaque != "" {
		return nil, false
	}
	return u, IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost is the fixed set of loopback host names RFC 8252 allows
// in redirect URIs; deliberately not "anything in 127/8" or "*.localhost".
// The authorization server applies it to every kind of client.
func IsLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}
