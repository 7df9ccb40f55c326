package authserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate/authserver/clientmeta"
)

// Client authentication methods and grant types toolgate knows.
const (
	authNone          = "none"
	authBasic         = "client_secret_basic"
	authPost          = "client_secret_post"
	authPrivateKeyJWT = "private_key_jwt" // metadata-document clients only

	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
)

// Limits on client metadata, for registrations and the clients file alike.
const (
	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
	minClientSecret   = 16
)

// clientKind says how toolgate learned about a client; the consent page
// tells the user, because it says how much the name can be trusted.
type clientKind int

const (
	kindPreRegistered clientKind = iota // configured by the administrator
	kindDynamic                         // registered itself at /register
	kindMetadata                        // described by a client ID metadata document
)

// client is a resolved client, whatever its kind.
type client struct {
	id           string
	name         string // untrusted for dynamic and metadata clients
	kind         clientKind
	secret       string // empty for public clients
	redirectURIs []string
	grantTypes   []string
	// keys is set for a metadata-document client that authenticates with
	// private_key_jwt; such a client has no secret but is not public.
	keys *clientKeys
}

// clientKeys is where a private_key_jwt client's public keys are: inline
// in its document, or at a jwks_uri. Exactly one is set.
type clientKeys struct {
	jwks    []byte
	jwksURI string
}

func (c *client) public() bool { return c.secret == "" && c.keys == nil }

func (c *client) allowsGrant(g string) bool { return slices.Contains(c.grantTypes, g) }

// allowsRedirect matches uri exactly against the registered redirect URIs,
// except that loopback http URIs match on any port (RFC 8252 §7.3).
func (c *client) allowsRedirect(uri string) bool {
	for _, reg := range c.redirectURIs {
		if clientmeta.RedirectMatches(reg, uri) {
			return true
		}
	}
	return false
}

// checkSecret compares a presented secret with the client's in constant
// time. Hashing first keeps the comparison independent of the lengths.
func (c *client) checkSecret(presented string) bool {
	if c.secret == "" {
		return false
	}
	a := sha256.Sum256([]byte(presented))
	b := sha256.Sum256([]byte(c.secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// displayName is what the consent page calls the client.
func (c *client) displayName() string {
	if c.name != "" {
		return c.name
	}
	if c.kind == kindMetadata {
		return c.id
	}
	return "An unnamed application"
}

// clientError says why a client_id does not resolve; its text is safe to
// show the user and to put in error_description.
type clientError struct{ msg string }

func (e *clientError) Error() string { return e.msg }

// resolveClient finds the client behind any client_id: pre-registered,
// then a self-contained dynamic registration, then a metadata document.
func (s *Server) resolveClient(ctx context.Context, id string) (*client, error) {
	if id == "" {
		return nil, &clientError{"client_id is missing"}
	}
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	if strings.HasPrefix(id, clientIDPrefix) {
		reg, err := s.verifyClientID(id)
		if err != nil {
			return nil, &clientError{"unknown client: the client_id is not one this server issued"}
		}
		return s.dynamicClient(id, reg), nil
	}
	if clientmeta.IsURL(id) {
		return s.metadataClient(ctx, id)
	}
	return nil, &clientError{"unknown client"}
}

func (s *Server) metadataClient(ctx context.Context, id string) (*client, error) {
	if s.opt.Metadata == nil {
		return nil, &clientError{"unknown client: client ID metadata documents are not enabled on this server"}
	}
	doc, err := s.opt.Metadata.Fetch(ctx, id)
	if err != nil {
		s.log.Info("client metadata document refused", clientIDField(id), errField(err))
		var ce *clientmeta.Error
		if errors.As(err, &ce) {
			return nil, &clientError{"client metadata document: " + ce.Description}
		}
		return nil, &clientError{"the client metadata document could not be fetched"}
	}
	keys, err := documentKeys(doc)
	if err != nil {
		return nil, err
	}
	grants, err := registeredGrants(doc.GrantTypes)
	if err != nil {
		return nil, &clientError{"client metadata document: " + err.Error()}
	}
	return &client{
		id:           id,
		name:         clientmeta.CleanName(doc.ClientName),
		kind:         kindMetadata,
		keys:         keys,
		redirectURIs: doc.RedirectURIs,
		grantTypes:   grants,
	}, nil
}

// documentKeys returns the keys of a private_key_jwt document, or nil for
// a public one. clientmeta has validated the document; the checks here
// keep any other MetadataFetcher from making a client that expects to
// authenticate silently public. A shared secret makes no sense for a
// document anyone can read.
func documentKeys(doc *clientmeta.Document) (*clientKeys, error) {
	switch m := doc.TokenEndpointAuthMethod; m {
	case "", authNone:
		return nil, nil
	case authPrivateKeyJWT:
		hasSet, hasURI := len(doc.JWKS) > 0, doc.JWKSURI != ""
		if hasSet == hasURI {
			return nil, &clientError{"client metadata document: private_key_jwt needs exactly one of jwks and jwks_uri"}
		}
		return &clientKeys{jwks: slices.Clone([]byte(doc.JWKS)), jwksURI: doc.JWKSURI}, nil
	default:
		return nil, &clientError{fmt.Sprintf("client metadata document asks for token_endpoint_auth_method %q; this server supports only \"none\" and \"private_key_jwt\" for metadata-document clients", truncate(m, 100))}
	}
}

// preRegistered validates the configured clients and indexes them.
func preRegistered(cs []Client) (map[string]*client, error) {
	m := make(map[string]*client, len(cs))
	var errs []error
	for i, c := range cs {
		if err := checkClient(c); err != nil {
			errs = append(errs, fmt.Errorf("authserver: client %d (client_id %q): %w", i+1, c.ID, err))
			continue
		}
		if _, dup := m[c.ID]; dup {
			errs = append(errs, fmt.Errorf("authserver: client %d: client_id %q is configured twice", i+1, c.ID))
			continue
		}
		m[c.ID] = &client{
			id:           c.ID,
			name:         clientmeta.CleanName(c.Name),
			kind:         kindPreRegistered,
			secret:       c.Secret,
			redirectURIs: slices.Clone(c.RedirectURIs),
			grantTypes:   []string{grantAuthorizationCode, grantRefreshToken},
		}
	}
	return m, errors.Join(errs...)
}

// checkClient reports every problem with one pre-registered client.
func checkClient(c Client) error {
	var errs []error
	switch {
	case c.ID == "":
		errs = append(errs, errors.New("client_id is empty"))
	case len(c.ID) > 200 || strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r > '~' }):
		errs = append(errs, errors.New("client_id must be at most 200 printable ASCII characters without spaces"))
	case strings.HasPrefix(c.ID, clientIDPrefix):
		errs = append(errs, fmt.Errorf("client_id must not start with %q, which marks dynamic registrations", clientIDPrefix))
	}
	if c.Secret != "" && len(c.Secret) < minClientSecret {
		errs = append(errs, fmt.Errorf("client_secret is shorter than %d characters; use a long random value", minClientSecret))
	}
	if len(c.RedirectURIs) == 0 {
		errs = append(errs, errors.New("redirect_uris is empty"))
	}
	for i, u := range c.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			errs = append(errs, fmt.Errorf("redirect_uris[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// checkRedirectURI applies the one redirect URI rule of every kind of
// client (clientmeta.RedirectURIProblem), within a length registrations
// and configured clients may use.
func checkRedirectURI(raw string) error {
	if len(raw) > maxRedirectURILen {
		return fmt.Errorf("redirect URI is longer than %d bytes", maxRedirectURILen)
	}
	if problem := clientmeta.RedirectURIProblem(raw); problem != "" {
		return fmt.Errorf("redirect URI %q %s", raw, problem)
	}
	return nil
}

// clientFile is the YAML file of pre-registered clients.
type clientFile struct {
	Clients []clientFileEntry `yaml:"clients"`
}

type clientFileEntry struct {
	ClientID     string   `yaml:"client_id"`
	ClientName   string   `yaml:"client_name"`
	ClientSecret string   `yaml:"client_secret"`
	RedirectURIs []string `yaml:"redirect_uris"`
}

// LoadClients reads pre-registered clients from a YAML file:
//
//	clients:
//	  - client_id: my-app
//	    client_name: My App
//	    client_secret: ...   # omit for a public client
//	    redirect_uris: [https://app.example.com/callback]
//
// Unknown fields are errors, and every entry is validated; errors name the
// file and the entry.
func LoadClients(path string) ([]Client, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f clientFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("clients file %s is empty", path)
		}
		return nil, fmt.Errorf("clients file %s: %w", path, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("clients file %s: holds more than one YAML document", path)
	}
	var errs []error
	seen := map[string]bool{}
	out := make([]Client, 0, len(f.Clients))
	for i, e := range f.Clients {
		c := Client{ID: e.ClientID, Name: e.ClientName, Secret: e.ClientSecret, RedirectURIs: e.RedirectURIs}
		if err := checkClient(c); err != nil {
			errs = append(errs, fmt.Errorf("clients file %s: entry %d (client_id %q): %w", path, i+1, e.ClientID, err))
		}
		if seen[e.ClientID] && e.ClientID != "" {
			errs = append(errs, fmt.Errorf("clients file %s: entry %d: client_id %q appears more than once", path, i+1, e.ClientID))
		}
		seen[e.ClientID] = true
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
