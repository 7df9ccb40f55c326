package idp

import (
	"crypto/rand"
	"errors"

	"golang.org/x/oauth2"
)

// NewFlow creates the secret material for one sign-in. Each value is fresh
// randomness: State ties the callback to this browser, Nonce ties the ID
// token to this sign-in, Verifier is the PKCE secret towards the provider.
func NewFlow() Flow {
	return Flow{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
	}
}

// checkFlow refuses a Flow with missing parts, so that a caller bug cannot
// silently turn off state, nonce or PKCE protection.
func checkFlow(f Flow, needNonce bool) error {
	switch {
	case f.State == "":
		return errors.New("idp: sign-in flow has no state")
	case f.Verifier == "":
		return errors.New("idp: sign-in flow has no PKCE verifier")
	case needNonce && f.Nonce == "":
		return errors.New("idp: sign-in flow has no nonce")
	}
	return nil
}
