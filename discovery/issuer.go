package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ServerMetadata is the part of an RFC 8414 / OpenID Connect discovery
// document that toolgate and its checks use.
type ServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`

	// Source is the URL the document was read from.
	Source string `json:"-"`
}

// maxMetadataBytes bounds a discovery document; real ones are a few KiB.
const maxMetadataBytes = 1 << 20

// MetadataURLs lists where an issuer's metadata may live, in the order the
// MCP specification (2025-11-25, "Authorization Server Metadata Discovery")
// tells clients to try: RFC 8414 with path insertion, OpenID Connect with
// path insertion, then OpenID Connect with the path appended.
func MetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// IssuerMismatchError is returned when a document names another issuer. It
// is never retried past: the configuration is wrong, not the network.
type IssuerMismatchError struct {
	URL, Want, Got string
}

func (e *IssuerMismatchError) Error() string {
	return fmt.Sprintf("metadata at %s names issuer %q, but AUTHORIZATION_SERVER_URL is %q; they must be identical byte for byte (mind the trailing slash)", e.URL, e.Got, e.Want)
}

// FetchServerMetadata tries each of MetadataURLs in order and returns the
// first document whose issuer equals issuer exactly (RFC 8414 §3.3). A
// document with another issuer is an error, not a reason to try the next URL.
func FetchServerMetadata(ctx context.Context, client *http.Client, issuer string) (*ServerMetadata, error) {
	urls, err := MetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var failures []string
	for _, u := range urls {
		md, err := fetchMetadata(ctx, client, u)
		if err != nil {
			failures = append(failures, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if md.Issuer != issuer {
			return nil, &IssuerMismatchError{URL: u, Want: issuer, Got: md.Issuer}
		}
		md.Source = u
		return md, nil
	}
	return nil, fmt.Errorf("no authorization server metadata for issuer %q: %s", issuer, strings.Join(failures, "; "))
}

// GetDocument fetches a JSON document (metadata, a JWKS) with a bounded
// size: a 200 answer's body, at most max bytes. Errors name the URL, never
// repeat the request twice over, and carry the status on a non-200.
func GetDocument(ctx context.Context, client *http.Client, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and URL
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, max))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("GET %s: document larger than %d bytes", u, max)
	}
	return body, nil
}

func fetchMetadata(ctx context.Context, client *http.Client, u string) (*ServerMetadata, error) {
	body, err := GetDocument(ctx, client, u, maxMetadataBytes)
	if err != nil {
		return nil, err
	}
	var md ServerMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON metadata document: %w", u, err)
	}
	if md.Issuer == "" {
		return nil, fmt.Errorf("GET %s: document has no issuer", u)
	}
	return &md, nil
}

// IsPermanent reports whether err cannot be cured by retrying.
func IsPermanent(err error) bool {
	var mm *IssuerMismatchError
	return errors.As(err, &mm)
}
