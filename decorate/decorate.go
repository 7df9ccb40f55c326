package decorate

import (
	"encoding/json"
	"io"
	"sync"
)

// DefaultMaxEvent is the largest event-stream event decorated when
// Decorator.MaxEvent is zero. A tools/list result of a few thousand tools
// fits many times over; anything bigger is passed through undecorated rather
// than held in memory.
const DefaultMaxEvent = 16 << 20

// Decorator rewrites tools/list results. The zero value is not usable:
// Schemes is required. A Decorator is safe for concurrent use if its
// callbacks are.
type Decorator struct {
	// Schemes returns the encoded securitySchemes value to write on the named
	// tool. declared is what the upstream put in the tool's securitySchemes
	// (or, failing that, in its _meta.securitySchemes), nil when nothing, so
	// the callee can learn from it. Returning nil, or bytes that are not
	// JSON, leaves that tool as it was. Tools whose name is not a string are
	// left as they were without a call.
	Schemes func(tool string, declared json.RawMessage) json.RawMessage

	// ForID, when set, limits decoration to JSON-RPC responses whose id
	// (raw JSON, nil when absent) it accepts. A proxy passes the ids of the
	// tools/list requests it forwarded, so that a result of another method
	// that merely contains a "tools" array is neither rewritten nor fed to
	// Schemes (whose declared argument may teach a policy something).
	ForID func(id json.RawMessage) bool

	// MaxEvent bounds how much of one event-stream event SSE holds in
	// memory; 0 means DefaultMaxEvent. A larger event is passed through
	// unchanged.
	MaxEvent int

	// OnOversize, when set, is called each time SSE gives up on an event
	// because it exceeded MaxEvent; size is how many bytes it had seen.
	OnOversize func(size int)
}

// JSON decorates an application/json body holding a JSON-RPC response or a
// batch (array) of them: every tool in a result's "tools" array gets a
// top-level securitySchemes and a _meta.securitySchemes, replacing any there
// were, and keeps its other members in place; an existing _meta keeps its
// other keys. A body with nothing to decorate, or that is not valid JSON, is
// returned as is (the same slice); otherwise the result is a new slice.
func (d *Decorator) JSON(body []byte) []byte {
	out, _ := d.rewrite(body)
	return out
}

// SSE wraps a text/event-stream body and decorates, event by event, the
// data of each event that is a tools/list result (see JSON). A decorated
// payload is written as a single data: line in place of the event's last
// data line, its other data lines dropped; everything else comes out byte
// for byte as it came in, line endings (CRLF, LF, CR) included. Bytes are
// released as soon as they can no longer change: lines before an event's
// first data: line at once, even unterminated, and the event from its first
// data: line on when its blank line arrives. An event larger than MaxEvent
// is released unchanged. Closing the returned reader closes r.
func (d *Decorator) SSE(r io.ReadCloser) io.ReadCloser {
	max := d.MaxEvent
	if max <= 0 {
		max = DefaultMaxEvent
	}
	return &sseReader{d: d, src: r, max: max, in: make([]byte, 32<<10)}
}

type editKind uint8

const (
	replaceValue editKind = iota // b[at:end] becomes the schemes
	insertMember                 // "securitySchemes":<schemes> is added at at
	insertMeta                   // "_meta":{"securitySchemes":<schemes>} is added at at
	replaceMeta                  // a _meta that is not an object becomes {"securitySchemes":<schemes>}
)

type edit struct {
	at, end int
	tool    int // index into rewriter.tools
	kind    editKind
	comma   bool // insertions after an existing member need a separator
}

type tool struct {
	name     []byte // string token, nil when absent or not a string
	declared []byte // the upstream's securitySchemes value
	meta     []byte // _meta.securitySchemes, used as declared when declared is nil
	schemes  []byte // nil: leave this tool alone
}

// response is a JSON-RPC response holding tools: tools[first:end].
type response struct {
	id         []byte
	first, end int
}

// rewriter holds one pass over one JSON text. Edits are collected in byte
// order while scanning and applied at the end; the callback runs only after
// the scan, since a response's id (for ForID) and each tool's name may come
// after the members to edit, and the text may yet turn out not to be JSON.
type rewriter struct {
	d         *Decorator
	b         []byte
	edits     []edit
	tools     []tool
	responses []response
}

// scratch recycles rewriters: a tools/list of a few dozen tools would
// otherwise regrow the edit and tool lists a dozen times per response.
var scratch = sync.Pool{New: func() any { return new(rewriter) }}

// release returns w to scratch without keeping any reference into the body
// it scanned, nor lists grown for an exceptionally large one.
func (w *rewriter) release() {
	clear(w.tools)
	clear(w.responses)
	w.d, w.b = nil, nil
	w.edits, w.tools, w.responses = w.edits[:0], w.tools[:0], w.responses[:0]
	if cap(w.edits) > 4096 || cap(w.tools) > 1024 {
		return
	}
	scratch.Put(w)
}

// rewrite reports whether anything changed; when not, it returns body.
func (d *Decorator) rewrite(body []byte) ([]byte, bool) {
	w := scratch.Get().(*rewriter)
	defer w.release()
	w.d, w.b = d, body
	i := ws(body, 0)
	if i == len(body) {
		return body, false
	}
	var end int
	var ok bool
	switch body[i] {
	case '{':
		end, ok = w.response(i, 0)
	case '[':
		end, ok = array(body, i, 0, func(v int) (int, bool) {
			if body[v] == '{' {
				return w.response(v, 1)
			}
			return value(body, v, 1)
		})
	default:
		end, ok = value(body, i, 0)
	}
	if !ok || ws(body, end) != len(body) {
		return body, false
	}
	// Only now that the whole text is known to be JSON may the callback
	// run: it can have effects (a policy learning from declared).
	for _, r := range w.responses {
		if w.d.ForID != nil && !w.d.ForID(r.id) {
			continue
		}
		for t := r.first; t < r.end; t++ {
			w.resolve(&w.tools[t])
		}
	}
	return w.apply()
}

func (w *rewriter) response(i, depth int) (int, bool) {
	first := len(w.tools)
	var id []byte
	end, _, _, ok := object(w.b, i, depth, func(key []byte, esc bool, v int) (int, bool) {
		switch {
		case keyIs(key, esc, "id"):
			e, ok := value(w.b, v, depth+1)
			if ok {
				id = w.b[v:e]
			}
			return e, ok
		case keyIs(key, esc, "result") && w.b[v] == '{':
			e, _, _, ok := object(w.b, v, depth+1, func(key []byte, esc bool, v int) (int, bool) {
				if keyIs(key, esc, "tools") && w.b[v] == '[' {
					return array(w.b, v, depth+2, func(t int) (int, bool) {
						if w.b[t] == '{' {
							return w.tool(t, depth+3)
						}
						return value(w.b, t, depth+3)
					})
				}
				return value(w.b, v, depth+2)
			})
			return e, ok
		}
		return value(w.b, v, depth+1)
	})
	if ok && len(w.tools) > first {
		w.responses = append(w.responses, response{id: id, first: first, end: len(w.tools)})
	}
	return end, ok
}

func (w *rewriter) resolve(t *tool) {
	if t.name == nil {
		return
	}
	declared := t.declared
	if declared == nil {
		declared = t.meta
	}
	if s := w.d.Schemes(decode(t.name), declared); s != nil && json.Valid(s) {
		t.schemes = s
	}
}

func (w *rewriter) tool(i, depth int) (int, bool) {
	ti := len(w.tools)
	w.tools = append(w.tools, tool{})
	var hasSchemes, hasMeta bool
	end, last, n, ok := object(w.b, i, depth, func(key []byte, esc bool, v int) (int, bool) {
		switch {
		case keyIs(key, esc, "name"):
			// Clients keep the last of duplicate members; so do we.
			e, ok := value(w.b, v, depth+1)
			w.tools[ti].name = nil
			if ok && w.b[v] == '"' {
				w.tools[ti].name = w.b[v:e]
			}
			return e, ok
		case keyIs(key, esc, "securitySchemes"):
			e, ok := value(w.b, v, depth+1)
			if ok {
				hasSchemes = true
				w.tools[ti].declared = w.b[v:e]
				w.edits = append(w.edits, edit{at: v, end: e, tool: ti, kind: replaceValue})
			}
			return e, ok
		case keyIs(key, esc, "_meta"):
			hasMeta = true
			if w.b[v] == '{' {
				return w.meta(v, depth+1, ti)
			}
			// _meta must be an object; one that is not cannot carry the
			// schemes, so it is replaced.
			e, ok := value(w.b, v, depth+1)
			if ok {
				w.edits = append(w.edits, edit{at: v, end: e, tool: ti, kind: replaceMeta})
			}
			return e, ok
		}
		return value(w.b, v, depth+1)
	})
	if !ok {
		return 0, false
	}
	if !hasSchemes {
		w.edits = append(w.edits, edit{at: last, end: last, tool: ti, kind: insertMember, comma: n > 0})
	}
	if !hasMeta {
		w.edits = append(w.edits, edit{at: last, end: last, tool: ti, kind: insertMeta, comma: n > 0 || !hasSchemes})
	}
	return end, true
}

func (w *rewriter) meta(i, depth, ti int) (int, bool) {
	has := false
	end, last, n, ok := object(w.b, i, depth, func(key []byte, esc bool, v int) (int, bool) {
		if keyIs(key, esc, "securitySchemes") {
			e, ok := value(w.b, v, depth+1)
			if ok {
				has = true
				w.tools[ti].meta = w.b[v:e]
				w.edits = append(w.edits, edit{at: v, end: e, tool: ti, kind: replaceValue})
			}
			return e, ok
		}
		return value(w.b, v, depth+1)
	})
	if ok && !has {
		w.edits = append(w.edits, edit{at: last, end: last, tool: ti, kind: insertMember, comma: n > 0})
	}
	return end, ok
}

func (w *rewriter) apply() ([]byte, bool) {
	grow := 0
	for _, e := range w.edits {
		if s := w.tools[e.tool].schemes; s != nil {
			grow += len(s) + len(`,"_meta":{"securitySchemes":}`)
		}
	}
	if grow == 0 {
		return w.b, false
	}
	out := make([]byte, 0, len(w.b)+grow)
	pos := 0
	for _, e := range w.edits {
		s := w.tools[e.tool].schemes
		if s == nil {
			continue
		}
		out = append(out, w.b[pos:e.at]...)
		if e.comma {
			out = append(out, ',')
		}
		switch e.kind {
		case replaceValue:
			out = append(out, s...)
		case insertMember:
			out = append(out, `"securitySchemes":`...)
			out = append(out, s...)
		case insertMeta:
			out = append(out, `"_meta":{"securitySchemes":`...)
			out = append(out, s...)
			out = append(out, '}')
		case replaceMeta:
			out = append(out, `{"securitySchemes":`...)
			out = append(out, s...)
			out = append(out, '}')
		}
		pos = e.end
	}
	return append(out, w.b[pos:]...), true
}
