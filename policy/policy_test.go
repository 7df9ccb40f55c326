package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"admin_*", "admin_users", true},
		{"admin_*", "admin_", true},
		{"admin_*", "admin", false},
		{"admin_*", "xadmin_users", false},
		{"*_admin", "db_admin", true},
		{"*", "", true},
		{"*", "any/thing", true}, // unlike path.Match, '*' crosses '/'
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbY", false},
		{"a*b*c", "acbc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true}, // '?' is one character, not one byte
		{"??", "é", false},
		{"*x", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy", false},
		{"a**b", "ab", true},
		{"get_*_by_id", "get_user_by_id", true},
		{"get_*_by_id", "get_user_by_name", false},
	} {
		if got := match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestResolveOrder(t *testing.T) {
	p := mustParse(t, `
default: [{type: oauth2, scopes: [default]}]
tools:
  "*_logs":        [{type: oauth2, scopes: [suffix]}]
  "admin_*":       [{type: oauth2, scopes: [admin]}]
  "admin_read_*":  [{type: oauth2, scopes: [admin_read]}]
  admin_read_now:  [{type: oauth2, scopes: [exact]}]
  "a*b":           [{type: noauth}]
  "x?_*":          [{type: oauth2, scopes: [first]}]
  "x*_?":          [{type: oauth2, scopes: [second]}]
`)
	p.Learn("upstream_tool", []Scheme{{Type: NoAuth}})
	p.Learn("admin_learned", []Scheme{{Type: NoAuth}}) // the file's glob wins
	for _, tc := range []struct{ tool, scope string }{
		{"admin_read_now", "exact"},          // exact beats every glob
		{"admin_read_logs", "admin_read"},    // 11 literals beat 6 (admin_*) and 5 (*_logs)
		{"admin_users", "admin"},             //
		{"admin_logs", "admin"},              // admin_* (6 literals) beats *_logs (5)
		{"db_logs", "suffix"},                //
		{"xy_z", "first"},                    // equal literal counts: the first written wins
		{"admin_learned", "admin"},           // policy glob beats the upstream
		{"upstream_tool", ""},                // upstream beats default
		{"a*b", ""},                          // a key is also an exact name
		{"unlisted", "default"},              //
		{"Admin_users", "default"},           // names are case-sensitive
		{"admin_read_now ", "admin_read"},    // no trimming
		{"ADMIN_READ_NOW", "default"},        //
		{"admin_read_now\x00", "admin_read"}, //
	} {
		e := p.resolve(tc.tool)
		got := ""
		if len(e.schemes[0].Scopes) > 0 {
			got = e.schemes[0].Scopes[0]
		}
		if got != tc.scope {
			t.Errorf("%q resolved to %s, want scope %q", tc.tool, e.json, tc.scope)
		}
	}
}

func TestSchemeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   []Scheme
		want string
	}{
		{[]Scheme{{Type: NoAuth}}, `[{"type":"noauth"}]`},
		{[]Scheme{{Type: OAuth2}}, `[{"type":"oauth2","scopes":[]}]`},
		{[]Scheme{{Type: OAuth2, Scopes: []string{}}}, `[{"type":"oauth2","scopes":[]}]`},
		{[]Scheme{{Type: NoAuth}, {Type: OAuth2, Scopes: []string{"a", "b"}}}, `[{"type":"noauth"},{"type":"oauth2","scopes":["a","b"]}]`},
	} {
		b, err := json.Marshal(tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%#v) = %s, %v; want %s", tc.in, b, err, tc.want)
		}
		if got := string(newEntry(tc.in).json); got != tc.want {
			t.Errorf("precomputed %s, want %s", got, tc.want)
		}
	}
}

func TestSchemesForIsACopy(t *testing.T) {
	p := mustParse(t, example)
	s := p.SchemesFor("protected_tool")
	s[0].Scopes[0] = "mutated"
	if got := string(p.SchemesJSON("protected_tool")); strings.Contains(got, "mutated") {
		t.Errorf("SchemesFor exposed internal state: %s", got)
	}
	if p.SchemesFor("protected_tool")[0].Scopes[0] != "read" {
		t.Error("SchemesFor exposed internal state")
	}
}

func TestAdvertise(t *testing.T) {
	p := mustParse(t, example)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	const def = `[{"type":"oauth2","scopes":[]}]`

	for _, tc := range []struct {
		name, tool, declared, want string
	}{
		{"nothing declared", "up", "", def},
		{"declared noauth", "up", `[{"type":"noauth"}]`, `[{"type":"noauth"}]`},
		{"declared mixed", "up", ` [ {"type":"noauth"}, {"type":"oauth2","scopes":["x"]} ] `, `[{"type":"noauth"},{"type":"oauth2","scopes":["x"]}]`},
		{"oauth2 without scopes", "up", `[{"type":"oauth2"}]`, `[{"type":"oauth2","scopes":[]}]`},
		{"unknown type dropped", "up", `[{"type":"apikey"},{"type":"oauth2","scopes":["y"]}]`, `[{"type":"oauth2","scopes":["y"]}]`},
		{"only unknown: default", "up", `[{"type":"apikey"}]`, def},
		{"keys are case-sensitive", "up", `[{"Type":"noauth"}]`, def},
		{"noauth with scopes dropped", "up", `[{"type":"noauth","scopes":["a"]}]`, def},
		{"bad scope dropped", "up", `[{"type":"oauth2","scopes":["a b"]}]`, def},
		{"malformed", "up", `[{"type":`, def},
		{"not a list", "up", `{"type":"noauth"}`, def},
		{"null", "up", `null`, def},
		{"empty list", "up", `[]`, def},
		{"policy wins", "protected_tool", `[{"type":"noauth"}]`, `[{"type":"oauth2","scopes":["read","write"]}]`},
		{"policy glob wins", "admin_x", `[{"type":"noauth"}]`, `[{"type":"oauth2","scopes":["admin"]}]`},
		{"too big", "up", `[{"type":"noauth"}` + strings.Repeat(" ", MaxLearnedSize) + `]`, def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Learn("up", []Scheme{{Type: OAuth2, Scopes: []string{"stale"}}})
			var declared json.RawMessage
			if tc.declared != "" {
				declared = raw(tc.declared)
			}
			if got := string(p.Advertise(tc.tool, declared)); got != tc.want {
				t.Errorf("Advertise = %s, want %s", got, tc.want)
			}
			if got := string(p.SchemesJSON(tc.tool)); got != tc.want {
				t.Errorf("enforced %s, advertised %s: they must agree", got, tc.want)
			}
		})
	}
}

func TestAdvertiseUnchangedIsNotReparsed(t *testing.T) {
	p := mustParse(t, "{}")
	a := p.Advertise("t", json.RawMessage(`[{"type":"noauth"}]`))
	b := p.Advertise("t", json.RawMessage(`[{"type":"noauth"}]`))
	if &a[0] != &b[0] {
		t.Error("an identical declaration was parsed again")
	}
	c := p.Advertise("t", json.RawMessage(`[{"type":"oauth2"}]`))
	if string(c) != `[{"type":"oauth2","scopes":[]}]` {
		t.Errorf("changed declaration not picked up: %s", c)
	}
}

func TestLearnBounds(t *testing.T) {
	p := mustParse(t, "{}")
	noauth := []Scheme{{Type: NoAuth}}
	const extra = 25
	for i := range MaxLearned + extra {
		p.Learn(fmt.Sprintf("tool%d", i), noauth)
	}
	if n := p.learned.len(); n != MaxLearned {
		t.Fatalf("learned %d tools, want the bound %d", n, MaxLearned)
	}
	// The least recently learned went first and fell back to the default.
	for i := range extra {
		if got := p.SchemesFor(fmt.Sprintf("tool%d", i)); got[0].Type != OAuth2 {
			t.Errorf("tool%d still learned after eviction", i)
		}
	}
	if got := p.SchemesFor(fmt.Sprintf("tool%d", MaxLearned+extra-1)); got[0].Type != NoAuth {
		t.Error("the newest tool was not learned")
	}
	// Re-learning refreshes recency: tool25 survives the next eviction.
	p.Learn("tool25", noauth)
	p.Learn("newcomer", noauth)
	if p.SchemesFor("tool25")[0].Type != NoAuth {
		t.Error("a refreshed tool was evicted")
	}
	if p.SchemesFor("tool26")[0].Type != OAuth2 {
		t.Error("the least recently learned tool was kept")
	}
	// Forgetting frees a slot.
	p.Learn("newcomer", nil)
	if n := p.learned.len(); n != MaxLearned-1 {
		t.Errorf("after forgetting: %d", n)
	}
	// Oversized entries are not learned.
	p.Learn(strings.Repeat("n", MaxLearnedSize), noauth)
	if n := p.learned.len(); n != MaxLearned-1 {
		t.Errorf("an oversized entry was learned")
	}
}

func TestLearnSanitizes(t *testing.T) {
	p := mustParse(t, "{}")
	p.Learn("t", []Scheme{{Type: "apikey"}, {Type: NoAuth, Scopes: []string{"x"}}, {Type: OAuth2, Scopes: []string{"ok", "ok"}}})
	if got, want := p.SchemesFor("t"), []Scheme{{Type: OAuth2, Scopes: []string{"ok"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("learned %#v, want %#v", got, want)
	}
	p.Learn("t", []Scheme{{Type: "apikey"}})
	if got := p.SchemesFor("t"); got[0].Type != OAuth2 || len(got[0].Scopes) != 0 {
		t.Errorf("nothing usable should forget the tool, got %#v", got)
	}
}

func TestConcurrentLearnAndDecide(t *testing.T) {
	p := mustParse(t, example)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				tool := fmt.Sprintf("t%d", (g*2000+i)%300)
				switch i % 3 {
				case 0:
					p.Learn(tool, []Scheme{{Type: NoAuth}})
				case 1:
					p.Advertise(tool, json.RawMessage(`[{"type":"oauth2","scopes":["s"]}]`))
				default:
					p.Advertise(tool, nil)
				}
			}
		}()
		go func() {
			defer wg.Done()
			c := Caller{Authenticated: true, Scopes: []string{"s"}}
			for i := range 2000 {
				tool := fmt.Sprintf("t%d", i%300)
				d := p.Decide(c, []Call{{Method: "tools/call", Tool: tool}})
				if !d.Allow {
					t.Errorf("%s denied to a caller with every possible scope: %+v", tool, d)
					return
				}
				_ = p.SchemesJSON(tool)
			}
		}()
	}
	wg.Wait()
}

// Advertise is meant to be decorate.Decorator.Schemes; keep the shapes equal.
var _ func(string, json.RawMessage) json.RawMessage = (*Policy)(nil).Advertise

func BenchmarkAdvertise(b *testing.B) {
	p := mustParse(b, example)
	tools := make([]string, 20)
	for i := range tools {
		tools[i] = fmt.Sprintf("tool_%d", i)
	}
	declared := json.RawMessage(`[{"type":"noauth"},{"type":"oauth2","scopes":["read"]}]`)
	b.Run("undeclared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range tools {
				p.Advertise(t, nil)
			}
		}
	})
	b.Run("declared_unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range tools {
				p.Advertise(t, declared)
			}
		}
	})
}
