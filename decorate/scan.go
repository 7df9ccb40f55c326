package decorate

import "encoding/json"

// A minimal JSON scanner that reports byte offsets instead of building
// values: the rewrite splices new bytes in and copies everything else, so it
// must know where each member starts and ends, and it must check the whole
// body's syntax in the same pass (a body that is not JSON stays untouched).
// UTF-8 is not checked: bytes are copied, never reinterpreted.

// maxDepth bounds nesting so that a hostile body cannot exhaust the stack;
// deeper bodies are left unchanged. encoding/json uses the same limit.
const maxDepth = 10000

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// str scans the string token at b[i] == '"'. It returns the index after the
// closing quote and whether the token holds escapes.
func str(b []byte, i int) (end int, esc, ok bool) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !hex(b[i+2]) || !hex(b[i+3]) || !hex(b[i+4]) || !hex(b[i+5]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			i++
		}
	}
	return 0, false, false
}

func hex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func digits(b []byte, i int) (int, bool) {
	start := i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i, i > start
}

func number(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i, _ = digits(b, i)
	default:
		return 0, false
	}
	ok := true
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(b, i+1); !ok {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(b, i); !ok {
			return 0, false
		}
	}
	return i, true
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// value scans the value starting at b[i] (no leading whitespace).
func value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := str(b, i)
		return end, ok
	case c == '{':
		end, _, _, ok := object(b, i, depth, nil)
		return end, ok
	case c == '[':
		return array(b, i, depth, nil)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return number(b, i)
	}
	return 0, false
}

// member is called for each member of an object with its key token (quotes
// included), whether the key holds escapes, and where its value starts; it
// scans the value and returns where it ends.
type member func(key []byte, esc bool, v int) (end int, ok bool)

// object scans the object at b[i] == '{'. Besides its end it returns last,
// the index just after the last member's value (just after '{' when empty),
// where a new member can be appended, and the number of members.
func object(b []byte, i, depth int, fn member) (end, last, n int, ok bool) {
	if depth++; depth > maxDepth {
		return 0, 0, 0, false
	}
	i = ws(b, i+1)
	last = i
	if i < len(b) && b[i] == '}' {
		return i + 1, last, 0, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, 0, false
		}
		ks := i
		var esc bool
		if i, esc, ok = str(b, i); !ok {
			return 0, 0, 0, false
		}
		key := b[ks:i]
		i = ws(b, i)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, 0, false
		}
		if i = ws(b, i+1); i >= len(b) {
			return 0, 0, 0, false
		}
		if fn != nil {
			i, ok = fn(key, esc, i)
		} else {
			i, ok = value(b, i, depth)
		}
		if !ok {
			return 0, 0, 0, false
		}
		last, n = i, n+1
		i = ws(b, i)
		if i >= len(b) {
			return 0, 0, 0, false
		}
		switch b[i] {
		case ',':
			i = ws(b, i+1)
		case '}':
			return i + 1, last, n, true
		default:
			return 0, 0, 0, false
		}
	}
}

// array scans the array at b[i] == '['; fn, when set, scans each element.
func array(b []byte, i, depth int, fn func(v int) (int, bool)) (int, bool) {
	if depth++; depth > maxDepth {
		return 0, false
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		if i >= len(b) {
			return 0, false
		}
		var ok bool
		if fn != nil {
			i, ok = fn(i)
		} else {
			i, ok = value(b, i, depth)
		}
		if !ok {
			return 0, false
		}
		i = ws(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = ws(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// keyIs compares a key token with a member name the way JSON clients do:
// after decoding, exactly and case-sensitively, so "na\u006de" is "name".
func keyIs(key []byte, esc bool, name string) bool {
	if !esc {
		return len(key) == len(name)+2 && string(key[1:len(key)-1]) == name
	}
	return decode(key) == name
}

// decode returns the value of a string token already known to be valid.
func decode(tok []byte) string {
	for _, c := range tok[1 : len(tok)-1] {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(tok, &s)
			return s
		}
	}
	return string(tok[1 : len(tok)-1])
}
