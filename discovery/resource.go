// Package discovery publishes what clients need to find the authorization
// server (RFC 9728 protected-resource metadata) and finds what toolgate needs
// from that server (RFC 8414 / OpenID Connect discovery). It never decides
// whether a request is allowed.
package discovery

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// WellKnownResourcePath is the RFC 9728 §3 well-known prefix.
const WellKnownResourcePath = "/.well-known/oauth-protected-resource"

// ResourceMetadata is the RFC 9728 §2 document. Zero values are omitted, as
// §3.2 asks.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	JWKSURI                string   `json:"jwks_uri,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// MetadataURL is where the metadata for resource lives: the well-known
// suffix inserted between host and path (RFC 9728 §3.1), with a terminating
// slash dropped. It is the value of the resource_metadata challenge parameter.
func MetadataURL(resource *url.URL) string {
	return resource.Scheme + "://" + resource.Host + MetadataPath(resource)
}

// MetadataPath is the local path of MetadataURL.
func MetadataPath(resource *url.URL) string {
	return WellKnownResourcePath + strings.TrimSuffix(resource.EscapedPath(), "/")
}

// ResourceHandler serves one pre-encoded metadata document. It is mounted at
// MetadataPath and, for clients that only try the root (MCP 2025-11-25
// discovery order falls back to it), at WellKnownResourcePath too.
type ResourceHandler struct {
	body []byte
}

// NewResourceHandler encodes m once; every response then costs no marshalling.
func NewResourceHandler(m ResourceMetadata) (*ResourceHandler, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &ResourceHandler{body: b}, nil
}

func (h *ResourceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// Metadata is public: any origin may read it, including browser-based
	// clients such as MCP Inspector.
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "Content-Type, MCP-Protocol-Version")
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(h.body)
	}
}
