package clientmeta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// maxClientNameRunes caps the name shown on the consent page.
const maxClientNameRunes = 100

// parseDocument decodes body and checks it against the rules for client ID
// metadata documents. clientID is the URL the body was fetched from.
func parseDocument(body []byte, clientID string) (*Document, error) {
	if !isJSONObject(body) {
		return nil, newError("the client metadata document is not a JSON object", nil)
	}
	var doc Document
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, newError("the client metadata document is not valid JSON or has a field of the wrong type", err)
	}
	// Byte-for-byte: the document vouches only for the exact URL it lives at.
	if doc.ClientID != clientID {
		return nil, newError(fmt.Sprintf("the client metadata document's client_id %q does not equal the URL it was fetched from", truncate(doc.ClientID, 200)), nil)
	}
	for _, check := range []func(*Document) error{
		checkRedirectURIs,
		checkAuthMethod,
		checkGrantTypes,
		checkResponseTypes,
		checkScope,
	} {
		if err := check(&doc); err != nil {
			return nil, err
		}
	}
	if doc.TokenEndpointAuthMethod != authPrivateKeyJWT {
		// Keys a public client lists are never used; dropping them keeps
		// anything downstream from trusting a set nobody checked.
		doc.JWKS, doc.JWKSURI = nil, ""
	}
	doc.ClientName = CleanName(doc.ClientName)
	doc.ClientURI = httpsOrEmpty(doc.ClientURI)
	doc.LogoURI = httpsOrEmpty(doc.LogoURI)
	return &doc, nil
}

func checkRedirectURIs(doc *Document) error {
	if len(doc.RedirectURIs) == 0 {
		return newError("the client metadata document has no redirect_uris", nil)
	}
	for _, uri := range doc.RedirectURIs {
		if problem := RedirectURIProblem(uri); problem != "" {
			return newError(fmt.Sprintf("the client metadata document's redirect URI %q %s", truncate(uri, 200), problem), nil)
		}
	}
	return nil
}

// RedirectURIProblem says what keeps uri from being an acceptable redirect
// URI, or "" when it is one: an absolute https URI, or http on a loopback
// host for native apps (RFC 8252 §7.3), without fragment or user info. The
// authorization server applies the same rule to every kind of client.
func RedirectURIProblem(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil || hasSpaceOrControl(uri):
		return "is not a valid URI"
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "is not an absolute URI"
	case strings.Contains(uri, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not contain user info"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return ""
	default:
		return "must use https (http only for 127.0.0.1, [::1] or localhost)"
	}
}

// authPrivateKeyJWT is the one authentication method a document can use
// besides "none": its keys are public, so the document may carry them.
const authPrivateKeyJWT = "private_key_jwt"

// checkAuthMethod allows "none" (or nothing) and private_key_jwt with keys.
// jwks and jwks_uri are ignored, unchecked, for "none": a document may list
// keys for other uses, and a public client is never asked for a signature.
func checkAuthMethod(doc *Document) error {
	switch doc.TokenEndpointAuthMethod {
	case "", "none":
		return nil
	case "client_secret_basic", "client_secret_post", "client_secret_jwt":
		return newError(fmt.Sprintf("token_endpoint_auth_method %q is not allowed in a client metadata document: there is no way to share a secret; use \"none\" or \"private_key_jwt\"", doc.TokenEndpointAuthMethod), nil)
	case authPrivateKeyJWT:
		return checkKeys(doc)
	default:
		return newError(fmt.Sprintf("token_endpoint_auth_method %q is not supported; use \"none\" or \"private_key_jwt\"", truncate(doc.TokenEndpointAuthMethod, 100)), nil)
	}
}

// checkKeys requires exactly one of jwks and jwks_uri (RFC 7591 §2 forbids
// both: two sources of keys could disagree). A jwks_uri is held to the
// client_id URL rules, and is fetched with the same safeguards.
func checkKeys(doc *Document) error {
	if bytes.Equal(bytes.TrimSpace(doc.JWKS), []byte("null")) {
		doc.JWKS = nil
	}
	hasSet, hasURI := len(doc.JWKS) > 0, doc.JWKSURI != ""
	switch {
	case hasSet && hasURI:
		return newError("the client metadata document has both jwks and jwks_uri; use one", nil)
	case !hasSet && !hasURI:
		return newError("token_endpoint_auth_method \"private_key_jwt\" needs the client's public keys in jwks or jwks_uri", nil)
	case hasURI && !IsURL(doc.JWKSURI):
		return newError(fmt.Sprintf("the client metadata document's jwks_uri %q must be an https URL with a path, without fragment, user info or dot segments", truncate(doc.JWKSURI, 200)), nil)
	case hasSet:
		if problem := jwksShapeProblem(doc.JWKS); problem != "" {
			return newError("the client metadata document's jwks "+problem, nil)
		}
	}
	return nil
}

func checkGrantTypes(doc *Document) error {
	for _, g := range doc.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return newError(fmt.Sprintf("grant type %q is not supported; only authorization_code and refresh_token are", truncate(g, 100)), nil)
		}
	}
	return nil
}

func checkResponseTypes(doc *Document) error {
	for _, r := range doc.ResponseTypes {
		if r != "code" {
			return newError(fmt.Sprintf("response type %q is not supported; only code is", truncate(r, 100)), nil)
		}
	}
	return nil
}

// checkScope requires the RFC 6749 §3.3 syntax: space-separated tokens of
// printable ASCII other than '"' and '\'.
func checkScope(doc *Document) error {
	for _, r := range doc.Scope {
		if r != ' ' && (r < 0x21 || r > 0x7e || r == '"' || r == '\\') {
			return newError("the client metadata document's scope contains characters not allowed in OAuth scopes", nil)
		}
	}
	return nil
}

// CleanName makes a client's self-declared name fit for the consent page:
// no control or format characters (bidirectional overrides among them,
// which can make a name display as something else) and no replacement
// characters, trimmed, and at most 100 runes. It is still untrusted text
// and must be HTML-escaped when shown. Every kind of client's name goes
// through it.
func CleanName(name string) string {
	var b strings.Builder
	runes := 0
	for _, r := range strings.TrimSpace(name) {
		if unicode.IsControl(r) || isBidiControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			continue
		}
		if runes == maxClientNameRunes {
			break
		}
		b.WriteRune(r)
		runes++
	}
	return strings.TrimSpace(b.String())
}

func isBidiControl(r rune) bool {
	return r == '\u200e' || r == '\u200f' || r == '\u061c' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// httpsOrEmpty keeps u only if it is an absolute https URL. client_uri and
// logo_uri are cosmetic, so a bad one is dropped rather than failing the
// client; it is never passed on (a "javascript:" link on the consent page
// would be script injection).
func httpsOrEmpty(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme != "https" || parsed.Host == "" || parsed.User != nil || hasSpaceOrControl(u) {
		return ""
	}
	return u
}
