package jsonrpc

// Kind says what a JSON-RPC message is.
type Kind uint8

const (
	Request      Kind = iota + 1 // has method and id
	Notification                 // has method, no id
	Response                     // has result or error, no method
)

func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Notification:
		return "notification"
	case Response:
		return "response"
	}
	return "invalid"
}

// Message is what Inspect learned from one body.
type Message struct {
	Batch bool   // the body was a JSON array
	Calls []Call // one per message, in body order; never empty
}

// Call is one JSON-RPC message of a body, reduced to what a decision needs.
type Call struct {
	Kind Kind
	// Method is the decoded method, compared by callers exactly; "" for a
	// Response.
	Method string
	// ID is the id value exactly as sent (a JSON string with its quotes, or
	// an integer), for echoing in a synthesized response; nil when absent.
	// It aliases the body passed to Inspect.
	ID []byte
	// Name is params.name for tools/call and prompts/get, params.uri for
	// resources/read, and "" for every other method.
	Name string
	// ProtocolVersion is params._meta["io.modelcontextprotocol/protocolVersion"],
	// which 2026-07-28 requests carry; "" when absent.
	ProtocolVersion string
}

// Error is the one error Inspect and the header checks return. Reason names
// the rule that was broken and a byte offset; it never quotes the body or a
// header value, so it is safe to show a client and to log.
type Error struct {
	Status int // 400, or 415 for a Content-Encoding
	Reason string
}

func (e *Error) Error() string { return "jsonrpc: " + e.Reason }

// Methods whose params name the thing they act on.
const (
	methodToolsCall     = "tools/call"
	methodPromptsGet    = "prompts/get"
	methodResourcesRead = "resources/read"
)

// metaProtocolVersion is the _meta key 2026-07-28 requests carry their
// protocol version in.
const metaProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// protocolKeys are the keys a decision reads. In the objects on the decision
// path (the message, params, params._meta) a key that equals one of these
// only after case folding is rejected: encoding/json v1 would bind it to the
// protocol field while toolgate, the TS SDK and Python would not.
var protocolKeys = [...]string{
	keyJSONRPC:   "jsonrpc",
	keyID:        "id",
	keyMethod:    "method",
	keyParams:    "params",
	keyResult:    "result",
	keyError:     "error",
	keyName:      "name",
	keyArguments: "arguments",
	keyMeta:      "_meta",
	keyURI:       "uri",
	keyVersion:   metaProtocolVersion,
}

const (
	keyOther = iota - 1
	keyJSONRPC
	keyID
	keyMethod
	keyParams
	keyResult
	keyError
	keyName
	keyArguments
	keyMeta
	keyURI
	keyVersion
)

// Inspect validates body as one JSON-RPC message or a batch of them and
// returns what the upstream will execute. It accepts only bodies that every
// mainstream JSON parser reads the same way; anything else is an *Error with
// Status 400. It allocates the Calls slice and the decoded strings that are
// not well-known constants, never per byte of the body.
func Inspect(body []byte) (Message, error) {
	p := parser{buf: body}
	m, ok := p.body()
	if !ok {
		return Message{}, p.err
	}
	return m, nil
}

func (p *parser) body() (Message, bool) {
	if len(p.buf) == 0 {
		return Message{}, p.fail(0, "empty body")
	}
	if len(p.buf) >= 3 && p.buf[0] == 0xef && p.buf[1] == 0xbb && p.buf[2] == 0xbf {
		return Message{}, p.fail(0, "byte order mark")
	}
	p.skipWS()
	var m Message
	switch p.peek() {
	case '{':
		c, ok := p.message(1)
		if !ok {
			return m, false
		}
		m.Calls = []Call{c}
	case '[':
		m.Batch = true
		if !p.batch(&m) {
			return m, false
		}
	default:
		return m, p.fail(p.pos, "body is not a JSON object or array")
	}
	p.skipWS()
	if p.pos != len(p.buf) {
		return m, p.fail(p.pos, "data after the JSON value")
	}
	return m, true
}

func (p *parser) batch(m *Message) bool {
	empty, _ := p.open(1, ']')
	if empty {
		return p.fail(p.pos-1, "empty batch")
	}
	// Most batches are short: collect on the stack, then allocate once.
	var local [8]Call
	calls := local[:0]
	for again := true; again; {
		if p.peek() != '{' {
			return p.fail(p.pos, "batch element is not an object")
		}
		c, ok := p.message(2)
		if !ok {
			return false
		}
		calls = append(calls, c)
		if again, ok = p.more(']'); !ok {
			return false
		}
	}
	m.Calls = append([]Call(nil), calls...)
	return true
}

// facts is what one message object says, gathered in any key order and
// judged once the object is closed.
type facts struct {
	start                       int
	method, name, uri, version  span
	id                          []byte
	jsonrpc, hasMethod, params  bool
	hasName, hasURI, hasVersion bool
	hasResult, hasError         bool
}

// protocolKey classifies key k of an object on the decision path. A key that
// is a protocol key only after case folding is an error.
func (p *parser) protocolKey(k span) (int, bool) {
	if !k.esc {
		switch string(p.raw(k)) {
		case "jsonrpc":
			return keyJSONRPC, true
		case "id":
			return keyID, true
		case "method":
			return keyMethod, true
		case "params":
			return keyParams, true
		case "result":
			return keyResult, true
		case "error":
			return keyError, true
		case "name":
			return keyName, true
		case "arguments":
			return keyArguments, true
		case "_meta":
			return keyMeta, true
		case "uri":
			return keyURI, true
		case metaProtocolVersion:
			return keyVersion, true
		}
	}
	for i, lit := range protocolKeys {
		exact, folded := p.matchLit(k, lit)
		if exact {
			return i, true
		}
		if folded {
			return keyOther, p.fail(k.off-1, "key matches protocol key \""+lit+"\" only under case folding")
		}
	}
	return keyOther, true
}

// message scans the message object at the cursor. depth is its own nesting
// level.
func (p *parser) message(depth int) (Call, bool) {
	f := facts{start: p.pos}
	empty, ok := p.open(depth, '}')
	if !ok {
		return Call{}, false
	}
	if !empty && !p.members(depth, inMessage, &f) {
		return Call{}, false
	}
	return p.judge(&f)
}

// The objects on the decision path.
const (
	inMessage = iota
	inParams
	inMeta
)

// members walks the members of an object on the decision path (the cursor
// is on its first key), rejecting duplicate and case-folded keys before
// handing each value to the reader for that object.
func (p *parser) members(depth, in int, f *facts) bool {
	var local [smallObject]span
	keys := local[:0]
	for again := true; again; {
		k, ok := p.key()
		if !ok {
			return false
		}
		if keys, ok = p.addKey(keys, k); !ok {
			return false
		}
		which, ok := p.protocolKey(k)
		if !ok {
			return false
		}
		switch in {
		case inMessage:
			ok = p.messageMember(which, depth, f)
		case inParams:
			ok = p.paramsMember(which, depth, f)
		default:
			ok = p.metaMember(which, depth, f)
		}
		if !ok {
			return false
		}
		if again, ok = p.more('}'); !ok {
			return false
		}
	}
	return p.endKeys(keys)
}

func (p *parser) messageMember(which, depth int, f *facts) bool {
	switch which {
	case keyJSONRPC:
		at := p.pos
		if p.peek() != '"' {
			return p.fail(at, `jsonrpc is not "2.0"`)
		}
		s, ok := p.str()
		if !ok {
			return false
		}
		if !p.equalsLit(s, "2.0") {
			return p.fail(at, `jsonrpc is not "2.0"`)
		}
		f.jsonrpc = true
	case keyID:
		return p.id(f)
	case keyMethod:
		if p.peek() != '"' {
			return p.fail(p.pos, "method is not a string")
		}
		s, ok := p.str()
		f.method, f.hasMethod = s, true
		return ok
	case keyParams:
		if p.peek() != '{' {
			return p.fail(p.pos, "params is not an object")
		}
		f.params = true
		empty, ok := p.open(depth+1, '}')
		if empty || !ok {
			return ok
		}
		return p.members(depth+1, inParams, f)
	case keyResult:
		f.hasResult = true
		return p.value(depth)
	case keyError:
		f.hasError = true
		return p.value(depth)
	default:
		return p.value(depth)
	}
	return true
}

// id accepts what MCP allows as an id: a string or an integer. null, floats,
// exponents, booleans, objects and arrays are all read differently by
// different SDKs (or not at all), so they are rejected.
func (p *parser) id(f *facts) bool {
	start := p.pos
	switch c := p.peek(); {
	case c == '"':
		if _, ok := p.str(); !ok {
			return false
		}
	case c == '-' || '0' <= c && c <= '9':
		integer, ok := p.number()
		if !ok {
			return false
		}
		if !integer {
			return p.fail(start, "id is not a string or an integer")
		}
	default:
		return p.fail(start, "id is not a string or an integer")
	}
	f.id = p.buf[start:p.pos:p.pos]
	return true
}

func (p *parser) paramsMember(which, depth int, f *facts) bool {
	switch which {
	case keyName, keyURI:
		if p.peek() != '"' {
			return p.fail(p.pos, "params."+protocolKeys[which]+" is not a string")
		}
		s, ok := p.str()
		if which == keyName {
			f.name, f.hasName = s, true
		} else {
			f.uri, f.hasURI = s, true
		}
		return ok
	case keyArguments:
		if p.peek() != '{' {
			return p.fail(p.pos, "params.arguments is not an object")
		}
		return p.value(depth)
	case keyMeta:
		if p.peek() != '{' {
			return p.fail(p.pos, "params._meta is not an object")
		}
		empty, ok := p.open(depth+1, '}')
		if empty || !ok {
			return ok
		}
		return p.members(depth+1, inMeta, f)
	default:
		return p.value(depth)
	}
}

func (p *parser) metaMember(which, depth int, f *facts) bool {
	if which != keyVersion {
		return p.value(depth)
	}
	at := p.pos
	if p.peek() != '"' {
		return p.fail(at, "_meta protocol version is not a string")
	}
	s, ok := p.str()
	if !ok {
		return false
	}
	if s.end == s.off {
		return p.fail(at, "_meta protocol version is empty")
	}
	f.version, f.hasVersion = s, true
	return true
}

// judge applies the rules that depend on the whole message.
func (p *parser) judge(f *facts) (Call, bool) {
	var c Call
	if !f.jsonrpc {
		return c, p.fail(f.start, "jsonrpc member missing")
	}
	c.ID = f.id
	switch {
	case f.hasMethod && (f.hasResult || f.hasError):
		return c, p.fail(f.start, "message has both method and result or error")
	case f.hasMethod:
		c.Kind = Request
		if c.ID == nil {
			c.Kind = Notification
		}
		c.Method = p.decode(f.method)
	case f.hasResult && f.hasError:
		return c, p.fail(f.start, "response has both result and error")
	case f.hasResult || f.hasError:
		if c.ID == nil {
			return c, p.fail(f.start, "response has no id")
		}
		if f.params {
			return c, p.fail(f.start, "response has params")
		}
		c.Kind = Response
	default:
		return c, p.fail(f.start, "message has no method, result or error")
	}
	switch c.Method {
	case methodToolsCall:
		switch {
		case c.ID == nil:
			return c, p.fail(f.start, "tools/call has no id")
		case !f.params:
			return c, p.fail(f.start, "tools/call has no params")
		case !f.hasName:
			return c, p.fail(f.start, "tools/call has no params.name")
		}
		c.Name = p.decode(f.name)
	case methodPromptsGet:
		if f.hasName {
			c.Name = p.decode(f.name)
		}
	case methodResourcesRead:
		if f.hasURI {
			c.Name = p.decode(f.uri)
		}
	}
	if f.hasVersion {
		c.ProtocolVersion = p.decode(f.version)
	}
	return c, true
}

// intern returns the constant for well-known methods and protocol versions,
// so the common messages cost no allocation for them.
func intern(b []byte) (string, bool) {
	switch string(b) {
	case "initialize":
		return "initialize", true
	case "notifications/initialized":
		return "notifications/initialized", true
	case "ping":
		return "ping", true
	case "tools/list":
		return "tools/list", true
	case methodToolsCall:
		return methodToolsCall, true
	case "resources/list":
		return "resources/list", true
	case "resources/templates/list":
		return "resources/templates/list", true
	case methodResourcesRead:
		return methodResourcesRead, true
	case "resources/subscribe":
		return "resources/subscribe", true
	case "resources/unsubscribe":
		return "resources/unsubscribe", true
	case "prompts/list":
		return "prompts/list", true
	case methodPromptsGet:
		return methodPromptsGet, true
	case "completion/complete":
		return "completion/complete", true
	case "logging/setLevel":
		return "logging/setLevel", true
	case "notifications/cancelled":
		return "notifications/cancelled", true
	case "notifications/progress":
		return "notifications/progress", true
	case "notifications/roots/list_changed":
		return "notifications/roots/list_changed", true
	case "server/discover":
		return "server/discover", true
	case "subscriptions/listen":
		return "subscriptions/listen", true
	case "2024-11-05":
		return "2024-11-05", true
	case "2025-03-26":
		return "2025-03-26", true
	case "2025-06-18":
		return "2025-06-18", true
	case "2025-11-25":
		return "2025-11-25", true
	case "2026-07-28":
		return "2026-07-28", true
	}
	return "", false
}
