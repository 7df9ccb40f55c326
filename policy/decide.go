package policy

import "slices"

const toolsCall = "tools/call"

// Caller is who sent the request, as established by token verification. A
// presented but invalid token must be answered before Decide (invalid_token),
// never passed in as an unauthenticated caller.
type Caller struct {
	Authenticated bool
	Scopes        []string // granted scopes; ignored when not authenticated
}

// Call is one JSON-RPC message of a request: its method and, for tools/call,
// params.name as decoded by the strict body parser. An empty Method stands
// for a JSON-RPC response the client sends back (to elicitation, sampling…);
// it is treated like any method not listed as anonymous.
type Call struct {
	Method string
	Tool   string
}

// Denial says how a denied request must be challenged.
type Denial uint8

const (
	// NotDenied is the Denial of an allowed request.
	NotDenied Denial = iota
	// AuthRequired: the caller presented no token; answer 401 with a
	// challenge that carries no error code (RFC 6750 §3.1).
	AuthRequired
	// InsufficientScope: the caller's token lacks scopes; answer 403
	// insufficient_scope.
	InsufficientScope
)

func (d Denial) String() string {
	switch d {
	case NotDenied:
		return "not_denied"
	case AuthRequired:
		return "auth_required"
	case InsufficientScope:
		return "insufficient_scope"
	}
	return "unknown"
}

// Decision is the verdict on a whole request.
type Decision struct {
	Allow bool
	// Anonymous: allowed without a token, so forwarded without identity
	// (anonymous methods, noauth tools, and mixed tools called without
	// signing in).
	Anonymous bool
	Denial    Denial
	// Scopes is what the challenge's scope= should list when denied: the
	// union, in first-seen order, of the scopes every call of the request
	// needs, so that one new token covers the whole batch. Nil when allowed.
	Scopes []string
	// Index, Method and Tool point at the first denied call, for messages
	// and logs; Tool is set only when that call is a tools/call. Index is -1
	// when allowed, and when denied because the request held no call.
	Index  int
	Method string
	Tool   string
}

// Decide rules on a request made of calls (one, or a batch). Every call is
// evaluated; the request is allowed only if every call is.
//
// Without a token, a call passes only if its method is an anonymous method or
// it is a tools/call of a tool whose schemes include noauth. With a valid
// token, any method other than tools/call passes, and a tools/call passes if
// one of the tool's schemes is satisfied: noauth, or an oauth2 scheme whose
// scopes were all granted. A request with no calls needs a token.
//
// The allow path allocates nothing.
func (p *Policy) Decide(c Caller, calls []Call) Decision {
	denied := -1
	for i := range calls {
		if !p.allows(c, calls[i]) {
			denied = i
			break
		}
	}
	if len(calls) > 0 && denied < 0 {
		return Decision{Allow: true, Anonymous: !c.Authenticated, Index: -1}
	}
	d := Decision{Denial: AuthRequired, Index: denied}
	if c.Authenticated {
		if len(calls) == 0 {
			return Decision{Allow: true, Index: -1}
		}
		d.Denial = InsufficientScope
	}
	if denied >= 0 {
		d.Method = calls[denied].Method
		if d.Method == toolsCall {
			d.Tool = calls[denied].Tool
		}
	}
	for _, call := range calls {
		if call.Method == toolsCall {
			d.Scopes = p.appendNeeded(d.Scopes, c, call.Tool)
		}
	}
	return d
}

func (p *Policy) allows(c Caller, call Call) bool {
	if call.Method != toolsCall {
		if c.Authenticated {
			return true
		}
		_, ok := p.anon[call.Method]
		return ok
	}
	e := p.resolve(call.Tool)
	if e.noauth {
		return true
	}
	if !c.Authenticated {
		return false
	}
	for _, s := range e.schemes {
		if s.Type == OAuth2 && missing(s.Scopes, c.Scopes) == 0 {
			return true
		}
	}
	return false
}

// appendNeeded adds the scopes a token needs for tools/call of tool. A tool
// that noauth satisfies needs none. Otherwise the oauth2 scheme chosen is the
// one missing the fewest scopes given what the caller already holds (none,
// when it holds no token), ties going to the scheme written first; all of its
// scopes are asked for, not only the missing ones, because the token a client
// obtains in response replaces the one it has. Calls the caller can already
// make contribute the scopes of the scheme that satisfies them, so a retried
// batch keeps working.
func (p *Policy) appendNeeded(dst []string, c Caller, tool string) []string {
	e := p.resolve(tool)
	if e.noauth {
		return dst
	}
	var granted []string
	if c.Authenticated {
		granted = c.Scopes
	}
	best, fewest := -1, 0
	for i, s := range e.schemes {
		if s.Type != OAuth2 {
			continue
		}
		if m := missing(s.Scopes, granted); best < 0 || m < fewest {
			best, fewest = i, m
		}
	}
	if best < 0 {
		return dst
	}
	for _, s := range e.schemes[best].Scopes {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// missing counts the scopes of need absent from granted. Both lists are
// short, so a nested scan beats building a set per request.
func missing(need, granted []string) int {
	n := 0
	for _, s := range need {
		if !slices.Contains(granted, s) {
			n++
		}
	}
	return n
}
