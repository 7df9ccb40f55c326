package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/authserver/store"
)

// family is one chain of rotated refresh tokens, stored as "family:<id>".
// Token number Gen is the valid one. Its secret is not stored: it is an
// HMAC of the family id and Gen (refreshSecret), so the store holds nothing
// that works as a token, and a retried refresh can be answered with the
// very token the first attempt got (see retryGrace). Presenting any other
// secret means the chain leaked, and the whole family is deleted.
type family struct {
	Gen int `json:"gen"`
	// RotatedAt is when Gen became current.
	RotatedAt int64  `json:"rotated_at"`
	ClientID  string `json:"client_id"`
	User      user   `json:"user"`
	Scope     string `json:"scope,omitempty"`
	Resource  string `json:"resource"`
	AuthTime  int64  `json:"auth_time"`
	Expires   int64  `json:"expires"`
}

// maxSignInAge is how long one sign-in can be kept alive by refreshing.
const maxSignInAge = 90 * 24 * time.Hour

// errRefreshInvalid is the one answer for every unusable refresh token, so
// the answer does not tell an attacker which part was wrong.
func errRefreshInvalid() *oauthError {
	return errInvalidGrant("the refresh token is invalid, expired or revoked")
}

// newFamily starts a family and returns its first refresh token.
func (s *Server) newFamily(ctx context.Context, id string, c *client, u user, scope, resource string) (string, error) {
	expires := s.now().Add(s.opt.RefreshTokenTTL)
	f := family{
		Gen:       1,
		RotatedAt: s.now().Unix(),
		ClientID:  c.id,
		User:      u,
		Scope:     scope,
		Resource:  resource,
		AuthTime:  u.AuthTime,
		Expires:   expires.Unix(),
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	if err := s.opt.Store.Create(ctx, "family:"+id, b, expires); err != nil {
		return "", err
	}
	return s.refreshToken(id, 1), nil
}

// retryGrace is how long the refresh token just replaced still gets an
// answer: the same new tokens, with no rotation. Clients refresh from
// several requests at once (a POST and a reconnecting GET stream, each
// seeing the same expired token) or retry after a lost response; without
// the grace, the second attempt would look like theft and sign the user
// out. An older token, or the previous one after the grace, is reuse.
const retryGrace = 30 * time.Second

// refreshToken is token number gen of family id: "<id>.<secret>".
func (s *Server) refreshToken(id string, gen int) string {
	return id + "." + s.refreshSecret(id, gen)
}

func (s *Server) refreshSecret(id string, gen int) string {
	m := hmac.New(sha256.New, s.keys.refresh)
	fmt.Fprintf(m, "%s.%d", id, gen)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// rotateRefresh redeems a refresh token (RFC 6749 §6) for a new access
// token and a new refresh token, extending the family's life.
func (s *Server) rotateRefresh(ctx context.Context, c *client, form url.Values) (*tokenResponse, *oauthError) {
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	id, secret, ok := parseRefreshToken(raw)
	if !ok {
		return nil, errRefreshInvalid()
	}
	key := "family:" + id
	old, err := s.opt.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRefreshInvalid()
	}
	if err != nil {
		s.log.Error("reading a refresh token family", errField(err))
		return nil, errServer("the refresh token could not be checked")
	}
	var f family
	if err := json.Unmarshal(old, &f); err != nil {
		s.log.Error("a stored refresh token family is corrupt", errField(err))
		return nil, errRefreshInvalid()
	}
	now := s.now()
	if now.Unix() >= f.Expires {
		_ = s.opt.Store.Delete(ctx, key)
		return nil, errRefreshInvalid()
	}
	current := hmac.Equal([]byte(secret), []byte(s.refreshSecret(id, f.Gen)))
	retry := !current && f.Gen > 1 && now.Unix()-f.RotatedAt <= int64(retryGrace.Seconds()) &&
		hmac.Equal([]byte(secret), []byte(s.refreshSecret(id, f.Gen-1)))
	if !current && !retry {
		s.revokeFamily(ctx, key, "refresh token reused; its family is revoked", c)
		return nil, errRefreshInvalid()
	}
	if f.ClientID != c.id {
		return nil, errInvalidGrant("the refresh token was issued to another client")
	}
	if now.Unix() >= f.AuthTime+int64(maxSignInAge.Seconds()) {
		// However often it is refreshed, a sign-in ends: signing in again
		// re-applies the provider's allowlists and any changed password.
		_ = s.opt.Store.Delete(ctx, key)
		return nil, errInvalidGrant("the sign-in behind this refresh token is older than 90 days; sign in again")
	}
	if _, ok := s.opt.Users[f.User.Sub]; f.User.Local && !ok {
		_ = s.opt.Store.Delete(ctx, key)
		s.log.Info("refresh refused: local user removed", zapString("sub", f.User.Sub))
		return nil, errRefreshInvalid()
	}
	scope, oerr := s.narrowScope(f.Scope, form)
	if oerr != nil {
		return nil, oerr
	}
	if form.Has("resource") && !s.sameResource(form.Get("resource")) {
		return nil, &oauthError{Code: "invalid_target", Description: "resource differs from the one the refresh token was issued for"}
	}

	gen := f.Gen
	if current {
		var oerr *oauthError
		if gen, oerr = s.advance(ctx, key, old, f, now, c); oerr != nil {
			return nil, oerr
		}
	}
	resp := &tokenResponse{RefreshToken: s.refreshToken(id, gen)}
	if oerr := s.fillAccessToken(resp, c, f.User, scope, f.Resource); oerr != nil {
		return nil, oerr
	}
	return resp, nil
}

// advance makes token number f.Gen+1 current and returns its number. Of
// concurrent rotations of one token exactly one swaps; the others find the
// next number already current and, being within the grace, get the same
// token as the winner.
func (s *Server) advance(ctx context.Context, key string, old []byte, f family, now time.Time, c *client) (int, *oauthError) {
	expires := now.Add(s.opt.RefreshTokenTTL)
	f.Gen++
	f.RotatedAt = now.Unix()
	f.Expires = expires.Unix()
	next, err := json.Marshal(f)
	if err != nil {
		return 0, errServer("the refresh token could not be rotated")
	}
	swapped, err := s.opt.Store.CompareAndSwap(ctx, key, old, next, expires)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, errRefreshInvalid()
	case err != nil:
		s.log.Error("rotating a refresh token", errField(err))
		return 0, errServer("the refresh token could not be rotated")
	case swapped:
		return f.Gen, nil
	}
	b, err := s.opt.Store.Get(ctx, key)
	var now2 family
	if err != nil || json.Unmarshal(b, &now2) != nil || now2.Gen != f.Gen {
		s.revokeFamily(ctx, key, "refresh token family changed under a rotation; revoked", c)
		return 0, errRefreshInvalid()
	}
	return now2.Gen, nil
}

func (s *Server) revokeFamily(ctx context.Context, key, why string, c *client) {
	if err := s.opt.Store.Delete(ctx, key); err != nil {
		s.log.Error("revoking a refresh token family", errField(err))
		return
	}
	s.log.Warn(why, clientIDField(c.id))
}

// narrowScope lets a refresh request ask for a subset of the granted
// scope, never more (RFC 6749 §6). The family keeps the full grant. As at
// /authorize, scopes this server does not offer at all are ignored (a
// client resending its "openid offline_access" habit); a scope it offers
// but did not grant here is an escalation and refused.
func (s *Server) narrowScope(granted string, form url.Values) (string, *oauthError) {
	have := strings.Fields(granted)
	var keep []string
	for _, sc := range dedupe(strings.Fields(form.Get("scope"))) {
		switch {
		case slices.Contains(have, sc):
			keep = append(keep, sc)
		case slices.Contains(s.opt.ScopesSupported, sc):
			return "", &oauthError{Code: "invalid_scope", Description: fmt.Sprintf("scope %q was not granted to this refresh token", truncate(sc, 64))}
		}
	}
	if len(keep) == 0 {
		return granted, nil
	}
	return strings.Join(keep, " "), nil
}

// parseRefreshToken splits "<family id>.<secret>".
func parseRefreshToken(v string) (id, secret string, ok bool) {
	if len(v) > 200 {
		return "", "", false
	}
	id, secret, ok = strings.Cut(v, ".")
	if !ok || id == "" || secret == "" || strings.Contains(secret, ".") {
		return "", "", false
	}
	for i := range len(id) {
		if !isBase64URL(id[i]) {
			return "", "", false
		}
	}
	return id, secret, true
}
