package proxy

import (
	"net/http"
	"strings"
)

// The headers MCP clients send and read. Fetch's "*" never covers
// Authorization, so they are listed one by one.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
	corsExposeHeaders = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version"
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
)

// originAllowed applies ALLOWED_ORIGINS to a present Origin header (MCP
// transports require servers to validate it against DNS rebinding). Requests
// without Origin come from non-browser clients and pass.
func (g *Gateway) originAllowed(r *http.Request) bool {
	if g.origins == nil {
		return true
	}
	origin := r.Header.Get("Origin")
	return origin == "" || g.origins[strings.ToLower(origin)]
}

// preflight answers OPTIONS without authentication: a browser sends no
// credentials on a preflight and would otherwise never get to send them.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request) {
	if !g.originAllowed(r) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h := w.Header()
	g.setCORS(h, r)
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", corsAllowMethods)
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) setCORS(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	if g.origins == nil {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}
