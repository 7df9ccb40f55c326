package decorate

import (
	"bytes"
	"io"
)

// An event stream is lines ended by CRLF, LF or CR; an event is the lines up
// to a blank line; its data is the values of its data: fields joined by LF
// (WHATWG HTML, "Server-sent events", §9.2.6). Only data can change, and only
// once the event is complete, so the reader holds an event from its first
// data line to its blank line and lets every other byte through as soon as
// it has read it.

// Buffers that grew past these sizes for one large event are dropped after
// it, so a long-lived stream does not keep its largest event's memory.
const (
	keepEvent = 64 << 10
	keepOut   = 1 << 20
)

var bom = []byte("\xEF\xBB\xBF")

type sseReader struct {
	d   *Decorator
	src io.ReadCloser
	max int
	in  []byte

	out    []byte // ready for the caller, from outPos on
	outPos int
	err    error // from src, returned once out is drained

	head      []byte // start of the current line while it is unknown whether it is data
	passLine  bool   // the current line is known not to be held
	lineLen   int    // content bytes of the current line so far; 0 at its end means blank
	holding   bool   // event holds the current event from its first data line on
	event     []byte
	oversize  bool // the current event outgrew max; pass it through to its end
	pendingCR bool // the last line ended with CR at the end of a read; an LF may follow
	crHeld    bool // and that line is in event
	started   bool // past a possible byte order mark
	data      []byte
}

func (r *sseReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.outPos == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		if cap(r.out) > keepOut {
			r.out = nil
		}
		r.out, r.outPos = r.out[:0], 0
		n, err := r.src.Read(r.in)
		r.feed(r.in[:n])
		if err != nil {
			// The stream ended (or broke) mid-line or mid-event: what is
			// held goes out unchanged, as a client would never see that
			// event anyway.
			r.out = append(r.out, r.head...)
			r.head = r.head[:0]
			if r.holding {
				r.out = append(r.out, r.event...)
				r.event, r.holding = r.event[:0], false
			}
			r.err = err
		}
	}
	n := copy(p, r.out[r.outPos:])
	r.outPos += n
	return n, nil
}

func (r *sseReader) Close() error {
	return r.src.Close()
}

func (r *sseReader) feed(p []byte) {
	for len(p) > 0 {
		if r.pendingCR {
			r.pendingCR = false
			if p[0] == '\n' {
				// The second half of a CRLF split across reads.
				if r.crHeld {
					r.hold(p[:1])
				} else {
					r.out = append(r.out, '\n')
				}
				p = p[1:]
				continue
			}
		}
		i := indexEOL(p)
		if i < 0 {
			r.content(p)
			return
		}
		n := i + 1
		if p[i] == '\r' {
			if n == len(p) {
				r.pendingCR = true
			} else if p[n] == '\n' {
				n++
			}
		}
		r.content(p[:i])
		r.endLine(p[i:n])
		p = p[n:]
	}
}

func (r *sseReader) content(b []byte) {
	if len(b) == 0 {
		return
	}
	r.lineLen += len(b)
	switch {
	case r.holding:
		r.hold(b)
	case r.passLine:
		r.out = append(r.out, b...)
	default:
		r.head = append(r.head, b...)
		r.classify(false)
	}
}

// classify decides from the start of a line whether it is a data line,
// which starts (or, while holding, continues) a held event; any other line
// is released at once. complete says the whole line is in head.
func (r *sseReader) classify(complete bool) {
	h := r.head
	if !r.started {
		if !complete && len(h) < len(bom) && bytes.HasPrefix(bom, h) {
			return
		}
		r.started = true
		if bytes.HasPrefix(h, bom) {
			// A stream may open with a byte order mark, which is not part
			// of the first field's name.
			r.out = append(r.out, bom...)
			h = h[len(bom):]
			r.lineLen -= len(bom)
		}
	}
	const field = "data:"
	if !complete && len(h) < len(field) && string(h) == field[:len(h)] {
		if len(h) < len(r.head) {
			r.head = append(r.head[:0], h...)
		}
		return
	}
	if !r.oversize && (bytes.HasPrefix(h, []byte(field)) || complete && string(h) == "data") {
		r.holding = true
		r.event = r.event[:0]
		r.hold(h)
	} else {
		r.passLine = true
		r.out = append(r.out, h...)
	}
	r.head = r.head[:0]
}

func (r *sseReader) endLine(term []byte) {
	if !r.holding && !r.passLine {
		r.classify(true)
	}
	blank := r.lineLen == 0
	switch {
	case !r.holding:
		r.out = append(r.out, term...)
		r.crHeld = false
		if blank {
			r.oversize = false
		}
	case blank:
		r.dispatch()
		r.out = append(r.out, term...)
		r.crHeld = false
	default:
		r.hold(term)
		r.crHeld = r.holding
	}
	r.lineLen, r.passLine = 0, false
}

// hold appends to the held event, or, when that would pass max, releases the
// event unchanged and lets the rest of it through.
func (r *sseReader) hold(b []byte) {
	if len(r.event)+len(b) <= r.max {
		r.event = append(r.event, b...)
		return
	}
	size := len(r.event) + len(b)
	r.out = append(r.out, r.event...)
	r.out = append(r.out, b...)
	r.event = nil
	r.holding, r.oversize, r.passLine = false, true, true
	if r.d.OnOversize != nil {
		r.d.OnOversize(size)
	}
}

// dispatch releases the complete held event (without its blank line),
// decorated if its data is a tools/list result.
//
// A decorated event keeps all its lines in order, except that its data lines
// become one: the last, with the payload. Replacing the last rather than the
// first matters: a line ended by a bare CR followed by a blank line ended by
// LF would read as one CRLF, merging the event into the next, and the last
// line is the only one whose successor (the blank line) is known to be the
// same as in the input.
func (r *sseReader) dispatch() {
	ev := r.event
	r.holding = false
	defer func() {
		r.event = ev[:0]
		if cap(ev) > keepEvent {
			r.event = nil
		}
		if cap(r.data) > keepEvent {
			r.data = nil
		}
	}()

	data := r.data[:0]
	lastData := 0 // offset in ev of the last data line
	first := true
	for rest := ev; len(rest) > 0; {
		at := len(ev) - len(rest)
		line, _, next := cutLine(rest)
		rest = next
		val, ok := dataValue(line)
		if !ok {
			continue
		}
		if !first {
			data = append(data, '\n')
		}
		data = append(data, val...)
		first, lastData = false, at
	}
	r.data = data

	payload, changed := r.d.rewrite(data)
	if !changed {
		r.out = append(r.out, ev...)
		return
	}
	for rest := ev; len(rest) > 0; {
		at := len(ev) - len(rest)
		line, term, next := cutLine(rest)
		rest = next
		if _, ok := dataValue(line); !ok {
			r.out = append(r.out, line...)
			r.out = append(r.out, term...)
			continue
		}
		if at != lastData {
			continue
		}
		prefix := []byte("data:")
		if bytes.HasPrefix(line, []byte("data: ")) {
			prefix = line[:len("data: ")]
		}
		r.out = append(r.out, prefix...)
		start := len(r.out)
		r.out = append(r.out, payload...)
		// Raw CR and LF can only be whitespace in valid JSON (inside
		// strings they are escaped), so blanking them keeps the meaning
		// and makes the payload fit on one line.
		for _, c := range []byte("\n\r") {
			for p := r.out[start:]; ; {
				i := bytes.IndexByte(p, c)
				if i < 0 {
					break
				}
				p[i], p = ' ', p[i+1:]
			}
		}
		r.out = append(r.out, term...)
	}
}

// dataValue returns the value of a data field line ("data", "data:v" or
// "data: v"), and false for any other line.
func dataValue(line []byte) ([]byte, bool) {
	name, val, _ := bytes.Cut(line, []byte(":"))
	if string(name) != "data" {
		return nil, false
	}
	if len(val) > 0 && val[0] == ' ' {
		val = val[1:]
	}
	return val, true
}

// indexEOL finds the first CR or LF; two vectorised byte searches beat one
// byte-by-byte set search by far on long data lines.
func indexEOL(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	end := lf
	if end < 0 {
		end = len(b)
	}
	if cr := bytes.IndexByte(b[:end], '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// cutLine splits off the first line of b, which holds only complete lines.
func cutLine(b []byte) (line, term, rest []byte) {
	i := indexEOL(b)
	if i < 0 {
		return b, nil, nil
	}
	n := i + 1
	if b[i] == '\r' && n < len(b) && b[n] == '\n' {
		n++
	}
	return b[:i], b[i:n], b[n:]
}
