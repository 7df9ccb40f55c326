package jsonrpc

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// hdr builds a header from name/value pairs without canonicalising, so tests
// can also send the spellings a client controls.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if strings.ContainsAny(e.Reason, "\r\n") {
		t.Fatalf("reason %q holds a line break", e.Reason)
	}
	return e.Status
}

func TestCheckContentHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want int
	}{
		{"none", hdr(), 0},
		{"json", hdr("Content-Type", "application/json"), 0},
		{"json utf-8", hdr("Content-Type", "application/json; charset=utf-8"), 0},
		{"json UTF-8 quoted", hdr("Content-Type", `application/json; Charset="UTF-8"`), 0},
		{"json utf8 alias", hdr("Content-Type", "application/json;charset=utf8"), 0},
		{"text/plain is parsed anyway", hdr("Content-Type", "text/plain"), 0},
		{"form type is parsed anyway", hdr("Content-Type", "application/x-www-form-urlencoded"), 0},
		{"empty content type", hdr("Content-Type", ""), 0},
		{"trailing semicolon", hdr("Content-Type", "application/json;"), 0},
		{"identity encoding", hdr("Content-Encoding", "identity"), 0},
		{"identity in caps with empty list elements", hdr("Content-Encoding", " , IDENTITY ,"), 0},

		{"utf-16", hdr("Content-Type", "application/json; charset=utf-16"), 400},
		{"latin1", hdr("Content-Type", "application/json; charset=ISO-8859-1"), 400},
		{"utf-7", hdr("Content-Type", "application/json; charset=utf-7"), 400},
		{"empty charset", hdr("Content-Type", `application/json; charset=""`), 400},
		{"duplicate charset", hdr("Content-Type", "application/json; charset=utf-8; charset=utf-16"), 400},
		{"RFC 2231 charset overriding plain", hdr("Content-Type", "application/json; charset=utf-16; charset*=utf-8''utf-8"), 400},
		{"RFC 2231 charset continuation", hdr("Content-Type", "application/json; CHARSET*0=utf; charset*1=-8"), 400},
		{"two content types", hdr("Content-Type", "application/json", "Content-Type", "application/json; charset=utf-16"), 400},
		{"comma joined content types", hdr("Content-Type", "application/json, text/plain; charset=utf-16"), 400},
		{"unparseable parameter", hdr("Content-Type", "application/json; charset"), 400},

		{"gzip", hdr("Content-Encoding", "gzip"), 415},
		{"br", hdr("Content-Encoding", "br"), 415},
		{"identity then gzip in one value", hdr("Content-Encoding", "identity, gzip"), 415},
		{"identity then gzip in two lines", hdr("Content-Encoding", "identity", "Content-Encoding", "gzip"), 415},
		{"encoding checked before type", hdr("Content-Encoding", "deflate", "Content-Type", "application/json; charset=utf-16"), 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(t, CheckContentHeaders(tc.h)); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
}

func b64(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }

func TestCheckMetadataHeaders(t *testing.T) {
	const v = "2026-07-28"
	modern := func(method, params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + v + `"}}}`
	}
	toolsCall := modern("tools/call", `"name":"get_weather",`)
	legacyCall := call(`{"name":"get_weather"}`)
	for _, tc := range []struct {
		name, body string
		h          http.Header
		want       int
	}{
		{"modern tools/call", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 0},
		{"modern tools/list", modern("tools/list", ""), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/list"), 0},
		{"modern resources/read", modern("resources/read", `"uri":"file:///a b.json",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "resources/read", "Mcp-Name", "file:///a b.json"), 0},
		{"modern prompts/get", modern("prompts/get", `"name":"code_review",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "prompts/get", "Mcp-Name", "code_review"), 0},
		{"base64 name", modern("tools/call", `"name":"café",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?Y2Fmw6k=?="), 0},
		{"base64 of plain name", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", b64("get_weather")), 0},
		{"base64 of a sentinel-shaped name", modern("tools/call", `"name":"=?base64?literal?=",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="), 0},
		{"base64 of leading space", modern("tools/call", `"name":" padded ",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?IHBhZGRlZCA=?="), 0},
		{"header names in any case", toolsCall, hdr("mcp-protocol-version", v, "MCP-METHOD", "tools/call", "mcp-name", "get_weather"), 0},
		{"legacy body without headers", legacyCall, hdr(), 0},
		{"legacy body with legacy version", legacyCall, hdr("Mcp-Protocol-Version", "2025-06-18"), 0},
		{"legacy body with matching optional headers", legacyCall, hdr("Mcp-Protocol-Version", "2025-11-25", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 0},
		{"legacy version not shaped like a date", legacyCall, hdr("Mcp-Protocol-Version", "DRAFT-2099"), 0},
		{"legacy batch with legacy version", `[` + legacyCall + `]`, hdr("Mcp-Protocol-Version", "2025-03-26"), 0},
		{"notification without Mcp-Method", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"` + v + `"}}}`, hdr("Mcp-Protocol-Version", v), 0},
		{"response without headers", `{"jsonrpc":"2.0","id":1,"result":{}}`, hdr(), 0},

		{"version header missing", toolsCall, hdr("Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 400},
		{"version header differs", toolsCall, hdr("Mcp-Protocol-Version", "2025-11-25", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 400},
		{"modern version header on legacy body", legacyCall, hdr("Mcp-Protocol-Version", v), 400},
		{"future version header on legacy body", legacyCall, hdr("Mcp-Protocol-Version", "2027-01-01"), 400},
		{"method header missing", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Name", "get_weather"), 400},
		{"method header differs", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/list", "Mcp-Name", "get_weather"), 400},
		{"method header differs in case", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "Tools/Call", "Mcp-Name", "get_weather"), 400},
		{"method header base64 is not decoded", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", b64("tools/call"), "Mcp-Name", "get_weather"), 400},
		{"method header differs on legacy body", legacyCall, hdr("Mcp-Method", "tools/list"), 400},
		{"name header missing", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call"), 400},
		{"name header differs", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "public_tool"), 400},
		{"name header differs in case", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "Get_Weather"), 400},
		{"name header differs on legacy body", legacyCall, hdr("Mcp-Name", "public_tool"), 400},
		{"base64 name differs", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", b64("public_tool")), 400},
		{"raw UTF-8 name header", modern("tools/call", `"name":"café",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "café"), 400},
		{"control character in name header", modern("tools/call", `"name":"a\tb",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "a\tb"), 400},
		{"sentinel without suffix", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?Z2V0X3dlYXRoZXI="), 400},
		{"sentinel too short", modern("tools/call", `"name":"",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?="), 400},
		{"sentinel in upper case is not a sentinel", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?BASE64?Z2V0X3dlYXRoZXI=?="), 400},
		{"bad base64", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?***?="), 400},
		{"unpadded base64", modern("tools/call", `"name":"ab",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?YWI?="), 400},
		{"non-canonical base64", modern("tools/call", `"name":"a",`), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?YR==?="), 400},
		{"base64 of invalid UTF-8", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?/w==?="), 400},
		{"name header for a method without a name", modern("tools/list", ""), hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/list", "Mcp-Name", ""), 400},
		{"method header on a response", `{"jsonrpc":"2.0","id":1,"result":{}}`, hdr("Mcp-Method", "tools/call"), 400},
		{"duplicate method header", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 400},
		{"duplicate name header", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather", "Mcp-Name", "public_tool"), 400},
		{"duplicate name header across spellings", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather", "mcp-name", "get_weather"), 400},
		{"duplicate version header", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), 400},
		{"underscore spelling", toolsCall, hdr("Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather", "Mcp_Name", "public_tool"), 400},
		{"underscore spelling alone", legacyCall, hdr("Mcp_Method", "tools/call"), 400},
		{"batch with method header", `[` + legacyCall + `]`, hdr("Mcp-Method", "tools/call"), 400},
		{"batch with modern version header", `[` + legacyCall + `]`, hdr("Mcp-Protocol-Version", v), 400},
		{"batch carrying a modern body", `[` + toolsCall + `]`, hdr(), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Inspect([]byte(tc.body))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got := statusOf(t, CheckMetadataHeaders(m, tc.h)); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMetadataReasonsDoNotEchoValues(t *testing.T) {
	m, err := Inspect([]byte(call(`{"name":"get_weather"}`)))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckMetadataHeaders(m, hdr("Mcp_Name", "<script>", "Mcp-Method", "<script>"))
	if err == nil || strings.Contains(err.Error(), "script") || strings.Contains(err.Error(), "Mcp_") {
		t.Errorf("CheckMetadataHeaders = %v", err)
	}
	if err := CheckMetadataHeaders(Message{}, hdr()); statusOf(t, err) != 400 {
		t.Errorf("an empty Message must not pass: %v", err)
	}
}

// FuzzMetadataHeaders checks the one property that matters: whenever the
// headers pass, they say what the body says.
func FuzzMetadataHeaders(f *testing.F) {
	f.Add([]byte(toolsCall1K), "2026-07-28", "tools/call", "search_items")
	f.Add([]byte(call(`{"name":"café"}`)), "", "tools/call", "=?base64?Y2Fmw6k=?=")
	f.Add([]byte(call(`{"name":"a"}`)), "2025-06-18", "", "=?base64?YR==?=")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`), "", "resources/read", "file:///x")
	f.Fuzz(func(t *testing.T, body []byte, version, method, name string) {
		m, err := Inspect(body)
		if err != nil {
			return
		}
		h := http.Header{}
		for k, v := range map[string]string{"Mcp-Protocol-Version": version, "Mcp-Method": method, "Mcp-Name": name} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if err := CheckMetadataHeaders(m, h); err != nil {
			statusOf(t, err)
			return
		}
		if m.Batch {
			if method != "" || name != "" {
				t.Fatalf("batch passed with Mcp-Method %q / Mcp-Name %q", method, name)
			}
			return
		}
		c := m.Calls[0]
		if method != "" && method != c.Method {
			t.Fatalf("Mcp-Method %q passed for method %q", method, c.Method)
		}
		if name != "" {
			got, ok := decodeHeaderValue(name)
			if !ok || got != c.Name {
				t.Fatalf("Mcp-Name %q passed for name %q", name, c.Name)
			}
		}
		if c.ProtocolVersion != "" && version != c.ProtocolVersion {
			t.Fatalf("MCP-Protocol-Version %q passed for body version %q", version, c.ProtocolVersion)
		}
	})
}
