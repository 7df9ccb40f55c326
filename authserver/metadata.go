package authserver

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// metadata is the RFC 8414 authorization server metadata document.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthSigningAlgs []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseISSParameter bool     `json:"authorization_response_iss_parameter_supported"`
}

// authMethods are the client authentication methods of /token and /revoke;
// private_key_jwt is added when metadata documents are on, the only
// clients that use it.
var authMethods = []string{authNone, authBasic, authPost}

func (s *Server) metadata() metadata {
	iss := s.opt.Issuer
	scopes := s.opt.ScopesSupported
	if scopes == nil {
		scopes = []string{}
	}
	methods := authMethods
	var algs []string
	if s.opt.Metadata != nil {
		methods = slices.Concat(authMethods, []string{authPrivateKeyJWT})
		algs = assertionAlgNames()
	}
	return metadata{
		Issuer:                            iss,
		AuthorizationEndpoint:             iss + "/authorize",
		TokenEndpoint:                     iss + "/token",
		RegistrationEndpoint:              iss + "/register",
		RevocationEndpoint:                iss + "/revoke",
		JWKSURI:                           iss + "/jwks.json",
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{grantAuthorizationCode, grantRefreshToken},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethodsSupported: methods,
		RevocationEndpointAuthMethods:     methods,
		TokenEndpointAuthSigningAlgs:      algs,
		RevocationEndpointAuthSigningAlgs: algs,
		ScopesSupported:                   scopes,
		ClientIDMetadataDocumentSupported: s.opt.Metadata != nil,
		AuthorizationResponseISSParameter: true,
	}
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.signer.jwks)
}

// withCORS lets browser-based MCP clients (MCP Inspector) read the answer.
// Any origin is fine: these endpoints use no cookies, and credentials
// travel in the request itself.
func withCORS(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		h(w, r)
	})
}

// handlePreflight answers CORS preflights for the CORS endpoints.
func handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// oauthError is the RFC 6749 §5.2 / RFC 7591 §3.2.2 error body.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
	retryAfter  time.Duration // sent as Retry-After when set
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{Code: "invalid_request", Description: desc, status: http.StatusBadRequest}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{Code: "invalid_grant", Description: desc, status: http.StatusBadRequest}
}

func errInvalidClient(desc string) *oauthError {
	return &oauthError{Code: "invalid_client", Description: desc, status: http.StatusUnauthorized}
}

// writeOAuthError answers a token, revocation or registration request
// with e; responses of these endpoints are never cached.
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	noStore(w)
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(e.retryAfter.Seconds())), 1)))
	}
	writeJSON(w, status, e)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
