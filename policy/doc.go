// Package policy holds toolgate's per-tool access model: the OpenAI Apps SDK
// securitySchemes (noauth, oauth2 with scopes), the operator's policy file
// (TOOL_POLICY_FILE) and the decision whether a request's JSON-RPC calls may
// pass for a given caller.
//
// One Policy drives both what tools/list advertises (SchemesJSON, Advertise)
// and what tools/call enforces (Decide), so the two cannot drift apart.
//
// Resolution order for a tool name: an exact entry of the policy file, then
// the most specific glob of the policy file, then what the upstream itself
// declared in its tools/list (learned at run time, bounded by MaxLearned),
// then the file's default, which is [{type: oauth2}] when omitted: a tool
// nobody described needs a token.
//
// The package must never do I/O beyond reading the policy file in Load, never
// look at HTTP or raw JSON-RPC bodies (the jsonrpc package parses those and
// hands over method and tool names), and never decide anything from data a
// client controls other than those decoded names: callers pass in who the
// caller is and which scopes it was granted, after token verification.
package policy
