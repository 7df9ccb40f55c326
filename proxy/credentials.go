package proxy

import (
	"net/http"
	"strings"
)

// bearerToken returns the token of the request's single Authorization
// header. It returns "" and no denial when the request carries no
// credentials at all, and a 400 invalid_request denial when it carries
// them in a way RFC 6750 forbids: several headers, a token in the query
// string (§2.3 is never acceptable here), or a malformed header.
func bearerToken(r *http.Request) (string, *denial) {
	if strings.Contains(r.URL.RawQuery, "access_token") && r.URL.Query().Has("access_token") {
		return "", &denial{status: http.StatusBadRequest, code: errInvalidRequest,
			desc: "access tokens are accepted only in the Authorization header, never in the URL"}
	}
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &denial{status: http.StatusBadRequest, code: errInvalidRequest,
			desc: "send exactly one Authorization header"}
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme carries no bearer credentials: the client should
		// start the OAuth flow, so this is answered like a missing token.
		return "", &denial{status: http.StatusUnauthorized,
			desc: "use the Bearer authentication scheme"}
	}
	token = strings.TrimLeft(token, " ")
	if !isB64Token(token) {
		return "", &denial{status: http.StatusBadRequest, code: errInvalidRequest,
			desc: "the Authorization header is not a well-formed Bearer token"}
	}
	return token, nil
}

// isB64Token checks the RFC 6750 §2.1 b64token syntax:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
