package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// defaultAnonymous is the anonymous_methods set when the file omits it: what
// a client needs to connect and discover tools before it has signed in.
var defaultAnonymous = []string{"initialize", "notifications/initialized", "ping", "tools/list"}

// Load reads and parses the policy file at path; see Parse for the format and
// how problems are reported.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	p, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy file %s:\n%w", path, err)
	}
	return p, nil
}

// Parse parses a policy file (YAML, or JSON, which is YAML). Problems are
// reported all at once, one per line, each as "line N: place: problem", the
// place written as a path into the file such as tools.admin_*[0].scopes[1].
//
// The format:
//
//	default: [{type: oauth2}]            # tools not listed; [{type: oauth2}] when omitted
//	anonymous_methods: [initialize, notifications/initialized, ping, tools/list]  # the default
//	tools:
//	  search_items:   [{type: noauth}, {type: oauth2, scopes: []}]
//	  protected_tool: [{type: oauth2, scopes: [read, write]}]
//	  "admin_*":      [{type: oauth2, scopes: [admin]}]
//
// Unknown keys, unknown scheme types, empty scheme lists, scopes on a noauth
// scheme, scopes that are not RFC 6749 scope tokens, duplicate keys, globs
// using anything but '*' and '?', several YAML documents and an empty file are
// errors. tools/call may not be an anonymous method: that would open every
// tool at once; give tools a noauth scheme instead.
func Parse(data []byte) (*Policy, error) {
	return parse(data)
}

// Known keys are checked by hand on the node tree rather than with the
// decoder's KnownFields(true): its errors name a Go type and a line, while an
// operator needs the place in the file (tools.admin_*[0]) and every problem
// at once, not the first.

type parser struct {
	errs []error
}

func (ps *parser) fail(n *yaml.Node, place, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if place != "" {
		msg = place + ": " + msg
	}
	ps.errs = append(ps.errs, fmt.Errorf("line %d: %s", n.Line, msg))
}

func parse(data []byte) (*Policy, error) {
	ps := &parser{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("policy file is empty (write {} to accept every default)")
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		ps.fail(&extra, "", "policy file holds several YAML documents; want one")
	case !errors.Is(err, io.EOF):
		return nil, err
	}

	p := &Policy{
		exact: map[string]*entry{},
		anon:  map[string]struct{}{},
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		ps.fail(root, "", "want a mapping with default, anonymous_methods and tools, got %s", describe(root))
		return nil, errors.Join(ps.errs...)
	}

	var sawDefault, sawAnon bool
	ps.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "default":
			sawDefault = true
			if schemes, ok := ps.schemes(v, "default"); ok {
				p.def = newEntry(schemes)
			}
		case "anonymous_methods":
			sawAnon = true
			ps.methods(v, p)
		case "tools":
			ps.tools(v, p)
		default:
			ps.fail(k, "", "unknown key %q (want default, anonymous_methods or tools)", key)
		}
	})
	if !sawDefault {
		p.def = newEntry([]Scheme{{Type: OAuth2}})
	}
	if !sawAnon {
		for _, m := range defaultAnonymous {
			p.anon[m] = struct{}{}
			p.anonList = append(p.anonList, m)
		}
	}
	if len(ps.errs) > 0 {
		return nil, errors.Join(ps.errs...)
	}
	p.collectScopes()
	p.learned.init()
	return p, nil
}

// mapping walks a mapping node, rejecting non-scalar and duplicate keys
// (the node tree, unlike decoding into a map, does not catch duplicates; a
// repeated tool would otherwise silently take one of two policies).
func (ps *parser) mapping(n *yaml.Node, place string, each func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			ps.fail(k, place, "keys must be strings, got %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			ps.fail(k, place, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		each(k.Value, k, v)
	}
}

func (ps *parser) methods(n *yaml.Node, p *Policy) {
	const place = "anonymous_methods"
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, place, "want a list of method names, got %s", describe(n))
		return
	}
	for i, c := range n.Content {
		c = deref(c)
		at := place + "[" + strconv.Itoa(i) + "]"
		m, ok := ps.str(c, at, "a method name")
		if !ok {
			continue
		}
		if m == "tools/call" {
			ps.fail(c, at, "tools/call cannot be anonymous (it would open every tool); give the tools a {type: noauth} scheme instead")
			continue
		}
		if _, dup := p.anon[m]; !dup {
			p.anon[m] = struct{}{}
			p.anonList = append(p.anonList, m)
		}
	}
}

func (ps *parser) tools(n *yaml.Node, p *Policy) {
	if n.Kind != yaml.MappingNode {
		ps.fail(n, "tools", "want a mapping of tool names to scheme lists, got %s", describe(n))
		return
	}
	order := 0
	ps.mapping(n, "tools", func(name string, k, v *yaml.Node) {
		at := "tools." + placeKey(name)
		if name == "" {
			ps.fail(k, "tools", "empty tool name")
			return
		}
		if isGlob(name) && strings.ContainsAny(name, `[]\`) {
			ps.fail(k, at, `bad glob: only * and ? are wildcards; [, ] and \ are not allowed in a glob`)
			return
		}
		schemes, ok := ps.schemes(v, at)
		if !ok {
			return
		}
		e := newEntry(schemes)
		p.exact[name] = e
		if isGlob(name) {
			p.globs = append(p.globs, glob{pattern: name, literals: literals(name), order: order, entry: e})
			order++
		}
	})
	// Most literal characters first; ties keep file order (stable sort).
	sort.SliceStable(p.globs, func(i, j int) bool { return p.globs[i].literals > p.globs[j].literals })
}

func (ps *parser) schemes(n *yaml.Node, place string) ([]Scheme, bool) {
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, place, "want a list of schemes such as [{type: oauth2, scopes: [read]}], got %s", describe(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		ps.fail(n, place, "empty scheme list: no caller could ever use it; write [{type: noauth}] for a public tool")
		return nil, false
	}
	before := len(ps.errs)
	out := make([]Scheme, 0, len(n.Content))
	for i, c := range n.Content {
		if s, ok := ps.scheme(deref(c), place+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, s)
		}
	}
	return out, len(ps.errs) == before
}

func (ps *parser) scheme(n *yaml.Node, place string) (Scheme, bool) {
	if n.Kind != yaml.MappingNode {
		ps.fail(n, place, "want a scheme such as {type: oauth2, scopes: [read]}, got %s", describe(n))
		return Scheme{}, false
	}
	before := len(ps.errs)
	var s Scheme
	var typeNode, scopesNode *yaml.Node
	ps.mapping(n, place, func(key string, k, v *yaml.Node) {
		switch key {
		case "type":
			typeNode = v
		case "scopes":
			scopesNode = v
		default:
			ps.fail(k, place, "unknown key %q (want type or scopes)", key)
		}
	})
	if typeNode == nil {
		ps.fail(n, place, "missing type (want noauth or oauth2)")
		return Scheme{}, false
	}
	if t, ok := ps.str(typeNode, place+".type", "a scheme type"); ok {
		switch t {
		case NoAuth, OAuth2:
			s.Type = t
		default:
			ps.fail(typeNode, place, "unknown scheme type %q (want noauth or oauth2)", t)
		}
	}
	if scopesNode != nil {
		switch {
		case s.Type == NoAuth:
			ps.fail(scopesNode, place, "a noauth scheme takes no scopes")
		case scopesNode.Kind != yaml.SequenceNode:
			ps.fail(scopesNode, place+".scopes", "want a list of scopes, got %s", describe(scopesNode))
		default:
			s.Scopes = []string{}
			for i, c := range scopesNode.Content {
				c = deref(c)
				at := place + ".scopes[" + strconv.Itoa(i) + "]"
				scope, ok := ps.str(c, at, "a scope")
				if !ok {
					continue
				}
				if !validScope(scope) {
					ps.fail(c, at, "%q is not a scope token (printable ASCII without spaces, '\"' or '\\')", scope)
					continue
				}
				s.Scopes = append(s.Scopes, scope)
			}
			s.Scopes = dedupe(s.Scopes)
		}
	}
	return s, len(ps.errs) == before
}

func (ps *parser) str(n *yaml.Node, place, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		ps.fail(n, place, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// deref follows aliases so anchors can share scheme lists between tools.
// The schema is at most four levels deep, so following them cannot blow up.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		if n.Value == "" {
			return "an empty string"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// placeKey writes a tool name into an error's place; names that would make
// the place ambiguous are quoted.
func placeKey(name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-*?/", r)) {
			return strconv.Quote(name)
		}
	}
	return name
}
