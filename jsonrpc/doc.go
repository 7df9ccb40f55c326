// Package jsonrpc tells the gateway, unambiguously, what an MCP request body
// asks the upstream to execute.
//
// The gateway forwards the exact bytes it inspected, so the danger is not a
// body toolgate cannot read but one that toolgate reads one way and the
// upstream (Go encoding/json v1, the TypeScript SDK, Python) another. This
// package therefore accepts only bodies that all of them read alike and
// rejects everything else with a 400; it never repairs, normalises or
// re-encodes a body. It holds no policy: it says what the calls are, the
// policy package decides about them. It imports nothing of ours.
//
// # API
//
//	func Inspect(body []byte) (Message, error)
//	func CheckContentHeaders(h http.Header) error
//	func CheckMetadataHeaders(m Message, h http.Header) error
//
// Inspect validates and extracts in one pass of a hand-written scanner: no
// maps, no reflection, nothing materialised but the decoded strings a
// decision needs (well-known methods and versions are constants, so a
// typical tools/call allocates only the Calls slice and the tool name).
// Call.ID aliases the body. Every error is an *Error whose Status is the
// HTTP status to answer with and whose Reason is safe to show a client: it
// names the rule and a byte offset, never a body or header value.
//
// # What Inspect rejects
//
//   - Anything that is not exactly one RFC 8259 value: invalid syntax, data
//     after the value (whitespace is fine), a byte order mark, a body that is
//     not an object or an array.
//   - Invalid UTF-8 anywhere, control characters in strings, and \u escapes
//     that are not a Unicode scalar value (a lone or reversed surrogate):
//     Go substitutes U+FFFD for them, JS and Python keep them.
//   - Duplicate keys in any object, compared after decoding, however deep.
//     Only the message, params and params._meta decide anything, but
//     arguments are forwarded too and 2026-07-28 mirrors some of them into
//     Mcp-Param headers, so "first wins" against "last wins" must never arise.
//   - In the message, params and params._meta, a key that equals a protocol
//     key (jsonrpc, id, method, params, result, error, name, arguments,
//     _meta, uri, io.modelcontextprotocol/protocolVersion) only under
//     Unicode simple case folding — the rule encoding/json v1 binds struct
//     fields by (Method, NAME, paramſ with U+017F). Keys inside arguments and
//     other values are tool data and may be spelled any way.
//   - jsonrpc other than the string "2.0"; a method that is not a string;
//     params that is not an object (for every method: MCP params are always
//     objects, and SDKs refuse arrays anyway); params.name or params.uri that
//     is not a string, params.arguments or params._meta that is not an
//     object, a _meta protocol version that is not a non-empty string.
//   - ids other than a string or an integer (null included, for requests and
//     responses alike).
//   - A message with both method and result/error, with both result and
//     error, with neither, a response without id or with params.
//   - tools/call without id (a notification that would still run), without
//     params or without params.name.
//   - An empty batch or a batch element that is not an object; a batch is
//     accepted only if every element is.
//   - Nesting deeper than 64 objects and arrays, counting the message.
//
// Strings are decided on their decoded value, compared exactly and
// case-sensitively: "tools\/call" and "tools\u002fcall" are tools/call,
// "Tools/Call" is an unknown method.
//
// # Headers
//
// CheckContentHeaders rejects a Content-Encoding other than identity (415),
// several Content-Type headers, one that does not parse, a charset other
// than utf-8, and RFC 2231 charset* parameters (400). It does not judge the
// media type: the body is inspected whatever it claims to be.
//
// CheckMetadataHeaders compares the 2026-07-28 request-metadata headers with
// the body. Present headers must match for every protocol version; a body
// carrying a _meta protocol version must also send MCP-Protocol-Version
// (equal to it), Mcp-Method (requests) and Mcp-Name (tools/call,
// resources/read, prompts/get). Mcp-Name may use the =?base64?…?= sentinel
// (strict standard base64 of UTF-8) and is decoded first; Mcp-Method is
// compared as sent. A header sent twice, or spelled with '_', a plain value
// outside printable ASCII, an Mcp-Name on another method, or these headers on
// a batch are all 400s.
package jsonrpc
