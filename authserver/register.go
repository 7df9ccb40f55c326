package authserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/toolgate/toolgate/authserver/clientmeta"
)

// Dynamic registrations (RFC 7591) are stateless: the client_id carries the
// registration, signed by this server, so nothing is stored per client.
// MCP clients re-register on every connection, so a stored registry would
// grow forever.
const (
	clientIDPrefix     = "tgc1."
	maxRegistrationLen = 16 << 10
	// maxClientIDLen bounds a self-contained client_id, at registration and
	// when verified: it travels in every authorization request, sealed
	// pending request and access token.
	maxClientIDLen = 4096
)

// registration is what a tgc1 client_id carries. Short JSON names keep the
// client_id (which appears in every URL the client builds) small.
type registration struct {
	Name         string   `json:"n,omitempty"`
	RedirectURIs []string `json:"r"`
	GrantTypes   []string `json:"g"`
	AuthMethod   string   `json:"a"`
	IssuedAt     int64    `json:"t"`
	// Nonce makes every registration distinct: two clients registering
	// identical metadata in the same second must not share a client_id
	// (nor, for confidential clients, the secret derived from it).
	Nonce string `json:"x"`
}

// registrationRequest is the part of RFC 7591 client metadata toolgate
// reads; other fields are ignored, as §2 allows.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
}

type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

func errClientMetadata(desc string) *oauthError {
	return &oauthError{Code: "invalid_client_metadata", Description: desc, status: http.StatusBadRequest}
}

func errRedirectURI(desc string) *oauthError {
	return &oauthError{Code: "invalid_redirect_uri", Description: desc, status: http.StatusBadRequest}
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.registerLimit.allow(s.clientIP(r), s.now()); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeOAuthError(w, &oauthError{Code: "invalid_request", Description: "too many registrations from this address; retry later", status: http.StatusTooManyRequests})
		return
	}
	req, oerr := readRegistration(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	reg, oerr := checkRegistration(req)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	reg.IssuedAt = s.now().Unix()
	reg.Nonce = randomToken(9)
	id, err := s.signClientID(reg)
	if err != nil {
		s.log.Error("signing a client registration", errField(err))
		writeOAuthError(w, &oauthError{Code: "server_error", Description: "could not register the client", status: http.StatusInternalServerError})
		return
	}
	if len(id) > maxClientIDLen {
		writeOAuthError(w, errClientMetadata(fmt.Sprintf("the registration is too large: its client_id would be %d bytes, over %d; register fewer or shorter redirect URIs", len(id), maxClientIDLen)))
		return
	}
	resp := registrationResponse{
		ClientID:                id,
		ClientIDIssuedAt:        reg.IssuedAt,
		ClientName:              reg.Name,
		RedirectURIs:            reg.RedirectURIs,
		GrantTypes:              reg.GrantTypes,
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: reg.AuthMethod,
		ApplicationType:         req.ApplicationType,
	}
	if reg.AuthMethod != authNone {
		never := int64(0)
		resp.ClientSecret = s.clientSecret(id)
		resp.ClientSecretExpiresAt = &never
	}
	s.log.Info("client registered", zapString("client_name", reg.Name), zapString("auth_method", reg.AuthMethod))
	noStore(w)
	writeJSON(w, http.StatusCreated, resp)
}

// readRegistration reads one JSON object of at most 16 KiB.
func readRegistration(w http.ResponseWriter, r *http.Request) (*registrationRequest, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, errClientMetadata("the registration request must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationLen))
	if err != nil {
		return nil, errClientMetadata(fmt.Sprintf("the registration request is larger than %d bytes or could not be read", maxRegistrationLen))
	}
	var req registrationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, errClientMetadata("the registration request is not a valid JSON object of client metadata: " + jsonProblem(err))
	}
	if dec.More() {
		return nil, errClientMetadata("the registration request has data after the JSON object")
	}
	return &req, nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return "malformed JSON"
}

// checkRegistration applies RFC 7591 defaults and toolgate's limits.
func checkRegistration(req *registrationRequest) (*registration, *oauthError) {
	if len(req.RedirectURIs) == 0 {
		return nil, errRedirectURI("redirect_uris is required and must not be empty")
	}
	if len(req.RedirectURIs) > maxRedirectURIs {
		return nil, errClientMetadata(fmt.Sprintf("at most %d redirect_uris are allowed", maxRedirectURIs))
	}
	for i, u := range req.RedirectURIs {
		if len(u) > maxRedirectURILen {
			return nil, errClientMetadata(fmt.Sprintf("redirect_uris[%d] is longer than %d bytes", i, maxRedirectURILen))
		}
		if err := checkRedirectURI(u); err != nil {
			return nil, errRedirectURI(fmt.Sprintf("redirect_uris[%d]: %v", i, err))
		}
	}
	grants, err := registeredGrants(req.GrantTypes)
	if err != nil {
		return nil, errClientMetadata(err.Error())
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			return nil, errClientMetadata(fmt.Sprintf("response type %q is not supported; use code", rt))
		}
	}
	method := req.TokenEndpointAuthMethod
	if method == "" {
		method = authBasic // RFC 7591 §2 default
	}
	if !slices.Contains(authMethods, method) {
		return nil, errClientMetadata(fmt.Sprintf("token_endpoint_auth_method %q is not supported; use none, client_secret_basic or client_secret_post", method))
	}
	if at := req.ApplicationType; at != "" && at != "native" && at != "web" {
		return nil, errClientMetadata(fmt.Sprintf("application_type %q is not supported; use native or web", at))
	}
	return &registration{
		Name:         clientmeta.CleanName(req.ClientName),
		RedirectURIs: req.RedirectURIs,
		GrantTypes:   grants,
		AuthMethod:   method,
	}, nil
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// signClientID encodes reg as tgc1.<payload>.<mac>.
func (s *Server) signClientID(reg *registration) (string, error) {
	payload, err := json.Marshal(reg)
	if err != nil {
		return "", err
	}
	signed := clientIDPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.clientIDMAC(signed)), nil
}

func (s *Server) clientIDMAC(signed string) []byte {
	m := hmac.New(sha256.New, s.keys.clientID)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// errBadClientID is every reason a tgc1 client_id fails; the caller only
// needs to know it is not ours.
var errBadClientID = errors.New("client_id is not a valid registration issued by this server")

// verifyClientID checks the MAC of a tgc1 client_id before decoding
// anything it carries.
func (s *Server) verifyClientID(id string) (*registration, error) {
	if len(id) > maxClientIDLen || !strings.HasPrefix(id, clientIDPrefix) {
		return nil, errBadClientID
	}
	dot := strings.LastIndexByte(id, '.')
	if dot < len(clientIDPrefix) {
		return nil, errBadClientID
	}
	signed, macText := id[:dot], id[dot+1:]
	mac, err := base64.RawURLEncoding.Strict().DecodeString(macText)
	if err != nil || !hmac.Equal(mac, s.clientIDMAC(signed)) {
		return nil, errBadClientID
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(signed[len(clientIDPrefix):])
	if err != nil {
		return nil, errBadClientID
	}
	var reg registration
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil || len(reg.RedirectURIs) == 0 || reg.Nonce == "" || !slices.Contains(authMethods, reg.AuthMethod) {
		return nil, errBadClientID
	}
	return &reg, nil
}

// clientSecret derives a confidential dynamic client's secret from its
// client_id, so it needs no storage either.
func (s *Server) clientSecret(clientID string) string {
	m := hmac.New(sha256.New, s.keys.clientSecret)
	m.Write([]byte(clientID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) dynamicClient(id string, reg *registration) *client {
	c := &client{
		id:           id,
		name:         reg.Name,
		kind:         kindDynamic,
		redirectURIs: reg.RedirectURIs,
		grantTypes:   reg.GrantTypes,
	}
	if reg.AuthMethod != authNone {
		c.secret = s.clientSecret(id)
	}
	return c
}

// registeredGrants is what a client registering grant_types gets: the
// grants this server supports among them (RFC 7591 §3.2.1 lets the server
// register less than asked, and the response says what), and, when it
// names none, both: every MCP client wants refresh tokens, whatever the
// RFC's authorization_code-only default. A client that cannot use the
// authorization code grant has no business here.
func registeredGrants(asked []string) ([]string, error) {
	if len(asked) == 0 {
		return []string{grantAuthorizationCode, grantRefreshToken}, nil
	}
	var grants []string
	for _, g := range dedupe(asked) {
		if g == grantAuthorizationCode || g == grantRefreshToken {
			grants = append(grants, g)
		}
	}
	if !slices.Contains(grants, grantAuthorizationCode) {
		return nil, errors.New("grant_types must include authorization_code, the only way to sign in here")
	}
	return grants, nil
}
