package authserver

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/toolgate/toolgate/authserver/idp"
)

// maxUsernameLen keeps absurd input out of the rate limiter's keys.
const maxUsernameLen = 256

// handleLogin signs a local user in with username and password.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	form, sess, id, p, ok := s.pagePost(w, r)
	if !ok {
		return
	}
	if len(s.opt.Users) == 0 {
		s.errorPage(w, http.StatusBadRequest, "Password sign-in is off", "This server does not sign users in with a password.")
		return
	}
	name, password := form.Get("username"), form.Get("password")
	if wait, ok := s.loginAllowed(r, name); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		s.errorPage(w, http.StatusTooManyRequests, "Too many sign-in attempts", fmt.Sprintf("Wait %d seconds, then start again from the application.", wait))
		return
	}
	if !s.checkPassword(name, password) {
		s.loginFailed(r, name)
		s.log.Info("local sign-in failed", zapString("ip", s.clientIP(r)))
		s.renderLogin(w, id, sess, "Wrong username or password.", http.StatusUnauthorized)
		return
	}
	sess.User = &user{Sub: name, Username: name, AuthTime: s.now().Unix(), Local: true}
	s.writeSession(w, sess)
	s.log.Info("local sign-in", zapString("sub", name))
	c, err := s.resolveClient(r.Context(), p.ClientID)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid", err.Error())
		return
	}
	s.renderConsent(w, r, id, sess, p, c)
}

// loginAllowed applies the per-IP and per-username limits on password
// attempts; when refused it says how many seconds to wait. Only failed
// attempts fill the limits (loginFailed): behind a load balancer every
// user shares one address, and their successful sign-ins must not lock
// each other out.
func (s *Server) loginAllowed(r *http.Request, name string) (int, bool) {
	now := s.now()
	blocked, wait := s.loginIPLimit.blocked(s.clientIP(r), now)
	if !blocked {
		blocked, wait = s.loginUsrLimit.blocked(truncate(name, maxUsernameLen), now)
	}
	if !blocked {
		return 0, true
	}
	return max(int(math.Ceil(wait.Seconds())), 1), false
}

// loginFailed counts a failed attempt against the address and the name.
func (s *Server) loginFailed(r *http.Request, name string) {
	now := s.now()
	s.loginIPLimit.allow(s.clientIP(r), now)
	s.loginUsrLimit.allow(truncate(name, maxUsernameLen), now)
}

// checkPassword compares in bcrypt time whether or not the user exists, so
// response timing does not reveal which usernames are configured.
func (s *Server) checkPassword(name, password string) bool {
	hash, known := s.opt.Users[name]
	if !known || len(name) > maxUsernameLen {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// idpState is an upstream sign-in in progress. It travels in the browser's
// own cookie, encrypted (idpcookie.go), so starting a sign-in writes nothing
// to the store: anyone can start as many as they like.
type idpState struct {
	RequestID string   `json:"request_id"`
	BrowserID string   `json:"browser_id"`
	Flow      idp.Flow `json:"flow"`
	Expires   int64    `json:"expires"`
}

// handleSwitchUser signs the browser out and shows the sign-in page for
// the same pending request: "Not you?" on the consent page, for shared
// computers and second accounts.
func (s *Server) handleSwitchUser(w http.ResponseWriter, r *http.Request) {
	_, sess, id, _, ok := s.pagePost(w, r)
	if !ok {
		return
	}
	sess.User = nil
	s.writeSession(w, sess)
	s.renderLogin(w, id, sess, "", http.StatusOK)
}

// pagePost is the start of every form POST of the sign-in pages: the
// CSRF-checked form, the browser's session, and the pending request the
// form is about. When ok is false the error page has been written.
func (s *Server) pagePost(w http.ResponseWriter, r *http.Request) (form url.Values, sess *session, id string, p *pendingRequest, ok bool) {
	form, sess, err := s.checkFormPost(w, r)
	if err != nil {
		s.forbidden(w, err)
		return nil, nil, "", nil, false
	}
	id = form.Get("request_id")
	if p, err = s.loadPending(r.Context(), id, sess); err != nil {
		s.pendingError(w, err)
		return nil, nil, "", nil, false
	}
	return form, sess, id, p, true
}

// handleIDPStart sends the browser to the upstream provider.
func (s *Server) handleIDPStart(w http.ResponseWriter, r *http.Request) {
	_, sess, id, _, ok := s.pagePost(w, r)
	if !ok {
		return
	}
	if s.opt.Provider == nil {
		s.errorPage(w, http.StatusBadRequest, "No identity provider", "This server does not sign users in with an identity provider.")
		return
	}
	flow := idp.NewFlow()
	st := idpState{RequestID: id, BrowserID: sess.BrowserID, Flow: flow, Expires: s.now().Add(idpStateTTL).Unix()}
	if err := s.writeIDPCookie(w, &st); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Sign-in request too large", "The application's sign-in request is too large to continue with "+s.opt.Provider.Name()+".")
		return
	}
	target, err := s.opt.Provider.AuthCodeURL(r.Context(), flow)
	if err != nil {
		s.log.Error("building the identity provider's sign-in URL", errField(err))
		s.errorPage(w, http.StatusBadGateway, "Sign-in unavailable", fmt.Sprintf("Sign-in with %s is not available right now.", s.opt.Provider.Name()))
		return
	}
	securityHeaders(w.Header(), "")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handleIDPCallback finishes an upstream sign-in and shows the consent page.
func (s *Server) handleIDPCallback(w http.ResponseWriter, r *http.Request) {
	if s.opt.Provider == nil {
		s.errorPage(w, http.StatusNotFound, "Not found", "This server does not sign users in with an identity provider.")
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 200 {
		s.errorPage(w, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer carries no valid state. Start again from the application.")
		return
	}
	st, err := s.takeIDPCookie(w, r, state)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or was already used. Start again from the application.")
		return
	}
	sess := s.readSession(r)
	if sess == nil || sess.BrowserID != st.BrowserID {
		s.forbidden(w, errors.New("upstream sign-in finished in another browser"))
		return
	}
	name := s.opt.Provider.Name()
	if e := q.Get("error"); e != "" {
		s.errorPage(w, http.StatusForbidden, "Sign-in not completed", fmt.Sprintf("%s did not complete the sign-in (%s). Start again from the application.", name, truncate(e, 64)))
		return
	}
	ident, err := s.opt.Provider.Exchange(r.Context(), q.Get("code"), st.Flow)
	if errors.Is(err, idp.ErrDenied) {
		s.log.Info("upstream sign-in denied", errField(err))
		msg := strings.TrimPrefix(err.Error(), "idp: ")
		s.errorPage(w, http.StatusForbidden, "Access denied", upperFirst(msg)+".")
		return
	}
	if err != nil || ident == nil || ident.Subject == "" {
		s.log.Warn("upstream sign-in failed", errField(err))
		s.errorPage(w, http.StatusBadGateway, "Sign-in failed", fmt.Sprintf("Signing in with %s failed. Start again from the application.", name))
		return
	}
	sess.User = &user{Sub: ident.Subject, Email: ident.Email, Name: ident.Name, Username: ident.Username, AuthTime: s.now().Unix()}
	s.writeSession(w, sess)
	s.log.Info("upstream sign-in", zapString("sub", ident.Subject), zapString("provider", name))
	p, err := s.loadPending(r.Context(), st.RequestID, sess)
	if err != nil {
		s.pendingError(w, err)
		return
	}
	c, err := s.resolveClient(r.Context(), p.ClientID)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid", err.Error())
		return
	}
	s.renderConsent(w, r, st.RequestID, sess, p, c)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
