// Package proxy is the gateway in front of the MCP endpoint: it checks the
// request's origin and credentials, verifies the token, reads and inspects
// the JSON-RPC body, and then either forwards exactly the bytes it inspected
// to the upstream or answers with the challenge MCP clients act on. Nothing
// unverified ever reaches the upstream, and no token is ever logged.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/decorate"
	"github.com/toolgate/toolgate/jsonrpc"
	"github.com/toolgate/toolgate/policy"
)

// Options configures a Gateway.
type Options struct {
	Upstream            *url.URL          // the upstream MCP endpoint
	Transport           http.RoundTripper // pooled transport (package upstream)
	Verifier            auth.Verifier
	ResourceMetadataURL string   // value of resource_metadata in challenges
	RequiredScopes      []string // every authenticated request must carry these
	// ChallengeScopes go in the scope= parameter of a 401 for a request
	// without a token: what the client should ask the authorization server for.
	ChallengeScopes    []string
	ForwardAccessToken bool     // pass Authorization to the upstream
	MaxBodyBytes       int64    // larger POST bodies get 413
	AllowedOrigins     []string // lowercase origins; empty allows any
	Log                *zap.Logger

	// Policy turns on per-tool mode (TOOL_POLICY_FILE); nil means every
	// request needs a valid token.
	Policy *policy.Policy
	// ChallengeMode is "auto", "http" or "tool-result" (CHALLENGE_MODE).
	ChallengeMode string
}

// Gateway serves the MCP endpoint. Build it with New.
type Gateway struct {
	opt          Options
	metadataURL  string
	origins      map[string]bool
	rp           *httputil.ReverseProxy
	log          *zap.Logger
	toolResults  bool                // deny tools/call with a tool result (Apps SDK)
	anonSessions bool                // the policy lets anonymous callers initialize
	decorator    *decorate.Decorator // nil without a policy
	// replayDecorator decorates GET streams without learning from them.
	replayDecorator *decorate.Decorator

	sessions *sessions

	// streams ends long-lived GET streams at shutdown, which would otherwise
	// hold http.Server.Shutdown until its deadline.
	streams     context.Context
	stopStreams context.CancelFunc
}

// New returns a gateway for o.
func New(o Options) *Gateway {
	g := &Gateway{opt: o, metadataURL: o.ResourceMetadataURL, log: o.Log}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	if len(o.AllowedOrigins) > 0 {
		g.origins = make(map[string]bool, len(o.AllowedOrigins))
		for _, origin := range o.AllowedOrigins {
			g.origins[strings.ToLower(origin)] = true
		}
	}
	g.toolResults = o.ChallengeMode == "tool-result" || (o.ChallengeMode == "auto" && o.Policy != nil)
	if o.Policy != nil {
		g.anonSessions = slices.Contains(o.Policy.AnonymousMethods(), "initialize")
		oversize := func(size int) {
			g.log.Warn("tools/list event too large to decorate; passed through unchanged", zap.Int("bytes", size))
		}
		g.decorator = &decorate.Decorator{Schemes: o.Policy.Advertise, OnOversize: oversize}
		g.replayDecorator = &decorate.Decorator{
			Schemes:    func(tool string, _ json.RawMessage) json.RawMessage { return o.Policy.SchemesJSON(tool) },
			OnOversize: oversize,
		}
	}
	g.sessions = newSessions(100_000, 24*time.Hour)
	g.streams, g.stopStreams = context.WithCancel(context.Background())
	g.rp = g.newReverseProxy()
	return g
}

// CloseStreams ends every open GET stream; call it when shutdown begins.
func (g *Gateway) CloseStreams() { g.stopStreams() }

// ServeHTTP runs one request through the steps in order: CORS preflight,
// origin, credentials, body, decision, then forward or challenge.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	var entry logEntry
	start := time.Now()
	defer func() { g.logRequest(r, rec, &entry, start) }()

	if r.Method == http.MethodOptions {
		g.preflight(rec, r)
		return
	}
	if !g.originAllowed(r) {
		rpcError(rec, http.StatusForbidden, -32600, "origin not allowed")
		return
	}
	g.setCORS(rec.Header(), r)

	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		// The transport has no other methods; forwarding them would let a
		// body past inspection to an upstream that honours overrides.
		rec.Header().Set("Allow", corsAllowMethods)
		rpcError(rec, http.StatusMethodNotAllowed, -32600, "method not allowed")
		return
	}
	if r.Method != http.MethodPost && (r.ContentLength > 0 || len(r.TransferEncoding) > 0) {
		rpcError(rec, http.StatusBadRequest, -32600, r.Method+" requests carry no body")
		return
	}
	if msg := checkHeaderMultiplicity(r); msg != "" {
		rpcError(rec, http.StatusBadRequest, -32600, msg)
		return
	}

	p, d := g.credentials(r)
	if p != nil {
		entry.sub = p.Subject
	}
	// Whole-server mode needs a token for everything: refuse before reading
	// a body. Per-tool mode must read it to know what is asked, and so must
	// tool-result challenges, which echo the request id.
	if d == nil && p == nil && g.opt.Policy == nil {
		d = &denial{status: http.StatusUnauthorized, scopes: g.opt.ChallengeScopes}
	}
	if d != nil && !(g.toolResults && d.challengeable() && r.Method == http.MethodPost) {
		entry.denied = d.name()
		g.deny(rec, *d)
		return
	}

	var msgs jsonrpc.Message
	if r.Method == http.MethodPost {
		body, status, msg := readBody(rec, r, g.opt.MaxBodyBytes)
		if status != 0 {
			rpcError(rec, status, rpcCodeFor(status), msg)
			return
		}
		msgs, status, msg = inspect(r, body)
		entry.rpcMethod = truncate(methodForLog(msgs), 64)
		if status != 0 {
			rpcError(rec, status, rpcCodeFor(status), msg)
			return
		}
		setBody(r, body)
	}
	if d == nil {
		d = g.decide(r, p, msgs)
	}
	if d != nil {
		entry.denied = d.name()
		g.challengeRequest(rec, r, msgs, *d)
		return
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && !g.sessions.admit(sid, subject(p)) {
		// Another caller's session: answered as an unknown session (the
		// transport's 404), so the client opens its own.
		entry.denied = "session_owner"
		rpcError(rec, http.StatusNotFound, -32001, "session not found")
		return
	}
	g.forward(rec, r, p, msgs)
}

// truncate keeps client-chosen strings in log lines short.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func subject(p *auth.Principal) string {
	if p == nil {
		return ""
	}
	return p.Subject
}

// credentials returns the verified principal, nil and nil when the request
// carries no credentials, or the denial for credentials that are bad. A
// token that is presented but invalid is never treated as no token.
func (g *Gateway) credentials(r *http.Request) (*auth.Principal, *denial) {
	token, d := bearerToken(r)
	if d != nil {
		if d.status == http.StatusUnauthorized {
			d.scopes = g.opt.ChallengeScopes
		}
		return nil, d
	}
	if token == "" {
		return nil, nil
	}
	p, err := g.opt.Verifier.Verify(r.Context(), token)
	if err != nil {
		var te *auth.TokenError
		if errors.As(err, &te) {
			return nil, &denial{status: http.StatusUnauthorized, code: errInvalidToken, desc: te.Reason}
		}
		// The keys are not loaded or the validation service is down: the
		// token may be good, so no invalid_token that would make the client
		// drop it, and nothing is forwarded.
		g.log.Warn("cannot verify token now", zap.Error(err))
		desc := "the authorization server's keys are not available yet; retry shortly"
		if errors.Is(err, auth.ErrUnavailable) {
			desc = "the token validation service is unavailable; retry shortly"
		}
		return nil, &denial{status: http.StatusServiceUnavailable, desc: desc}
	}
	if missing := p.Missing(g.opt.RequiredScopes); len(missing) > 0 {
		return nil, &denial{status: http.StatusForbidden, code: errInsufficientScope,
			desc: "the token lacks scopes this server requires", scopes: g.opt.RequiredScopes}
	}
	return p, nil
}

// checkHeaderMultiplicity rejects requests that repeat a header whose
// meaning the proxy and the upstream could read differently: Go takes the
// first value, some SDKs take the last.
//
// A variant spelling (Mcp_Session_Id) is refused too: servers that fold "_"
// into "-" would read it as the session id that session binding never saw.
func checkHeaderMultiplicity(r *http.Request) string {
	for _, name := range [...]string{"Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method", "Mcp-Name"} {
		if len(r.Header[name]) > 1 {
			return "the " + name + " header must appear at most once"
		}
	}
	for name := range r.Header {
		if name != "Mcp-Session-Id" && foldedEqual(name, "mcp-session-id") {
			return "the session header must be spelled Mcp-Session-Id"
		}
	}
	return ""
}

func rpcCodeFor(status int) int {
	switch status {
	case http.StatusBadRequest:
		return -32600 // invalid request
	default:
		return -32603
	}
}

// logEntry collects what the request line logs as the request goes.
type logEntry struct {
	sub       string
	rpcMethod string
	denied    string
}

func (g *Gateway) logRequest(r *http.Request, rec *recorder, e *logEntry, start time.Time) {
	if ce := g.log.Check(zap.InfoLevel, "request"); ce != nil {
		ce.Write(
			zap.String("method", r.Method),
			zap.String("rpc_method", e.rpcMethod),
			zap.Int("status", rec.status),
			zap.Duration("duration", time.Since(start)),
			zap.String("sub", e.sub),
			zap.String("denied", e.denied),
		)
	}
}
