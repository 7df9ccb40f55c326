package policy

import (
	"encoding/json"
	"slices"
)

// Scheme types, spelled as the Apps SDK spells them.
const (
	NoAuth = "noauth"
	OAuth2 = "oauth2"
)

// Scheme is one way to satisfy a tool. A tool's schemes are alternatives
// (any one will do); within an OAuth2 scheme every scope is required.
type Scheme struct {
	Type   string   `json:"type"`
	Scopes []string `json:"scopes,omitempty"`
}

// MarshalJSON writes exactly the shape OpenAI reads: {"type":"noauth"} and
// {"type":"oauth2","scopes":[...]}, where an oauth2 scheme always carries
// "scopes", as [] when it needs none, because clients tell "no scopes
// needed" from "field missing".
func (s Scheme) MarshalJSON() ([]byte, error) {
	if s.Type == OAuth2 {
		scopes := s.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		return json.Marshal(struct {
			Type   string   `json:"type"`
			Scopes []string `json:"scopes"`
		}{s.Type, scopes})
	}
	return json.Marshal(struct {
		Type string `json:"type"`
	}{s.Type})
}

// validScope reports whether s is a scope token as RFC 6749 §3.3 defines it
// (1*NQCHAR). Scopes end up inside a quoted WWW-Authenticate parameter, so a
// scope with a space, '"' or '\' would corrupt every challenge that names it.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// entry is a resolved, immutable scheme list with everything the hot paths
// need precomputed: Decide must not allocate on the allow path and decoration
// must not marshal per response.
type entry struct {
	schemes []Scheme
	noauth  bool
	json    json.RawMessage
}

func newEntry(schemes []Scheme) *entry {
	e := &entry{schemes: schemes}
	for _, s := range schemes {
		if s.Type == NoAuth {
			e.noauth = true
		}
	}
	b, err := json.Marshal(schemes)
	if err != nil {
		// Schemes are strings and slices of strings; marshalling cannot fail.
		panic("policy: marshal schemes: " + err.Error())
	}
	e.json = b
	return e
}

func cloneSchemes(in []Scheme) []Scheme {
	out := make([]Scheme, len(in))
	for i, s := range in {
		out[i] = Scheme{Type: s.Type, Scopes: slices.Clone(s.Scopes)}
	}
	return out
}

// dedupe drops repeated scopes keeping first-seen order; repeats are harmless
// but would repeat in challenges.
func dedupe(scopes []string) []string {
	out := scopes[:0:0]
	for _, s := range scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
