package authserver

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/toolgate/toolgate/authserver/store"
)

// handleRevoke implements RFC 7009. A refresh token's whole family is
// deleted, so neither it nor any token rotated from it works again.
//
// Access tokens are not tracked: they are short-lived JWTs verified without
// a lookup, and revoking the refresh family stops their renewal. Revoking
// one is therefore answered 200 with nothing to do, like an unknown token
// (§2.2). token_type_hint is ignored; the token's shape says what it is.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, errInvalidRequest("token is missing"))
		return
	}
	if id, _, ok := parseRefreshToken(token); ok {
		if err := s.revokeRefresh(r, c, "family:"+id); err != nil {
			// The client must learn the token may still work (§2.2.1).
			s.log.Error("revoking a refresh token family", errField(err))
			w.Header().Set("Retry-After", "5")
			writeOAuthError(w, &oauthError{Code: "temporarily_unavailable", Description: "the token could not be revoked; try again", status: http.StatusServiceUnavailable})
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// revokeRefresh deletes a family if it belongs to the client. The secret
// is not compared: a current token and an already-rotated one both end
// the family, the latter exactly as reuse detection would.
func (s *Server) revokeRefresh(r *http.Request, c *client, key string) error {
	b, err := s.opt.Store.Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var f family
	if json.Unmarshal(b, &f) != nil || f.ClientID != c.id {
		return nil
	}
	if err := s.opt.Store.Delete(r.Context(), key); err != nil {
		return err
	}
	s.log.Info("refresh token revoked", clientIDField(c.id), zapString("sub", f.User.Sub))
	return nil
}
