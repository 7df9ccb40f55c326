package jsonrpc

import (
	"bytes"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting of objects and arrays. The scanner recurses once
// per level, so the bound is what keeps a hostile body from growing the
// goroutine stack without limit; real MCP messages stay far below it.
const maxDepth = 64

// smallObject is how many keys of one object are checked for duplicates
// pairwise as they arrive, on the stack. Larger objects are sorted once at
// their end instead, so a body made of thousands of keys costs n·log n, not n².
const smallObject = 16

// span locates the contents of a JSON string (between the quotes) in the body.
// esc records whether the contents hold escapes; without them the raw bytes
// are the decoded value, which is the common, fast case.
type span struct {
	off, end int
	esc      bool
}

// parser validates and walks one body. It keeps the first error and stops.
type parser struct {
	buf []byte
	pos int
	err *Error
}

func (p *parser) fail(at int, reason string) bool {
	if p.err == nil {
		p.err = &Error{Status: 400, Reason: reason + " at byte " + strconv.Itoa(at)}
	}
	return false
}

func (p *parser) skipWS() {
	for p.pos < len(p.buf) {
		switch p.buf[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the byte at the cursor, or 0 at the end of the body. A NUL
// byte is never valid where peek is used, so 0 doubles as "end".
func (p *parser) peek() byte {
	if p.pos < len(p.buf) {
		return p.buf[p.pos]
	}
	return 0
}

// plain marks the bytes that need no attention inside a string: printable
// ASCII other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string starting at the cursor (which is on its opening
// quote). It rejects control characters, invalid UTF-8 and escapes that do
// not decode to a Unicode scalar value, so every accepted string decodes the
// same way in every JSON implementation (Go would substitute U+FFFD, JS and
// Python would keep lone surrogates).
func (p *parser) str() (span, bool) {
	b := p.buf
	i := p.pos + 1
	s := span{off: i}
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return s, p.fail(p.pos, "unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.end = i
			p.pos = i + 1
			return s, true
		case c == '\\':
			n := p.escape(i)
			if n == 0 {
				return s, false
			}
			s.esc = true
			i += n
		case c < 0x20:
			return s, p.fail(i, "control character in string")
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return s, p.fail(i, "invalid UTF-8")
			}
			i += n
		}
	}
}

// escape validates the escape sequence at b[i] == '\\' and returns its length,
// or 0 after recording an error.
func (p *parser) escape(i int) int {
	b := p.buf
	if i+1 >= len(b) {
		p.fail(i, "unterminated string")
		return 0
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
	default:
		p.fail(i, "invalid escape in string")
		return 0
	}
	r, ok := hex4(b, i+2)
	if !ok {
		p.fail(i, "invalid \\u escape in string")
		return 0
	}
	if !utf16.IsSurrogate(r) {
		return 6
	}
	if r < 0xdc00 && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
		if r2, ok := hex4(b, i+8); ok && 0xdc00 <= r2 && r2 < 0xe000 {
			return 12
		}
	}
	p.fail(i, "unpaired surrogate escape in string")
	return 0
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// next decodes the code point at b[i] of string contents that str has
// already validated, so it needs no error handling.
func next(b []byte, i int) (rune, int) {
	c := b[i]
	if c >= utf8.RuneSelf {
		return utf8.DecodeRune(b[i:])
	}
	if c != '\\' {
		return rune(c), 1
	}
	switch b[i+1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, _ := hex4(b, i+2)
		if utf16.IsSurrogate(r) {
			r2, _ := hex4(b, i+8)
			return utf16.DecodeRune(r, r2), 12
		}
		return r, 6
	}
	return rune(b[i+1]), 2 // '"', '\\', '/'
}

func (p *parser) raw(s span) []byte { return p.buf[s.off:s.end] }

// compare orders two strings by their decoded code points, which is also the
// byte order of their UTF-8 encodings.
func (p *parser) compare(a, b span) int {
	x, y := p.raw(a), p.raw(b)
	if !a.esc && !b.esc {
		return bytes.Compare(x, y)
	}
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		r1, n1 := next(x, i)
		r2, n2 := next(y, j)
		if r1 != r2 {
			if r1 < r2 {
				return -1
			}
			return 1
		}
		i += n1
		j += n2
	}
	switch {
	case i < len(x):
		return 1
	case j < len(y):
		return -1
	}
	return 0
}

// equalsLit reports whether the decoded string s equals lit exactly.
func (p *parser) equalsLit(s span, lit string) bool {
	exact, _ := p.matchLit(s, lit)
	return exact
}

// matchLit compares the decoded string s with the ASCII literal lit. exact is
// byte-for-byte equality of the decoded value; folded means equal only under
// Unicode simple case folding — the rule encoding/json v1 uses to match
// object keys to struct fields (see strings.EqualFold).
func (p *parser) matchLit(s span, lit string) (exact, folded bool) {
	x := p.raw(s)
	if !s.esc {
		if string(x) == lit {
			return true, false
		}
		if len(x) < len(lit) || len(x) > 3*len(lit) {
			// A fold partner of an ASCII letter is at most 3 bytes long.
			return false, false
		}
	}
	exact = true
	i, j := 0, 0
	for i < len(x) && j < len(lit) {
		r, n := next(x, i)
		c := rune(lit[j])
		if r != c {
			if !foldEq(r, c) {
				return false, false
			}
			exact = false
		}
		i += n
		j++
	}
	if i < len(x) || j < len(lit) {
		return false, false
	}
	return exact, !exact
}

// foldEq reports whether r and c are in the same Unicode simple-fold orbit,
// as strings.EqualFold decides it (so 'ſ' matches 's' and 'K' matches 'k').
func foldEq(r, c rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == c {
			return true
		}
	}
	return false
}

// decode returns the decoded value of s.
func (p *parser) decode(s span) string {
	x := p.raw(s)
	if !s.esc {
		if v, ok := intern(x); ok {
			return v
		}
		return string(x)
	}
	var arr [64]byte
	out := arr[:0]
	for i := 0; i < len(x); {
		r, n := next(x, i)
		out = utf8.AppendRune(out, r)
		i += n
	}
	if v, ok := intern(out); ok {
		return v
	}
	return string(out)
}

// addKey records key k of the object whose keys so far are keys, rejecting a
// duplicate straight away while the object is small.
func (p *parser) addKey(keys []span, k span) ([]span, bool) {
	if len(keys) < smallObject {
		for _, o := range keys {
			if o.end-o.off == k.end-k.off && !o.esc && !k.esc {
				if bytes.Equal(p.raw(o), p.raw(k)) {
					return keys, p.fail(k.off-1, "duplicate key")
				}
			} else if (o.esc || k.esc) && p.compare(o, k) == 0 {
				return keys, p.fail(k.off-1, "duplicate key")
			}
		}
	}
	return append(keys, k), true
}

// endKeys finishes duplicate detection for an object that outgrew the
// pairwise check.
func (p *parser) endKeys(keys []span) bool {
	if len(keys) <= smallObject {
		return true
	}
	slices.SortFunc(keys, p.compare)
	for i := 1; i < len(keys); i++ {
		if p.compare(keys[i-1], keys[i]) == 0 {
			return p.fail(keys[i].off-1, "duplicate key")
		}
	}
	return true
}

// key scans an object key and the colon after it, leaving the cursor on the
// value.
func (p *parser) key() (span, bool) {
	if p.peek() != '"' {
		return span{}, p.fail(p.pos, "expected object key")
	}
	k, ok := p.str()
	if !ok {
		return k, false
	}
	p.skipWS()
	if p.peek() != ':' {
		return k, p.fail(p.pos, "expected ':' after object key")
	}
	p.pos++
	p.skipWS()
	return k, true
}

// more consumes the separator after a member or element: it reports whether
// another one follows, and ok=false on anything but ',' or the closing byte.
func (p *parser) more(closing byte) (again, ok bool) {
	p.skipWS()
	switch p.peek() {
	case ',':
		p.pos++
		p.skipWS()
		return true, true
	case closing:
		p.pos++
		return false, true
	}
	if p.pos >= len(p.buf) {
		return false, p.fail(p.pos, "unexpected end of body")
	}
	return false, p.fail(p.pos, "expected ',' or '"+string(closing)+"'")
}

// open enters an object or array at the cursor, enforcing the depth bound,
// and reports whether it is empty.
func (p *parser) open(depth int, closing byte) (empty, ok bool) {
	if depth > maxDepth {
		return false, p.fail(p.pos, "nesting deeper than "+strconv.Itoa(maxDepth))
	}
	p.pos++
	p.skipWS()
	if p.peek() == closing {
		p.pos++
		return true, true
	}
	return false, true
}

// value validates any JSON value at the cursor without materialising it.
// depth is the nesting level of the container holding the value.
func (p *parser) value(depth int) bool {
	switch c := p.peek(); c {
	case '{':
		return p.object(depth + 1)
	case '[':
		return p.array(depth + 1)
	case '"':
		_, ok := p.str()
		return ok
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, ok := p.number()
			return ok
		}
		if p.pos >= len(p.buf) {
			return p.fail(p.pos, "unexpected end of body")
		}
		return p.fail(p.pos, "invalid JSON value")
	}
}

func (p *parser) object(depth int) bool {
	empty, ok := p.open(depth, '}')
	if empty || !ok {
		return ok
	}
	var local [smallObject]span
	keys := local[:0]
	for again := true; again; {
		k, ok := p.key()
		if !ok {
			return false
		}
		if keys, ok = p.addKey(keys, k); !ok || !p.value(depth) {
			return false
		}
		if again, ok = p.more('}'); !ok {
			return false
		}
	}
	return p.endKeys(keys)
}

func (p *parser) array(depth int) bool {
	empty, ok := p.open(depth, ']')
	if empty || !ok {
		return ok
	}
	for again := true; again; {
		if !p.value(depth) {
			return false
		}
		if again, ok = p.more(']'); !ok {
			return false
		}
	}
	return true
}

func (p *parser) literal(lit string) bool {
	if len(p.buf)-p.pos < len(lit) || string(p.buf[p.pos:p.pos+len(lit)]) != lit {
		return p.fail(p.pos, "invalid JSON value")
	}
	p.pos += len(lit)
	return true
}

// number validates an RFC 8259 number and reports whether it is written as an
// integer (no fraction, no exponent).
func (p *parser) number() (integer, ok bool) {
	b, i := p.buf, p.pos
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false, p.fail(p.pos, "invalid number")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false, p.fail(p.pos, "invalid number")
		}
		integer = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false, p.fail(p.pos, "invalid number")
		}
		integer = false
	}
	p.pos = i
	return integer, true
}
