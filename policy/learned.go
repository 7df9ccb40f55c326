package policy

import (
	"bytes"
	"container/list"
	"encoding/json"
	"slices"
	"sync"
)

// Bounds on what is remembered from the upstream's own declarations. An
// upstream may list any number of tools (a million, by mistake or malice);
// these keep the memory spent on them around 30 MiB in the worst case and
// far less in practice (a typical entry is under 200 bytes).
const (
	// MaxLearned is how many tools' declarations are kept. When full, the
	// tool whose declaration was least recently learned is forgotten first;
	// a forgotten tool falls back to the default until the next tools/list
	// teaches it again.
	MaxLearned = 10000
	// MaxLearnedSize caps one tool's name plus its declaration (as JSON) in
	// bytes; a bigger declaration is not learned and the default applies.
	MaxLearnedSize = 1024
)

// Learn records the schemes the upstream declares for tool, for use when the
// policy file does not name it. Entries that are not usable schemes (unknown
// type, noauth with scopes, scopes that are not scope tokens) are dropped,
// which can only make the tool harder to reach; if nothing usable remains, or
// schemes is empty, the tool is forgotten and the default applies again.
// Tools the policy file names are not recorded: the file always wins.
func (p *Policy) Learn(tool string, schemes []Scheme) {
	if p.fromFile(tool) != nil {
		return
	}
	var kept []Scheme
	for _, s := range schemes {
		if s, ok := usable(s.Type, s.Scopes, s.Scopes != nil); ok {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		p.learned.forget(tool)
		return
	}
	e := newEntry(kept)
	if len(tool)+len(e.json) > MaxLearnedSize {
		p.learned.forget(tool)
		return
	}
	p.learned.put(tool, nil, e)
}

// Advertise has the shape of decorate's callback: it learns what the upstream
// declared for tool (declared is the JSON it put in the tool's
// securitySchemes, nil when it put nothing) and returns the encoded schemes
// to advertise, which are the ones Decide enforces. An unchanged declaration
// is not parsed again, so listing the same tools repeatedly is cheap.
func (p *Policy) Advertise(tool string, declared json.RawMessage) json.RawMessage {
	if e := p.fromFile(tool); e != nil {
		return e.json
	}
	declared = bytes.TrimSpace(declared)
	if len(declared) == 0 || string(declared) == "null" || len(tool)+len(declared) > MaxLearnedSize {
		p.learned.forget(tool)
		return p.def.json
	}
	if e := p.learned.same(tool, declared); e != nil {
		return e.json
	}
	schemes := parseDeclared(declared)
	if len(schemes) == 0 {
		p.learned.forget(tool)
		return p.def.json
	}
	e := newEntry(schemes)
	p.learned.put(tool, bytes.Clone(declared), e)
	return e.json
}

// parseDeclared reads an upstream's securitySchemes value with exact,
// case-sensitive keys, keeping only the schemes it understands.
func parseDeclared(raw []byte) []Scheme {
	var items []map[string]json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []Scheme
	for _, item := range items {
		var typ string
		if v, ok := item["type"]; !ok || json.Unmarshal(v, &typ) != nil {
			continue
		}
		var scopes []string
		v, hasScopes := item["scopes"]
		if hasScopes && json.Unmarshal(v, &scopes) != nil {
			continue
		}
		if s, ok := usable(typ, scopes, hasScopes); ok {
			out = append(out, s)
		}
	}
	return out
}

func usable(typ string, scopes []string, hasScopes bool) (Scheme, bool) {
	switch typ {
	case NoAuth:
		return Scheme{Type: NoAuth}, !hasScopes || len(scopes) == 0
	case OAuth2:
		for _, s := range scopes {
			if !validScope(s) {
				return Scheme{}, false
			}
		}
		return Scheme{Type: OAuth2, Scopes: dedupe(slices.Clone(scopes))}, true
	}
	return Scheme{}, false
}

// learnedStore is a bounded map from tool name to the upstream's
// declaration. Reads (every tools/call of a tool the file does not name) take
// only the read lock; recency is refreshed on writes only, so the hot path
// never contends on the list.
type learnedStore struct {
	mu  sync.RWMutex
	m   map[string]*list.Element
	lru list.List // of *learnedItem; front = most recently learned
}

type learnedItem struct {
	tool string
	raw  []byte // the declaration it came from; nil when set through Learn
	e    *entry
}

func (s *learnedStore) init() {
	s.m = map[string]*list.Element{}
}

func (s *learnedStore) get(tool string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if el, ok := s.m[tool]; ok {
		return el.Value.(*learnedItem).e
	}
	return nil
}

// same returns the stored entry when tool was learned from exactly these
// bytes, marking it recently learned.
func (s *learnedStore) same(tool string, raw []byte) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.m[tool]
	if !ok {
		return nil
	}
	it := el.Value.(*learnedItem)
	if it.raw == nil || !bytes.Equal(it.raw, raw) {
		return nil
	}
	s.lru.MoveToFront(el)
	return it.e
}

func (s *learnedStore) put(tool string, raw []byte, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[tool]; ok {
		it := el.Value.(*learnedItem)
		it.raw, it.e = raw, e
		s.lru.MoveToFront(el)
		return
	}
	for s.lru.Len() >= MaxLearned {
		oldest := s.lru.Back()
		delete(s.m, oldest.Value.(*learnedItem).tool)
		s.lru.Remove(oldest)
	}
	s.m[tool] = s.lru.PushFront(&learnedItem{tool: tool, raw: raw, e: e})
}

func (s *learnedStore) forget(tool string) {
	// Most upstreams declare nothing, so every listed tool lands here; look
	// before taking the write lock.
	s.mu.RLock()
	_, ok := s.m[tool]
	s.mu.RUnlock()
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[tool]; ok {
		delete(s.m, tool)
		s.lru.Remove(el)
	}
}

func (s *learnedStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
