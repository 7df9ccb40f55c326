package policy

import (
	"encoding/json"
	"slices"
)

// Policy is a parsed policy file plus what the upstream declared about its
// own tools. Parse or Load build one; it is safe for concurrent use.
type Policy struct {
	exact    map[string]*entry // every key of tools:, globs included (a tool may be named "a*b")
	globs    []glob            // most specific first
	def      *entry
	anon     map[string]struct{}
	anonList []string
	scopes   []string
	learned  learnedStore
}

type glob struct {
	pattern  string
	literals int
	order    int
	entry    *entry
}

// fromFile returns the policy file's entry for tool, or nil when the file
// does not name it (neither exactly nor by glob). When several globs match,
// the one with the most literal (non-wildcard) characters wins and ties go
// to the one written first: admin_read_* beats admin_* for admin_read_logs
// whatever the order in the file.
func (p *Policy) fromFile(tool string) *entry {
	if e, ok := p.exact[tool]; ok {
		return e
	}
	for i := range p.globs {
		if match(p.globs[i].pattern, tool) {
			return p.globs[i].entry
		}
	}
	return nil
}

func (p *Policy) resolve(tool string) *entry {
	if e := p.fromFile(tool); e != nil {
		return e
	}
	if e := p.learned.get(tool); e != nil {
		return e
	}
	return p.def
}

// SchemesFor returns the schemes that apply to tool: the policy file's
// entry (exact, then glob), else what the upstream declared, else the
// default. The result is a copy the caller may keep.
func (p *Policy) SchemesFor(tool string) []Scheme {
	return cloneSchemes(p.resolve(tool).schemes)
}

// SchemesJSON is SchemesFor already encoded, computed once per entry so that
// decorating a tools/list response does not marshal anything. The returned
// bytes are shared: do not modify them.
func (p *Policy) SchemesJSON(tool string) json.RawMessage {
	return p.resolve(tool).json
}

// AnonymousMethods lists the JSON-RPC methods any caller may use without a
// token, in file order (for logs and documentation).
func (p *Policy) AnonymousMethods() []string {
	return slices.Clone(p.anonList)
}

// Scopes lists every scope the policy file mentions, sorted, for example to
// advertise as scopes_supported. Scopes learned from the upstream are not
// included: they change at run time.
func (p *Policy) Scopes() []string {
	return slices.Clone(p.scopes)
}

func (p *Policy) collectScopes() {
	add := func(e *entry) {
		for _, s := range e.schemes {
			for _, sc := range s.Scopes {
				if !slices.Contains(p.scopes, sc) {
					p.scopes = append(p.scopes, sc)
				}
			}
		}
	}
	add(p.def)
	for _, e := range p.exact {
		add(e)
	}
	slices.Sort(p.scopes)
}
