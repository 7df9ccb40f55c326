package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
)

// RFC 6750 §3.1 error codes.
const (
	errInvalidRequest    = "invalid_request"
	errInvalidToken      = "invalid_token"
	errInsufficientScope = "insufficient_scope"
)

// denial is every way the gateway refuses a request before it reaches the
// upstream. One place maps it to status, header and body, so a given
// failure always gets the same answer.
type denial struct {
	status int
	code   string   // RFC 6750 error code; empty when no credentials were sent (§3.1)
	desc   string   // for the person fixing the setup; never token contents
	scopes []string // every scope the request needs, for the scope= parameter
}

func (g *Gateway) deny(w http.ResponseWriter, d denial) {
	h := w.Header()
	if d.status == http.StatusUnauthorized || d.status == http.StatusForbidden || d.code == errInvalidRequest {
		h.Set("WWW-Authenticate", g.challenge(d))
	}
	writeJSON(w, d.status, oauthError{Error: errorName(d), Description: d.desc})
}

// challenge formats one Bearer challenge with each parameter at most once
// and every value free of quotes, backslashes and control characters, so no
// client parser can be confused (RFC 6750 §3, RFC 9110 §11.2).
func (g *Gateway) challenge(d denial) string {
	var b strings.Builder
	b.Grow(96 + len(g.metadataURL) + len(d.desc))
	b.WriteString(`Bearer resource_metadata="`)
	b.WriteString(g.metadataURL)
	b.WriteByte('"')
	if d.code != "" {
		b.WriteString(`, error="`)
		b.WriteString(d.code)
		b.WriteByte('"')
	}
	if d.desc != "" {
		b.WriteString(`, error_description="`)
		writeQuotable(&b, d.desc)
		b.WriteByte('"')
	}
	if len(d.scopes) > 0 {
		b.WriteString(`, scope="`)
		for i, s := range d.scopes {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeQuotable(&b, s)
		}
		b.WriteByte('"')
	}
	return b.String()
}

// writeQuotable copies s without the characters RFC 6750 §3 excludes from
// error_description (and that would break out of a quoted-string).
func writeQuotable(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func errorName(d denial) string {
	switch {
	case d.code != "":
		return d.code
	case d.status == http.StatusUnauthorized:
		return "unauthorized"
	case d.status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	default:
		return "forbidden"
	}
}

type rpcErrorBody struct {
	JSONRPC string       `json:"jsonrpc"`
	ID      *struct{}    `json:"id"`
	Error   rpcErrorInfo `json:"error"`
}

type rpcErrorInfo struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// rpcError answers with a JSON-RPC error object; MCP clients show its
// message. The id is unknown at this point (the body may not even parse),
// so it is null, as JSON-RPC 2.0 §5 prescribes for such errors.
func rpcError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, rpcErrorBody{JSONRPC: "2.0", Error: rpcErrorInfo{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
