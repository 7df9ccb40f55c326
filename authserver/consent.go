package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/toolgate/toolgate/authserver/store"
)

// codeRecord is what an authorization code stands for, stored as
// "code:<sha256 hex of the code>" for codeTTL.
type codeRecord struct {
	ClientID        string `json:"client_id"`
	RedirectURI     string `json:"redirect_uri"`
	RedirectURISent bool   `json:"redirect_uri_sent"`
	CodeChallenge   string `json:"code_challenge"`
	Resource        string `json:"resource"`
	Scope           string `json:"scope,omitempty"`
	User            user   `json:"user"`
	Expires         int64  `json:"expires"`
}

// handleConsent records the user's decision on a pending request.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	form, sess, id, p, ok := s.pagePost(w, r)
	if !ok {
		return
	}
	if sess.User == nil {
		s.forbidden(w, errors.New("consent without a signed-in user"))
		return
	}
	// Recording the decision makes it single use: a second POST (double
	// click, replay) finds it recorded. Only a signed-in user's decision
	// writes to the store, never an anonymous /authorize.
	err := s.opt.Store.Create(r.Context(), "decided:"+hashHex(id), nil, time.Unix(p.Expires, 0))
	if errors.Is(err, store.ErrExists) {
		s.pendingError(w, errExpired)
		return
	}
	if err != nil {
		s.log.Error("recording a consent decision", errField(err))
		s.errorPage(w, http.StatusServiceUnavailable, "Try again", "The decision could not be recorded. Start again from the application.")
		return
	}
	switch form.Get("decision") {
	case "approve":
		s.approve(w, r, p, sess.User)
	case "deny":
		s.log.Info("consent denied", clientIDField(p.ClientID), zapString("sub", sess.User.Sub))
		s.redirectError(w, r, p.RedirectURI, p.State, "access_denied", "the user denied the request")
	default:
		s.errorPage(w, http.StatusBadRequest, "Invalid request", "The form carried no decision. Start again from the application.")
	}
}

// approve issues an authorization code and sends it to the client.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, p *pendingRequest, u *user) {
	code := randomToken(32)
	rec := codeRecord{
		ClientID:        p.ClientID,
		RedirectURI:     p.RedirectURI,
		RedirectURISent: p.RedirectURISent,
		CodeChallenge:   p.CodeChallenge,
		Resource:        p.Resource,
		Scope:           p.Scope,
		User:            *u,
		Expires:         s.now().Add(codeTTL).Unix(),
	}
	if err := s.putJSON(r.Context(), "code:"+hashHex(code), rec, codeTTL); err != nil {
		s.log.Error("storing an authorization code", errField(err))
		s.redirectError(w, r, p.RedirectURI, p.State, "server_error", "the authorization code could not be saved; try again")
		return
	}
	s.log.Info("consent approved", clientIDField(p.ClientID), zapString("sub", u.Sub), zapString("scope", p.Scope))
	v := url.Values{"code": {code}}
	if p.State != "" {
		v.Set("state", p.State)
	}
	s.redirect(w, r, p.RedirectURI, v)
}

// pendingError answers a form post whose pending request is unusable.
func (s *Server) pendingError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errForbidden):
		s.forbidden(w, err)
	case errors.Is(err, errExpired):
		s.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in request has expired or was already used. Start again from the application.")
	default:
		s.log.Error("loading an authorization request", errField(err))
		s.errorPage(w, http.StatusServiceUnavailable, "Try again", "The sign-in request could not be loaded. Try again in a moment.")
	}
}

// forbidden answers a form post that fails the same-browser checks.
func (s *Server) forbidden(w http.ResponseWriter, err error) {
	s.log.Info("form post refused", errField(err))
	s.errorPage(w, http.StatusForbidden, "Request refused", "This request did not come from the sign-in page in this browser. Start again from the application.")
}
