// Package decorate adds securitySchemes to every tool of a tools/list
// result, in application/json bodies and, streaming, in text/event-stream
// bodies, because ChatGPT decides from a tool's advertised schemes whether to
// offer sign-in, and unmodified MCP servers cannot advertise them.
//
// Each tool gets a top-level "securitySchemes" and an identical
// "_meta"."securitySchemes" (OpenAI reads both); the value comes from a
// callback, so the package knows nothing of policies. Everything else is
// kept byte for byte: other members and their order, whitespace, other
// JSON-RPC messages, and in event streams every id:, event:, retry:, comment
// and unknown line with its original line ending.
//
// Decoration is advisory (enforcement happens on tools/call), so the package
// must never fail a response: malformed JSON, an oversized event or anything
// it does not understand is passed through exactly as the upstream sent it.
// It must never buffer an event stream beyond the event in progress, and it
// never touches HTTP: the caller fixes Content-Length and encodings.
package decorate
