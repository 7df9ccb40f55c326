package proxy

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/jsonrpc"
	"github.com/toolgate/toolgate/policy"
)

// decide applies the policy to a request whose credentials are in order (p
// is nil for a request without a token). It returns nil to forward.
func (g *Gateway) decide(r *http.Request, p *auth.Principal, msgs jsonrpc.Message) *denial {
	pol := g.opt.Policy
	if pol == nil {
		return nil // whole-server mode: a verified token is all it takes
	}
	if r.Method != http.MethodPost {
		// GET opens the session's server-to-client stream and DELETE ends
		// the session; neither runs a tool. They are open to anonymous
		// callers exactly when sessions can be opened anonymously.
		if p != nil || (r.Method == http.MethodGet || r.Method == http.MethodDelete) && g.anonSessions {
			return nil
		}
		return &denial{status: http.StatusUnauthorized, scopes: g.opt.ChallengeScopes}
	}

	var buf [4]policy.Call
	calls := buf[:0]
	for _, c := range msgs.Calls {
		calls = append(calls, policy.Call{Method: c.Method, Tool: c.Name})
	}
	caller := policy.Caller{Authenticated: p != nil}
	if p != nil {
		caller.Scopes = p.Scopes
	}
	dec := pol.Decide(caller, calls)
	if dec.Allow {
		return nil
	}
	what := "this request"
	if dec.Tool != "" {
		what = "the tool " + dec.Tool
	} else if dec.Method != "" {
		what = dec.Method
	}
	// A challenge names every scope the retried request will need: the
	// tool's and REQUIRED_SCOPES. Clients replace the scope they ask for
	// with the challenge's (the TypeScript SDK does, on step-up), so naming
	// only the tool's would get a token that fails the required check.
	if dec.Denial == policy.InsufficientScope {
		return &denial{status: http.StatusForbidden, code: errInsufficientScope, scopes: withRequired(g.opt.RequiredScopes, dec.Scopes),
			desc: what + " needs scopes the token was not granted"}
	}
	scopes := withRequired(g.opt.RequiredScopes, dec.Scopes)
	if len(dec.Scopes) == 0 {
		scopes = g.opt.ChallengeScopes
	}
	return &denial{status: http.StatusUnauthorized, scopes: scopes, desc: "sign in to use " + what}
}

// challengeable reports whether a denial may be answered as a tool result:
// authentication and authorisation failures, not malformed requests or an
// issuer toolgate cannot reach.
func (d *denial) challengeable() bool {
	return d.status == http.StatusUnauthorized || d.status == http.StatusForbidden
}

// name is the denial as the request log records it.
func (d *denial) name() string {
	switch {
	case d.code != "":
		return d.code
	case d.status == http.StatusUnauthorized:
		return "auth_required"
	default:
		return http.StatusText(d.status)
	}
}

// challengeRequest answers a denied request: as a tool result carrying
// _meta["mcp/www_authenticate"] when that is the configured mode and the
// request is a single tools/call (the Apps SDK flow), else with the HTTP
// status and WWW-Authenticate header spec clients act on.
func (g *Gateway) challengeRequest(w http.ResponseWriter, r *http.Request, msgs jsonrpc.Message, d denial) {
	if !g.toolResults || !d.challengeable() || msgs.Batch || len(msgs.Calls) != 1 ||
		msgs.Calls[0].Kind != jsonrpc.Request || msgs.Calls[0].Method != "tools/call" {
		g.deny(w, d)
		return
	}
	call := msgs.Calls[0]
	text := "Sign in to use " + call.Name + "."
	if d.code == "" {
		// The Apps SDK needs error and error_description in the challenge
		// to open its sign-in UI; a missing token is reported as
		// invalid_request, as OpenAI's own examples do.
		d.code = errInvalidRequest
		d.desc = "authentication required: no access token was provided"
	}
	switch d.code {
	case errInvalidToken:
		text = "Your sign-in is no longer valid (" + d.desc + "). Sign in again to use " + call.Name + "."
	case errInsufficientScope:
		text = "Using " + call.Name + " needs more permissions: " + strings.Join(d.scopes, " ") + ". Sign in again to grant them."
	}
	challenge := g.challenge(d)
	res := toolResult{Content: []textContent{{Type: "text", Text: text}}, IsError: true,
		Meta: map[string][]string{"mcp/www_authenticate": {challenge}}}
	if modernProtocol(r, call) {
		res.ResultType = "complete"
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, http.StatusOK, toolResultBody{JSONRPC: "2.0", ID: json.RawMessage(call.ID), Result: res})
}

type toolResultBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  toolResult      `json:"result"`
}

type toolResult struct {
	Content    []textContent       `json:"content"`
	IsError    bool                `json:"isError"`
	Meta       map[string][]string `json:"_meta"`
	ResultType string              `json:"resultType,omitempty"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// modernProtocol reports a 2026-07-28 (or later) request, whose results
// carry resultType. Versions are dates, so they compare as strings.
func modernProtocol(r *http.Request, c jsonrpc.Call) bool {
	v := c.ProtocolVersion
	if v == "" {
		v = r.Header.Get("Mcp-Protocol-Version")
	}
	return len(v) == len("2026-07-28") && v >= "2026-07-28"
}

// withRequired is required followed by the scopes of want it lacks.
func withRequired(required, want []string) []string {
	if len(required) == 0 {
		return want
	}
	out := append([]string(nil), required...)
	for _, w := range want {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
