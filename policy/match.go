package policy

import (
	"strings"
	"unicode/utf8"
)

// Globs deliberately support only '*' (any run of characters, '/' included)
// and '?' (exactly one character). path.Match was rejected because its '*'
// stops at '/', character classes and escapes invite surprises, and tool
// names are not paths. A key holding '[', ']' or '\' next to a wildcard is
// refused at load time so those characters can gain a meaning later without
// silently changing existing files. Keys are always tried as exact names
// first, so a tool literally named "a*b" can still be addressed.

func isGlob(key string) bool {
	return strings.ContainsAny(key, "*?")
}

// literals counts the non-wildcard bytes of a pattern: the more literal text
// a glob pins down, the more specific it is.
func literals(pattern string) int {
	return len(pattern) - strings.Count(pattern, "*") - strings.Count(pattern, "?")
}

// match reports whether name matches pattern. It backtracks only to the most
// recent '*', which is enough for '*'-only wildcards and keeps the worst case
// at O(len(pattern)·len(name)) without allocating.
func match(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				star, mark = p, n
				p++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(name[n:])
				p++
				n += size
				continue
			default:
				if pattern[p] == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry.
		_, size := utf8.DecodeRuneInString(name[mark:])
		mark += size
		p, n = star+1, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
