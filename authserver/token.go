package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/toolgate/toolgate/authserver/store"
)

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func errServer(desc string) *oauthError {
	return &oauthError{Code: "server_error", Description: desc, status: http.StatusInternalServerError}
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	grant := form.Get("grant_type")
	var resp *tokenResponse
	var oerr *oauthError
	switch grant {
	case "":
		oerr = errInvalidRequest("grant_type is missing")
	case grantAuthorizationCode, grantRefreshToken:
		if !c.allowsGrant(grant) {
			oerr = &oauthError{Code: "unauthorized_client", Description: fmt.Sprintf("the client is not registered for the %s grant", grant)}
		} else if grant == grantAuthorizationCode {
			resp, oerr = s.redeemCode(r.Context(), c, form)
		} else {
			resp, oerr = s.rotateRefresh(r.Context(), c, form)
		}
	default:
		oerr = &oauthError{Code: "unsupported_grant_type", Description: "use authorization_code or refresh_token"}
	}
	if oerr != nil {
		s.log.Info("token request refused", clientIDField(c.id), zapString("grant_type", truncate(grant, 40)), zapString("error", oerr.Code))
		writeOAuthError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// clientRequest is the start of a token or revocation request: the form,
// read within bounds, and the client it authenticates. When ok is false
// the error has been written.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (url.Values, *client, bool) {
	noStore(w)
	form, err := readForm(w, r, maxTokenForm)
	if err != nil {
		writeOAuthError(w, errInvalidRequest(err.Error()))
		return nil, nil, false
	}
	c, oerr := s.authenticateClient(r, form)
	if oerr != nil {
		s.writeClientError(w, r, oerr)
		return nil, nil, false
	}
	return form, c, true
}

// writeClientError answers a failed client authentication; RFC 6749 §5.2
// asks for a Basic challenge when the client tried Basic.
func (s *Server) writeClientError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.status == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="toolgate"`)
	}
	writeOAuthError(w, e)
}

// authenticateClient identifies the client of a token or revocation
// request by client_secret_basic, client_secret_post, private_key_jwt
// (metadata-document clients that declare it) or, for public clients, the
// client_id parameter alone.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*client, *oauthError) {
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		return s.authenticateAssertion(r, form)
	}
	id, secret, hasSecret, oerr := clientCredentials(r, form)
	if oerr != nil {
		return nil, oerr
	}
	c, err := s.resolveClient(r.Context(), id)
	if err != nil {
		return nil, errInvalidClient(err.Error())
	}
	switch {
	case c.keys != nil:
		return nil, errInvalidClient("the client's metadata document declares private_key_jwt: authenticate with client_assertion_type=" + assertionTypeJWTBearer + " and a signed client_assertion")
	case c.public() && hasSecret && secret != "":
		return nil, errInvalidClient("the client is public; it must not send a client secret")
	case c.public():
		return c, nil
	case !hasSecret:
		return nil, errInvalidClient("client authentication is required: use client_secret_basic or client_secret_post")
	case !c.checkSecret(secret) && !c.checkSecret(rawBasicSecret(r, secret)):
		return nil, errInvalidClient("client authentication failed")
	}
	return c, nil
}

// rawBasicSecret is the HTTP Basic password exactly as sent. RFC 6749
// §2.3.1 has clients form-urlencode it first, and toolgate decodes it, but
// many clients (the MCP TypeScript SDK among them) send it raw; a secret
// with '+' or '%' in it would then never match. Trying the raw form too
// admits nothing the client does not know. Without Basic, it is decoded.
func rawBasicSecret(r *http.Request, decoded string) string {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return decoded
}

// clientCredentials reads the client_id and secret from the Authorization
// header or the form, refusing requests that use two methods at once.
func clientCredentials(r *http.Request, form url.Values) (id, secret string, hasSecret bool, oerr *oauthError) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return "", "", false, errInvalidRequest("more than one Authorization header")
	}
	if len(auth) == 0 {
		if form.Get("client_id") == "" {
			return "", "", false, errInvalidClient("client authentication is required: send client_id (public clients) or client credentials")
		}
		return form.Get("client_id"), form.Get("client_secret"), form.Has("client_secret"), nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", "", false, errInvalidClient("the Authorization header is not valid HTTP Basic client authentication")
	}
	if form.Has("client_secret") {
		return "", "", false, errInvalidRequest("the client authenticated twice: use either HTTP Basic or client_secret, not both")
	}
	// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic
	// encoding. Clients that skip that step send them raw; what does not
	// decode is taken as sent (see rawBasicSecret).
	uid, err := url.QueryUnescape(user)
	if err != nil {
		uid = user
	}
	pw, err := url.QueryUnescape(pass)
	if err != nil {
		pw = pass
	}
	if form.Has("client_id") && form.Get("client_id") != uid {
		return "", "", false, errInvalidRequest("client_id does not match the HTTP Basic credentials")
	}
	return uid, pw, true, nil
}

// redeemCode exchanges an authorization code (RFC 6749 §4.1.3, RFC 7636).
// The code is checked before it is consumed, so a request that cannot
// prove possession of the PKCE verifier does not burn the code of the
// client that can.
func (s *Server) redeemCode(ctx context.Context, c *client, form url.Values) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, errInvalidRequest("code is missing")
	}
	codeHash := hashHex(code)
	key := "code:" + codeHash
	var rec codeRecord
	if err := s.getJSON(ctx, key, &rec); err != nil {
		if errors.Is(err, errExpired) {
			s.revokeCodeFamily(ctx, codeHash)
			return nil, errInvalidGrant("the authorization code is invalid, expired or already used")
		}
		s.log.Error("reading an authorization code", errField(err))
		return nil, errServer("the authorization code could not be checked")
	}
	if s.now().Unix() >= rec.Expires {
		_ = s.opt.Store.Delete(ctx, key)
		return nil, errInvalidGrant("the authorization code has expired")
	}
	if rec.ClientID != c.id {
		return nil, errInvalidGrant("the authorization code was issued to another client")
	}
	if oerr := checkCodeRedirect(&rec, form); oerr != nil {
		return nil, oerr
	}
	if oerr := checkVerifier(rec.CodeChallenge, form); oerr != nil {
		return nil, oerr
	}
	if form.Has("resource") && !s.sameResource(form.Get("resource")) {
		return nil, &oauthError{Code: "invalid_target", Description: "resource differs from the one in the authorization request"}
	}
	if _, err := s.opt.Store.Take(ctx, key); err != nil {
		// Another request redeemed it between our Get and Take: a replay.
		s.revokeCodeFamily(ctx, codeHash)
		return nil, errInvalidGrant("the authorization code is invalid, expired or already used")
	}
	resp := &tokenResponse{}
	if c.allowsGrant(grantRefreshToken) {
		fid := randomToken(16)
		// Remember which family this code started, for as long as the code
		// would have lived, so a replay of the code revokes it (RFC 6749
		// §4.1.2, OAuth 2.1 §4.1.3).
		if err := s.opt.Store.Create(ctx, "used:"+codeHash, []byte(fid), time.Unix(rec.Expires, 0)); err != nil && !errors.Is(err, store.ErrExists) {
			s.log.Warn("recording a redeemed code", errField(err))
		}
		rt, err := s.newFamily(ctx, fid, c, rec.User, rec.Scope, rec.Resource)
		if err != nil {
			s.log.Error("storing a refresh token family", errField(err))
			return nil, errServer("the tokens could not be issued")
		}
		resp.RefreshToken = rt
	}
	if oerr := s.fillAccessToken(resp, c, rec.User, rec.Scope, rec.Resource); oerr != nil {
		return nil, oerr
	}
	s.log.Info("tokens issued", clientIDField(c.id), zapString("sub", rec.User.Sub), zapString("grant_type", grantAuthorizationCode))
	return resp, nil
}

// revokeCodeFamily deletes the refresh family issued from a code that is
// being presented again: whoever redeemed it first may be an attacker.
func (s *Server) revokeCodeFamily(ctx context.Context, codeHash string) {
	fid, err := s.opt.Store.Get(ctx, "used:"+codeHash)
	if err != nil {
		return
	}
	if err := s.opt.Store.Delete(ctx, "family:"+string(fid)); err != nil {
		s.log.Error("revoking the tokens of a replayed code", errField(err))
		return
	}
	s.log.Warn("authorization code replayed; its refresh tokens are revoked")
}

// checkCodeRedirect: if the authorization request named a redirect URI,
// the token request must name the same one (RFC 6749 §4.1.3).
func checkCodeRedirect(rec *codeRecord, form url.Values) *oauthError {
	got := form.Get("redirect_uri")
	switch {
	case rec.RedirectURISent && got != rec.RedirectURI:
		return errInvalidGrant("redirect_uri differs from the one in the authorization request")
	case !rec.RedirectURISent && form.Has("redirect_uri") && got != rec.RedirectURI:
		return errInvalidGrant("redirect_uri differs from the client's registered redirect URI")
	}
	return nil
}

// checkVerifier verifies the PKCE S256 code verifier (RFC 7636 §4.6).
func checkVerifier(challenge string, form url.Values) *oauthError {
	v := form.Get("code_verifier")
	if v == "" {
		return errInvalidRequest("code_verifier is missing (PKCE)")
	}
	if !validVerifier(v) {
		return errInvalidRequest("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	sum := sha256.Sum256([]byte(v))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return errInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := range len(v) {
		if b := v[i]; !isBase64URL(b) && b != '.' && b != '~' {
			return false
		}
	}
	return true
}

// accessClaims are the RFC 9068 claims of toolgate's access tokens. aud is
// a single string: the one resource the token is for.
type accessClaims struct {
	Iss               string `json:"iss"`
	Aud               string `json:"aud"`
	Sub               string `json:"sub"`
	ClientID          string `json:"client_id"`
	Scope             string `json:"scope,omitempty"`
	Iat               int64  `json:"iat"`
	Exp               int64  `json:"exp"`
	Jti               string `json:"jti"`
	AuthTime          int64  `json:"auth_time,omitempty"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
}

// fillAccessToken signs an access token into resp.
func (s *Server) fillAccessToken(resp *tokenResponse, c *client, u user, scope, resource string) *oauthError {
	now := s.now()
	claims := accessClaims{
		Iss:               s.opt.Issuer,
		Aud:               resource,
		Sub:               u.Sub,
		ClientID:          c.id,
		Scope:             scope,
		Iat:               now.Unix(),
		Exp:               now.Add(s.opt.AccessTokenTTL).Unix(),
		Jti:               randomToken(16),
		AuthTime:          u.AuthTime,
		Email:             u.Email,
		Name:              u.Name,
		PreferredUsername: u.Username,
	}
	tok, err := s.signer.sign(claims)
	if err != nil {
		s.log.Error("signing an access token", errField(err))
		return errServer("the access token could not be signed")
	}
	resp.AccessToken = tok
	resp.TokenType = "Bearer"
	resp.ExpiresIn = int64(s.opt.AccessTokenTTL / time.Second)
	resp.Scope = scope
	return nil
}

// sign produces a compact JWS with typ at+jwt (RFC 9068 §2.1).
func (sg *signer) sign(claims accessClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.KeyIDKey, sg.kid); err != nil {
		return "", err
	}
	out, err := jws.Sign(payload, jws.WithKey(sg.alg, sg.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", err
	}
	return string(out), nil
}
