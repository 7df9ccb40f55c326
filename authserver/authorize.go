package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/authserver/clientmeta"
	"github.com/toolgate/toolgate/authserver/store"
)

// pendingRequest is an authorization request waiting for the user to sign
// in and consent. Nothing is stored for it: its id is the request itself,
// sealed with an HMAC (sealPending), so anyone may open /authorize as often
// as they like without growing the store. The decision is made single use
// by recording the id's hash when the signed-in user decides (consent.go).
type pendingRequest struct {
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	// RedirectURISent records whether the request named the redirect URI;
	// if it did, the token request must repeat it (RFC 6749 §4.1.3).
	RedirectURISent bool   `json:"redirect_uri_sent"`
	State           string `json:"state,omitempty"`
	Scope           string `json:"scope,omitempty"`
	CodeChallenge   string `json:"code_challenge"`
	Resource        string `json:"resource"`
	BrowserID       string `json:"browser_id"`
	Expires         int64  `json:"expires"`
	// Nonce makes every sealed request distinct, so deciding one never
	// counts as deciding an identical request opened in the same second.
	Nonce string `json:"nonce"`
}

// authzError is an error to report to the client by redirect (RFC 6749
// §4.1.2.1), once the redirect URI is known to be the client's.
type authzError struct {
	code, desc string
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "Invalid request", "The authorization request is not valid URL query encoding.")
		return
	}
	// Until the client and its redirect URI are known to belong together,
	// nothing may be sent to the redirect URI: that would make this server
	// an open redirector.
	c, redirectURI, msg := s.authorizeTarget(r.Context(), q)
	if msg != "" {
		s.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid", msg)
		return
	}
	state := ""
	if len(q["state"]) == 1 && len(q.Get("state")) <= maxStateLen {
		state = q.Get("state")
	}
	p, aerr := s.checkAuthorizeParams(c, q)
	if aerr == nil && len(q.Get("state")) > maxStateLen {
		aerr = &authzError{"invalid_request", fmt.Sprintf("state is longer than %d bytes", maxStateLen)}
	}
	if aerr != nil {
		if !trustedRedirect(c, redirectURI) {
			// Anyone can register a client, so an error redirect without a
			// user's say would make this server an open redirector to any
			// https site (RFC 9700 §4.11.2): the error is shown instead.
			s.errorPage(w, http.StatusBadRequest, "The application's request was refused", aerr.desc+" ("+aerr.code+")")
			return
		}
		s.redirectError(w, r, redirectURI, state, aerr.code, aerr.desc)
		return
	}
	p.ClientID = c.id
	p.RedirectURI = redirectURI
	p.RedirectURISent = q.Has("redirect_uri")
	p.State = state
	sess := s.browserSession(w, r)
	p.BrowserID = sess.BrowserID
	p.Expires = s.now().Add(pendingTTL).Unix()
	p.Nonce = randomToken(12)

	id, err := s.sealPending(p)
	if err == nil && len(id) > maxPendingID {
		err = fmt.Errorf("sealed request of %d bytes", len(id))
	}
	if err != nil {
		s.log.Error("sealing an authorization request", errField(err))
		s.redirectError(w, r, redirectURI, state, "server_error", "the authorization request could not be saved; try again")
		return
	}
	if sess.User != nil {
		s.renderConsent(w, r, id, sess, p, c)
		return
	}
	s.renderLogin(w, id, sess, "", http.StatusOK)
}

// authorizeTarget resolves the client and the redirect URI. A non-empty
// msg is the reason the request must be answered with an error page.
func (s *Server) authorizeTarget(ctx context.Context, q url.Values) (*client, string, string) {
	if len(q["client_id"]) > 1 || len(q["redirect_uri"]) > 1 {
		return nil, "", "The request names more than one client_id or redirect_uri."
	}
	c, err := s.resolveClient(ctx, q.Get("client_id"))
	if err != nil {
		return nil, "", "The application asking for access could not be identified: " + err.Error() + "."
	}
	if !q.Has("redirect_uri") {
		if len(c.redirectURIs) != 1 {
			return nil, "", "The request has no redirect_uri, and the application has more than one registered."
		}
		return c, c.redirectURIs[0], ""
	}
	uri := q.Get("redirect_uri")
	if !c.allowsRedirect(uri) {
		return nil, "", "The redirect_uri is not registered for this application."
	}
	return c, uri, ""
}

// checkAuthorizeParams checks everything after the client and redirect URI;
// errors are reported to the client by redirect.
func (s *Server) checkAuthorizeParams(c *client, q url.Values) (*pendingRequest, *authzError) {
	// Several resource parameters are a request for several audiences,
	// which toolgate never grants (RFC 8707 §2).
	if len(q["resource"]) > 1 {
		return nil, &authzError{"invalid_target", "only one resource may be requested"}
	}
	if name := duplicated(q); name != "" {
		return nil, &authzError{"invalid_request", fmt.Sprintf("parameter %q is sent more than once", name)}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return nil, &authzError{"invalid_request", "response_type is missing; use code"}
	case rt != "code":
		return nil, &authzError{"unsupported_response_type", "only response_type=code is supported"}
	}
	if !c.allowsGrant(grantAuthorizationCode) {
		return nil, &authzError{"unauthorized_client", "the client is not registered for the authorization_code grant"}
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		return nil, &authzError{"invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"}
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		return nil, &authzError{"invalid_request", "code_challenge_method must be S256"}
	}
	if !validChallenge(challenge) {
		return nil, &authzError{"invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the code verifier"}
	}
	resource := q.Get("resource")
	if !q.Has("resource") {
		// Clients that predate RFC 8707 send no resource; the token can
		// only ever be for our one resource, so that is what they get.
		resource = s.opt.Resource
	}
	if !s.sameResource(resource) {
		return nil, &authzError{"invalid_target", "the requested resource is not served by this authorization server"}
	}
	scope, err := s.grantScope(q.Get("scope"))
	if err != nil {
		return nil, &authzError{"invalid_scope", err.Error()}
	}
	return &pendingRequest{Scope: scope, CodeChallenge: challenge, Resource: s.opt.Resource}, nil
}

// grantScope returns the scope to grant for a requested scope string: the
// default scopes plus the supported scopes among those asked for. Unknown scopes are dropped, not refused (RFC 6749
// §3.3 lets the server grant less than asked, and the token response says
// what was granted): clients send their own habits, such as "openid
// profile" or a product-specific scope, and refusing those would lock them
// out for a word this server does not use. Malformed scope tokens are
// still refused.
func (s *Server) grantScope(requested string) (string, error) {
	// REQUIRED_SCOPES are always granted: every request needs them, and a
	// client stepping up asks for exactly the tool's scopes.
	granted := append([]string(nil), s.opt.DefaultScopes...)
	for _, sc := range dedupe(strings.Fields(requested)) {
		if !validScopeToken(sc) {
			return "", fmt.Errorf("scope %q is not a valid scope token (RFC 6749 §3.3)", truncate(sc, 64))
		}
		if slices.Contains(s.opt.ScopesSupported, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	return strings.Join(granted, " "), nil
}

// sameResource compares a client's resource indicator with Resource
// exactly, except that an origin-only resource also matches with a
// trailing slash: clients that pass the URL through a URL parser send
// "https://host/" for "https://host", and both name the same resource.
func (s *Server) sameResource(r string) bool {
	return r == s.opt.Resource || (r == s.opt.Resource+"/" && !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(s.opt.Resource, "https://"), "http://"), "/"))
}

// trustedRedirect reports whether an error may be sent to redirectURI
// before the user has seen anything: when an administrator registered the
// client, or when the redirect stays on the user's own machine (a loopback
// address, where native MCP clients listen).
func trustedRedirect(c *client, redirectURI string) bool {
	if c.kind == kindPreRegistered {
		return true
	}
	u, err := url.Parse(redirectURI)
	return err == nil && u.Scheme == "http" && clientmeta.IsLoopbackHost(u.Hostname())
}

// validChallenge: an S256 challenge is base64url(sha256), 43 characters.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := range len(c) {
		if !isBase64URL(c[i]) {
			return false
		}
	}
	return true
}

func isBase64URL(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// validScopeToken follows RFC 6749 §3.3: printable ASCII except space,
// '"' and '\'.
func validScopeToken(sc string) bool {
	if sc == "" {
		return false
	}
	for i := range len(sc) {
		b := sc[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// redirectError sends an RFC 6749 §4.1.2.1 error to the client.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}}
	if state != "" {
		v.Set("state", state)
	}
	s.redirect(w, r, redirectURI, v)
}

// redirect sends the browser to redirectURI with params merged into its
// query, plus iss (RFC 9207) so the client can tell which server answered.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs were validated, so this cannot happen; never
		// guess a destination.
		s.errorPage(w, http.StatusInternalServerError, "Something went wrong", "The application's redirect URI could not be used.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	q.Set("iss", s.opt.Issuer)
	u.RawQuery = q.Encode()
	securityHeaders(w.Header(), "")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// errExpired means the pending request is gone: used, or timed out.
var errExpired = errors.New("this sign-in request has expired or was already used")

// loadPending returns the pending request id, if it belongs to the browser
// of sess.
func (s *Server) loadPending(_ context.Context, id string, sess *session) (*pendingRequest, error) {
	payloadText, macText, ok := strings.Cut(id, ".")
	if !ok || len(id) > maxPendingID {
		return nil, errExpired
	}
	mac, err := base64.RawURLEncoding.DecodeString(macText)
	if err != nil || !hmac.Equal(mac, s.pendingMAC(payloadText)) {
		return nil, errExpired
	}
	payload, err := base64.RawURLEncoding.DecodeString(payloadText)
	if err != nil {
		return nil, errExpired
	}
	var p pendingRequest
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, errExpired
	}
	if s.now().Unix() >= p.Expires {
		return nil, errExpired
	}
	if p.BrowserID != sess.BrowserID {
		return nil, errForbidden
	}
	return &p, nil
}

// maxStateLen bounds the client's state, which is echoed in redirects and
// sealed into the pending request.
const maxStateLen = 1024

// maxPendingID bounds a sealed request: the client's state, scope and
// redirect URI are inside, each already bounded by the URL's size.
const maxPendingID = 16 << 10

// sealPending turns p into its id: base64url(JSON) "." base64url(HMAC).
// The contents are the client's own parameters and the browser id, which
// the browser already holds; the MAC is what makes them trustworthy.
func (s *Server) sealPending(p *pendingRequest) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.pendingMAC(payload)), nil
}

func (s *Server) pendingMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.keys.pending)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// putJSON creates key with v as JSON, expiring after ttl.
func (s *Server) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.opt.Store.Create(ctx, key, b, s.now().Add(ttl))
}

// getJSON reads key into v; a missing key is errExpired.
func (s *Server) getJSON(ctx context.Context, key string, v any) error {
	b, err := s.opt.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return errExpired
	}
	if err != nil {
		return fmt.Errorf("reading the store: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		kind, _, _ := strings.Cut(key, ":")
		return fmt.Errorf("a stored %s entry is corrupt: %w", kind, err)
	}
	return nil
}
