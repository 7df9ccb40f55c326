package authserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// user is who signed in, as carried by the session and bound into codes,
// refresh families and access tokens.
type user struct {
	Sub      string `json:"sub"`
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
	AuthTime int64  `json:"auth_time"`
	// Local is true for a user of Options.Users: refreshing their tokens
	// checks they are still configured.
	Local bool `json:"local,omitempty"`
}

// displayName is how the consent page names the signed-in user.
func (u *user) displayName() string {
	for _, v := range []string{u.Email, u.Name, u.Username} {
		if v != "" {
			return v
		}
	}
	return u.Sub
}

// session is the browser's signed cookie. BrowserID ties pending requests,
// upstream sign-ins and form tokens to this browser; User is set once the
// user has signed in.
type session struct {
	BrowserID string `json:"b"`
	User      *user  `json:"u,omitempty"`
	Expires   int64  `json:"e"`
}

// readSession returns the browser's session, or nil when the cookie is
// missing, forged or expired.
func (s *Server) readSession(r *http.Request) *session {
	c, err := r.Cookie(s.cookieKey)
	if err != nil {
		return nil
	}
	payloadText, macText, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil
	}
	mac, err := base64.RawURLEncoding.DecodeString(macText)
	if err != nil || !hmac.Equal(mac, s.sessionMAC(payloadText)) {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(payloadText)
	if err != nil {
		return nil
	}
	var sess session
	if json.Unmarshal(payload, &sess) != nil || sess.BrowserID == "" || s.now().Unix() >= sess.Expires {
		return nil
	}
	return &sess
}

func (s *Server) sessionMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.keys.session)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// writeSession sets the signed cookie, valid for sessionTTL from now.
func (s *Server) writeSession(w http.ResponseWriter, sess *session) {
	sess.Expires = s.now().Add(sessionTTL).Unix()
	payload, _ := json.Marshal(sess) // plain strings and ints cannot fail
	text := base64.RawURLEncoding.EncodeToString(payload)
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieKey,
		Value:    text + "." + base64.RawURLEncoding.EncodeToString(s.sessionMAC(text)),
		Path:     "/",
		MaxAge:   int(sessionTTL.Seconds()),
		Secure:   strings.HasPrefix(s.cookieKey, "__Host-"),
		HttpOnly: true,
		// Lax: the cookie comes along on the top-level navigation back
		// from the upstream provider, never on cross-site POSTs.
		SameSite: http.SameSiteLaxMode,
	})
}

// browserSession returns the browser's session, starting a new one (with a
// fresh browser id) when there is none.
func (s *Server) browserSession(w http.ResponseWriter, r *http.Request) *session {
	if sess := s.readSession(r); sess != nil {
		return sess
	}
	sess := &session{BrowserID: randomToken(16)}
	s.writeSession(w, sess)
	return sess
}

// csrfToken binds a form to one pending request and one browser.
func (s *Server) csrfToken(requestID, browserID string) string {
	m := hmac.New(sha256.New, s.keys.csrf)
	m.Write([]byte(requestID))
	m.Write([]byte{0})
	m.Write([]byte(browserID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errForbidden is why a form POST is refused; the page says so in general
// terms.
var errForbidden = errors.New("this form was not sent from this browser's sign-in page")

// checkFormPost verifies that a sign-in or consent form came from a page
// this server rendered for this browser: same-origin by the browser's own
// account (Origin, Sec-Fetch-Site), the session cookie present, and the
// form token matching the request id and the cookie's browser id.
func (s *Server) checkFormPost(w http.ResponseWriter, r *http.Request) (url.Values, *session, error) {
	// Our pages send Referrer-Policy: no-referrer, under which browsers
	// send "Origin: null" on form POSTs; null is therefore accepted, and
	// Sec-Fetch-Site and the form token carry the check.
	if o := r.Header.Get("Origin"); o != "" && o != s.opt.Issuer && o != "null" {
		return nil, nil, fmt.Errorf("origin %q is not this server", o)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return nil, nil, fmt.Errorf("Sec-Fetch-Site is %q", site)
	}
	form, err := readForm(w, r, maxPageForm)
	if err != nil {
		return nil, nil, err
	}
	sess := s.readSession(r)
	if sess == nil {
		return nil, nil, errors.New("no session cookie")
	}
	want := s.csrfToken(form.Get("request_id"), sess.BrowserID)
	if !hmac.Equal([]byte(form.Get("csrf_token")), []byte(want)) {
		return nil, nil, errors.New("form token does not match")
	}
	return form, sess, nil
}

// Body limits of form posts.
const (
	maxPageForm  = 16 << 10
	maxTokenForm = 64 << 10
)

// readForm reads an application/x-www-form-urlencoded body of at most
// limit bytes. Parameters in the URL query are not looked at, and a
// parameter sent twice is an error: which copy counts is ambiguous.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("the body is larger than %d bytes or could not be read", limit)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("the body is not valid form encoding")
	}
	if name := duplicated(form); name != "" {
		return nil, fmt.Errorf("parameter %q is sent more than once", name)
	}
	return form, nil
}

// duplicated returns the name of a parameter present more than once.
func duplicated(v url.Values) string {
	for k, vs := range v {
		if len(vs) > 1 {
			return k
		}
	}
	return ""
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
