package jsonrpc

import (
	"encoding/base64"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// CheckContentHeaders rejects request bodies that some upstream would decode
// into different bytes than the ones Inspect reads. Any media type is
// accepted (Inspect parses the body whatever it claims to be); a charset
// other than UTF-8 or a Content-Type that cannot be parsed unambiguously is a
// 400, a Content-Encoding other than identity a 415.
func CheckContentHeaders(h http.Header) error {
	for _, v := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			coding = strings.Trim(coding, " \t")
			// Empty list elements are allowed by RFC 9110 §5.6.1.
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return &Error{Status: http.StatusUnsupportedMediaType, Reason: "request Content-Encoding other than identity"}
			}
		}
	}
	cts := h.Values("Content-Type")
	switch {
	case len(cts) == 0:
		return nil
	case len(cts) > 1:
		return &Error{Status: 400, Reason: "more than one Content-Type"}
	}
	ct := strings.Trim(cts[0], " \t")
	if ct == "" {
		return nil
	}
	// mime lets an RFC 2231 "charset*" override a plain "charset", which the
	// TS SDK's parser ignores; rather than guess who wins, refuse the form.
	if containsFold(ct, "charset*") {
		return &Error{Status: 400, Reason: "extended charset parameter in Content-Type"}
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &Error{Status: 400, Reason: "unparseable Content-Type"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return &Error{Status: 400, Reason: "Content-Type charset other than utf-8"}
	}
	return nil
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// The request-metadata headers of the 2026-07-28 transport, canonical form.
const (
	headerVersion = "Mcp-Protocol-Version"
	headerMethod  = "Mcp-Method"
	headerName    = "Mcp-Name"
)

// firstModernVersion is the first protocol version whose requests mirror the
// body into headers and carry their version in _meta.
const firstModernVersion = "2026-07-28"

// CheckMetadataHeaders enforces that the request-metadata headers
// (MCP-Protocol-Version, Mcp-Method, Mcp-Name) agree with the inspected body,
// so that nothing routing or deciding on headers sees a different request
// than the upstream executes. Decisions still come from the body alone.
//
// A header that is present must match, whatever the protocol version; a
// 2026-07-28 request (one whose body carries a _meta protocol version) must
// also carry the headers its method requires. Each header may appear once,
// and spellings with '_' for '-' are refused because some stacks merge them.
// Mcp-Name may use the =?base64?…?= form and is decoded before comparison.
// Every failure is a 400.
func CheckMetadataHeaders(m Message, h http.Header) error {
	var vals [3]string
	var present [3]bool
	for k, vs := range h {
		which, underscore := metadataHeader(k)
		if which < 0 {
			continue
		}
		if underscore {
			return headerError(k, "spelled with '_'")
		}
		if len(vs) == 0 {
			continue
		}
		if present[which] || len(vs) > 1 {
			return headerError(k, "sent more than once")
		}
		vals[which], present[which] = vs[0], true
	}
	version, method, name := vals[0], vals[1], vals[2]
	hasVersion, hasMethod, hasName := present[0], present[1], present[2]

	if m.Batch {
		for _, c := range m.Calls {
			if c.ProtocolVersion != "" {
				return &Error{Status: 400, Reason: "batch carries a _meta protocol version"}
			}
		}
		if hasMethod || hasName {
			return &Error{Status: 400, Reason: "Mcp-Method or Mcp-Name on a batch"}
		}
		if hasVersion && modernVersion(version) {
			return headerError(headerVersion, "requires a single message")
		}
		return nil
	}
	if len(m.Calls) != 1 {
		return &Error{Status: 400, Reason: "no message to check headers against"}
	}
	c := m.Calls[0]
	named := c.Method == methodToolsCall || c.Method == methodPromptsGet || c.Method == methodResourcesRead
	modern := c.ProtocolVersion != ""

	switch {
	case modern && !hasVersion:
		return headerError(headerVersion, "missing")
	case modern && version != c.ProtocolVersion:
		return headerError(headerVersion, "does not match the body")
	case !modern && hasVersion && modernVersion(version):
		return headerError(headerVersion, "names a version whose body must carry _meta protocolVersion")
	}

	switch {
	case hasMethod && (!plainHeaderValue(method) || method != c.Method):
		return headerError(headerMethod, "does not match the body")
	case !hasMethod && modern && c.Kind == Request:
		return headerError(headerMethod, "missing")
	}

	switch {
	case hasName && !named:
		return headerError(headerName, "sent for a method without a name")
	case hasName:
		v, ok := decodeHeaderValue(name)
		if !ok {
			return headerError(headerName, "malformed")
		}
		if v != c.Name {
			return headerError(headerName, "does not match the body")
		}
	case modern && named && c.Kind == Request:
		return headerError(headerName, "missing")
	}
	return nil
}

func headerError(header, what string) *Error {
	// The header name is one of ours or was matched against one of ours,
	// but could be a client's '_' spelling: show only the canonical name.
	if which, _ := metadataHeader(header); which >= 0 {
		header = [...]string{headerVersion, headerMethod, headerName}[which]
	}
	return &Error{Status: 400, Reason: header + " header " + what}
}

// metadataHeader says which metadata header k names, case-insensitively and
// treating '_' as '-', and whether it used '_'.
func metadataHeader(k string) (which int, underscore bool) {
	for i, name := range [...]string{headerVersion, headerMethod, headerName} {
		if len(k) != len(name) {
			continue
		}
		match, us := true, false
		for j := 0; j < len(k) && match; j++ {
			c := k[j]
			if c == '_' && name[j] == '-' {
				us = true
				continue
			}
			match = lowerASCII(c) == lowerASCII(name[j])
		}
		if match {
			return i, us
		}
	}
	return -1, false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// modernVersion reports whether a protocol version header names
// 2026-07-28 or later. Versions are dates, so they order as strings; anything
// not shaped like a date is left for the upstream to refuse.
func modernVersion(v string) bool {
	if len(v) != len(firstModernVersion) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i == 4 || i == 7 {
			if v[i] != '-' {
				return false
			}
		} else if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v >= firstModernVersion
}

// The sentinel that marks a base64-encoded header value (SEP-2243). The
// markers are case-sensitive.
const (
	sentinelPrefix = "=?base64?"
	sentinelSuffix = "?="
)

// decodeHeaderValue returns the value a Mcp-Name header stands for. A value
// that starts like the sentinel must be a complete, canonical standard
// base64 sentinel of UTF-8 text (clients must encode any literal value of
// that shape); any other value must be plain visible ASCII or spaces, which
// is all a conforming client sends unencoded.
func decodeHeaderValue(v string) (string, bool) {
	if !strings.HasPrefix(v, sentinelPrefix) {
		return v, plainHeaderValue(v)
	}
	if len(v) < len(sentinelPrefix)+len(sentinelSuffix) || !strings.HasSuffix(v, sentinelSuffix) {
		return "", false
	}
	d, err := base64.StdEncoding.Strict().DecodeString(v[len(sentinelPrefix) : len(v)-len(sentinelSuffix)])
	if err != nil || !utf8.Valid(d) {
		return "", false
	}
	return string(d), true
}

func plainHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
