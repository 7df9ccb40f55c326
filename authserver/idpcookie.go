package authserver

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// maxIDPCookie keeps the upstream sign-in cookie under the 4 KiB that
// browsers store per cookie, with room for its name and attributes.
const maxIDPCookie = 3800

var errIDPFlow = errors.New("no matching upstream sign-in in this browser")

func (s *Server) idpCookieName() string { return s.cookieKey + "-idp" }

// writeIDPCookie seals st with AES-256-GCM into a short-lived cookie. The
// browser carries it but can read nothing in it: the PKCE verifier and the
// nonce of the provider's ID token stay secret from it.
func (s *Server) writeIDPCookie(w http.ResponseWriter, st *idpState) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	aead, err := s.idpAEAD()
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	value := base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(s.idpCookieName())))
	if len(value) > maxIDPCookie {
		return errors.New("upstream sign-in cookie too large")
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.idpCookieName(),
		Value:    value,
		Path:     "/",
		MaxAge:   int(idpStateTTL.Seconds()),
		Secure:   strings.HasPrefix(s.cookieKey, "__Host-"),
		HttpOnly: true,
		// Lax: sent on the top-level navigation back from the provider.
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// takeIDPCookie opens the cookie, checks it belongs to state and has not
// expired, and clears it: one callback per started sign-in.
func (s *Server) takeIDPCookie(w http.ResponseWriter, r *http.Request, state string) (*idpState, error) {
	c, err := r.Cookie(s.idpCookieName())
	if err != nil {
		return nil, errIDPFlow
	}
	http.SetCookie(w, &http.Cookie{Name: s.idpCookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: strings.HasPrefix(s.cookieKey, "__Host-"), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, errIDPFlow
	}
	aead, err := s.idpAEAD()
	if err != nil || len(sealed) < aead.NonceSize() {
		return nil, errIDPFlow
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(s.idpCookieName()))
	if err != nil {
		return nil, errIDPFlow
	}
	var st idpState
	if json.Unmarshal(plain, &st) != nil || s.now().Unix() >= st.Expires ||
		subtle.ConstantTimeCompare([]byte(st.Flow.State), []byte(state)) != 1 {
		return nil, errIDPFlow
	}
	return &st, nil
}

func (s *Server) idpAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.keys.idpFlow)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
