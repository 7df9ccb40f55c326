package redisstore

import (
	"net/url"
	"slices"
	"strings"
)

// The Redis URL may carry a password, and so may any error that quotes a
// piece of it. redact and scrub keep it out of every error Open returns.
// They work on the raw text, because a URL that fails to parse may still
// hold a password (often in the wrong place, as in "redis:/user:pw@host").

// redact returns rawURL with everything that may be user information
// replaced by "xxxxx".
func redact(rawURL string) string {
	scheme, rest := splitScheme(rawURL)
	if userinfo, ok := authorityUserinfo(rest); ok {
		rest = "xxxxx" + strings.TrimPrefix(rest, userinfo)
	} else if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	return scrub(scheme+rest, rawURL)
}

// scrub replaces in msg every piece of rawURL that may be a password.
func scrub(msg, rawURL string) string {
	for _, secret := range secretsOf(rawURL) {
		msg = strings.ReplaceAll(msg, secret, "xxxxx")
	}
	return msg
}

// secretsOf lists, longest first, the pieces of rawURL that may be a
// password: the user information, whether found in the authority or
// before the last "@" anywhere, each tail of it after a ":", and the
// unescaped forms of all of those.
func secretsOf(rawURL string) []string {
	_, rest := splitScheme(rawURL)
	var chunks []string
	if userinfo, ok := authorityUserinfo(rest); ok {
		chunks = append(chunks, userinfo)
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		chunks = append(chunks, rest[:at])
	}
	var secrets []string
	add := func(s string) {
		if s == "" {
			return
		}
		secrets = append(secrets, s)
		if unescaped, err := url.PathUnescape(s); err == nil && unescaped != s {
			secrets = append(secrets, unescaped)
		}
	}
	for _, chunk := range chunks {
		add(chunk)
		for i := range len(chunk) {
			if chunk[i] == ':' {
				add(chunk[i+1:])
			}
		}
	}
	// Longest first, so a shorter piece never splits a longer one.
	slices.SortFunc(secrets, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(secrets)
}

// splitScheme splits "scheme://rest"; without "://" the scheme is empty.
func splitScheme(rawURL string) (scheme, rest string) {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		return rawURL[:i+3], rawURL[i+3:]
	}
	return "", rawURL
}

// authorityUserinfo returns the text before the last "@" of the authority
// (the text up to the first "/", "?" or "#"), if there is one.
func authorityUserinfo(rest string) (string, bool) {
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", false
	}
	return rest[:at], true
}
