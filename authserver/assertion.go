package authserver

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/time/rate"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/authserver/clientmeta"
	"github.com/toolgate/toolgate/authserver/store"
)

// This file authenticates clients by private_key_jwt (RFC 7523 §2.2,
// RFC 7521 §4.2): a JWT the client signs with a key its metadata document
// publishes. Only metadata-document clients use it; ChatGPT is the one that
// matters. An assertion is a credential: it never appears in logs or in
// error descriptions.

const (
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionSkew is the clock difference tolerated on exp, nbf and iat.
	assertionSkew = 60 * time.Second
	// maxAssertionLifetime bounds how far ahead exp may be. Short-lived
	// assertions keep the replay cache (one store entry per jti until
	// exp) small and a stolen assertion nearly useless.
	maxAssertionLifetime = 10 * time.Minute
	maxJTILen            = 256
	// assertionLimit and assertionBurst: client assertions per address.
	// Each accepted one is a store entry for up to 11 minutes; a real
	// client needs one per token request.
	assertionLimit = rate.Limit(2) // 120 per minute
	assertionBurst = 60
	minRSABits     = 2048
)

// assertionAlgs are the accepted signature algorithms: asymmetric only.
// HS* would let anyone who knows the public key (everyone) sign, and
// "none" needs no key at all.
var assertionAlgs = []jwa.SignatureAlgorithm{
	jwa.RS256, jwa.RS384, jwa.RS512,
	jwa.PS256, jwa.PS384, jwa.PS512,
	jwa.ES256, jwa.ES384, jwa.ES512,
	jwa.EdDSA,
}

// assertionAlgNames lists assertionAlgs for the server metadata.
func assertionAlgNames() []string {
	names := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		names[i] = a.String()
	}
	return names
}

// authenticateAssertion authenticates a client by client_assertion.
//
// A client_assertion_type other than jwt-bearer is invalid_client, not
// invalid_request: RFC 6749 §5.2 names "unsupported authentication method"
// as invalid_client, and RFC 7521 §4.2.1 uses invalid_client for every
// assertion that cannot be used. Either way the client learns its
// credentials were not accepted and gets a 401.
func (s *Server) authenticateAssertion(r *http.Request, form url.Values) (*client, *oauthError) {
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		// RFC 6749 §2.3: one authentication method per request.
		return nil, errInvalidRequest("the client authenticated twice: use either client_assertion or a client secret, not both")
	}
	if t := form.Get("client_assertion_type"); t != assertionTypeJWTBearer {
		return nil, errInvalidClient("client_assertion_type must be " + assertionTypeJWTBearer + " (RFC 7523); no other assertion type is supported")
	}
	assertion := form.Get("client_assertion")
	if assertion == "" {
		return nil, errInvalidClient("client_assertion is missing")
	}
	if ok, wait := s.assertionLimit.allow(s.clientIP(r), s.now()); !ok {
		return nil, &oauthError{Code: "invalid_request", status: http.StatusTooManyRequests, retryAfter: wait,
			Description: "too many client assertions from this address; retry later"}
	}
	msg, alg, oerr := parseAssertion(assertion)
	if oerr != nil {
		return nil, oerr
	}
	// iss is read before the signature is checked only to find whose keys
	// to check it with; nothing else is believed until it verifies.
	var unverified assertionClaims
	if err := json.Unmarshal(msg.Payload(), &unverified); err != nil || unverified.Iss == "" {
		return nil, errInvalidClient("client_assertion's claims are not a JSON object with an iss")
	}
	if form.Has("client_id") && form.Get("client_id") != unverified.Iss {
		return nil, errInvalidClient("client_id does not match the client_assertion's iss")
	}
	c, err := s.resolveClient(r.Context(), unverified.Iss)
	if err != nil {
		return nil, errInvalidClient(err.Error())
	}
	if c.keys == nil {
		return nil, errInvalidClient("the client does not authenticate with private_key_jwt, so it must not send a client_assertion")
	}
	set, oerr := s.clientKeySet(r.Context(), c, false)
	if oerr != nil {
		return nil, oerr
	}
	kid := msg.Signatures()[0].ProtectedHeaders().KeyID()
	if kid != "" && c.keys.jwksURI != "" && !hasKID(set, kid) {
		// The client may have rotated its keys since the set was cached.
		if set, oerr = s.clientKeySet(r.Context(), c, true); oerr != nil {
			return nil, oerr
		}
	}
	payload, oerr := verifyAssertion(assertion, alg, kid, set)
	if oerr != nil {
		return nil, oerr
	}
	var claims assertionClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errInvalidClient("client_assertion's claims are not valid")
	}
	exp, oerr := s.checkAssertionClaims(c.id, &claims)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := s.useJTI(r.Context(), c.id, claims.Jti, exp); oerr != nil {
		return nil, oerr
	}
	return c, nil
}

// parseAssertion parses a compact JWS with one signature by an accepted
// algorithm, without verifying it.
func parseAssertion(assertion string) (*jws.Message, jwa.SignatureAlgorithm, *oauthError) {
	if strings.Count(assertion, ".") != 2 {
		return nil, "", errInvalidClient("client_assertion must be a JWT in JWS compact serialization")
	}
	msg, err := jws.Parse([]byte(assertion), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, "", errInvalidClient("client_assertion must be a JWT in JWS compact serialization")
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	alg := h.Algorithm()
	if !slices.Contains(assertionAlgs, alg) {
		return nil, "", errInvalidClient(fmt.Sprintf("client_assertion is signed with %q; accepted algorithms are %s", truncate(alg.String(), 20), strings.Join(assertionAlgNames(), ", ")))
	}
	if len(h.Critical()) > 0 {
		// RFC 7515 §4.1.11: a critical extension we do not implement
		// makes the JWS invalid.
		return nil, "", errInvalidClient("client_assertion has critical header parameters this server does not support")
	}
	return msg, alg, nil
}

// clientKeySet returns the client's public keys, from its document or
// its jwks_uri; refresh asks the fetcher to go back to the URI.
func (s *Server) clientKeySet(ctx context.Context, c *client, refresh bool) (jwk.Set, *oauthError) {
	raw := c.keys.jwks
	if c.keys.jwksURI != "" {
		var err error
		if refresh {
			raw, err = s.opt.Metadata.RefreshJWKS(ctx, c.keys.jwksURI)
		} else {
			raw, err = s.opt.Metadata.FetchJWKS(ctx, c.keys.jwksURI)
		}
		if err != nil {
			s.log.Info("client JWK Set refused", clientIDField(c.id), errField(err))
			var ce *clientmeta.Error
			if errors.As(err, &ce) {
				return nil, errInvalidClient("the client's keys could not be loaded: " + ce.Description)
			}
			return nil, errInvalidClient("the client's keys could not be loaded from its jwks_uri")
		}
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		s.log.Info("client JWK Set does not parse", clientIDField(c.id), errField(err))
		return nil, errInvalidClient("the client's JWK Set does not parse as JWKs")
	}
	return set, nil
}

func hasKID(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

// verifyAssertion checks the signature with each key that fits alg (and
// kid, when the header names one) and returns the verified payload. The
// algorithm comes from the header, but only after parseAssertion limited
// it to asymmetric ones, and a key is tried only with its own algorithm.
// Keys named in the header (jwk, jku, x5u) are never used.
func verifyAssertion(assertion string, alg jwa.SignatureAlgorithm, kid string, set jwk.Set) ([]byte, *oauthError) {
	tried := 0
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok || (kid != "" && k.KeyID() != kid) {
			continue
		}
		pub, ok := keyFor(k, alg)
		if !ok {
			continue
		}
		tried++
		payload, err := jws.Verify([]byte(assertion), jws.WithKey(alg, pub), jws.WithCompact())
		if err == nil {
			return payload, nil
		}
	}
	switch {
	case tried > 0:
		return nil, errInvalidClient("client_assertion's signature does not verify with the client's keys")
	case kid != "":
		return nil, errInvalidClient(fmt.Sprintf("the client's keys have no %s key with kid %q", alg, truncate(kid, 100)))
	default:
		return nil, errInvalidClient(fmt.Sprintf("the client's keys have no %s signing key", alg))
	}
}

// keyFor returns the public part of k if it may verify alg: a signing key
// whose type and curve suit alg, whose own alg (if any) is alg, and, for
// RSA, at least 2048 bits.
func keyFor(k jwk.Key, alg jwa.SignatureAlgorithm) (jwk.Key, bool) {
	if use := k.KeyUsage(); use != "" && use != jwk.ForSignature.String() {
		return nil, false
	}
	if ops := k.KeyOps(); len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, false
	}
	if a := k.Algorithm(); a != nil && a.String() != "" && a.String() != alg.String() {
		return nil, false
	}
	pub, err := jwk.PublicKeyOf(k) // a published private key is used as public only
	if err != nil {
		return nil, false
	}
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
		var raw rsa.PublicKey
		if pub.KeyType() != jwa.RSA || pub.Raw(&raw) != nil || raw.N.BitLen() < minRSABits {
			return nil, false
		}
	case jwa.ES256, jwa.ES384, jwa.ES512:
		want := map[jwa.SignatureAlgorithm]jwa.EllipticCurveAlgorithm{jwa.ES256: jwa.P256, jwa.ES384: jwa.P384, jwa.ES512: jwa.P521}[alg]
		ec, ok := pub.(jwk.ECDSAPublicKey)
		if !ok || ec.Crv() != want {
			return nil, false
		}
	case jwa.EdDSA:
		okp, ok := pub.(jwk.OKPPublicKey)
		if !ok || okp.Crv() != jwa.Ed25519 {
			return nil, false
		}
	default:
		return nil, false
	}
	return pub, true
}

// assertionClaims are the RFC 7523 §3 claims toolgate checks.
type assertionClaims struct {
	Iss string        `json:"iss"`
	Sub string        `json:"sub"`
	Aud auth.Audience `json:"aud"`
	Exp *float64      `json:"exp"`
	Nbf *float64      `json:"nbf"`
	Iat *float64      `json:"iat"`
	Jti string        `json:"jti"`
}

// numericDate converts a JWT NumericDate; ok is false for values no
// honest clock produces.
func numericDate(v float64) (time.Time, bool) {
	if math.IsNaN(v) || v < 0 || v > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(v), 0), true
}

// checkAssertionClaims applies RFC 7523 §3 to verified claims and returns
// the expiry. aud may be the token endpoint or the issuer, which RFC 7523
// also allows as the authorization server's identity; the same assertion
// audience is accepted at /revoke.
func (s *Server) checkAssertionClaims(clientID string, c *assertionClaims) (time.Time, *oauthError) {
	now := s.now()
	switch {
	case c.Iss != clientID || c.Sub != clientID:
		return time.Time{}, errInvalidClient("client_assertion's iss and sub must both be the client_id")
	case !slices.Contains(c.Aud, s.opt.Issuer+"/token") && !slices.Contains(c.Aud, s.opt.Issuer):
		return time.Time{}, errInvalidClient("client_assertion's aud must contain this server's token endpoint " + s.opt.Issuer + "/token")
	case c.Exp == nil:
		return time.Time{}, errInvalidClient("client_assertion has no exp")
	case c.Jti == "":
		return time.Time{}, errInvalidClient("client_assertion has no jti")
	case len(c.Jti) > maxJTILen:
		return time.Time{}, errInvalidClient(fmt.Sprintf("client_assertion's jti is longer than %d bytes", maxJTILen))
	}
	exp, ok := numericDate(*c.Exp)
	switch {
	case !ok:
		return time.Time{}, errInvalidClient("client_assertion's exp is not a valid time")
	case !now.Before(exp.Add(assertionSkew)):
		return time.Time{}, errInvalidClient("client_assertion has expired")
	case exp.Sub(now) > maxAssertionLifetime+assertionSkew:
		return time.Time{}, errInvalidClient(fmt.Sprintf("client_assertion's exp is more than %s ahead; sign short-lived assertions", maxAssertionLifetime))
	}
	if c.Nbf != nil {
		nbf, ok := numericDate(*c.Nbf)
		if !ok || nbf.After(now.Add(assertionSkew)) {
			return time.Time{}, errInvalidClient("client_assertion is not valid yet (nbf)")
		}
	}
	if c.Iat != nil {
		iat, ok := numericDate(*c.Iat)
		switch {
		case !ok || iat.After(now.Add(assertionSkew)):
			return time.Time{}, errInvalidClient("client_assertion's iat is in the future")
		case exp.Sub(iat) > maxAssertionLifetime:
			return time.Time{}, errInvalidClient(fmt.Sprintf("client_assertion lives more than %s (exp - iat); sign short-lived assertions", maxAssertionLifetime))
		}
	}
	return exp, nil
}

// useJTI records jti as used until the assertion could no longer be
// accepted anyway (exp plus the skew), so each assertion works once
// (RFC 7523 §3 item 7). Create is atomic across replicas.
func (s *Server) useJTI(ctx context.Context, clientID, jti string, exp time.Time) *oauthError {
	key := "jti:" + hashHex(clientID+"\x00"+jti)
	err := s.opt.Store.Create(ctx, key, nil, exp.Add(assertionSkew))
	switch {
	case errors.Is(err, store.ErrExists):
		s.log.Warn("client assertion replayed", clientIDField(clientID))
		return errInvalidClient("client_assertion has been used before; sign a new one with a fresh jti for each request")
	case err != nil:
		s.log.Error("recording a client assertion's jti", errField(err))
		return errServer("the client assertion could not be checked")
	}
	return nil
}
