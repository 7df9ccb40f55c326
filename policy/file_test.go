package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const example = `
default: [{type: oauth2}]
anonymous_methods: [initialize, notifications/initialized, ping, tools/list]
tools:
  search_items:   [{type: noauth}, {type: oauth2, scopes: []}]
  protected_tool: [{type: oauth2, scopes: [read, write]}]
  "admin_*":      [{type: oauth2, scopes: [admin]}]
`

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseExample(t *testing.T) {
	p := mustParse(t, example)
	for tool, want := range map[string]string{
		"search_items":   `[{"type":"noauth"},{"type":"oauth2","scopes":[]}]`,
		"protected_tool": `[{"type":"oauth2","scopes":["read","write"]}]`,
		"admin_users":    `[{"type":"oauth2","scopes":["admin"]}]`,
		"other":          `[{"type":"oauth2","scopes":[]}]`,
	} {
		if got := string(p.SchemesJSON(tool)); got != want {
			t.Errorf("SchemesJSON(%q) = %s, want %s", tool, got, want)
		}
	}
	if got, want := p.AnonymousMethods(), defaultAnonymous; !reflect.DeepEqual(got, want) {
		t.Errorf("AnonymousMethods = %q, want %q", got, want)
	}
	if got, want := p.Scopes(), []string{"admin", "read", "write"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Scopes = %q, want %q", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	p := mustParse(t, "{}")
	if got, want := p.SchemesFor("anything"), []Scheme{{Type: OAuth2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("default = %#v, want %#v (fail closed)", got, want)
	}
	if got := p.AnonymousMethods(); !reflect.DeepEqual(got, defaultAnonymous) {
		t.Errorf("AnonymousMethods = %q, want the defaults", got)
	}
	p = mustParse(t, "anonymous_methods: []\ndefault: [{type: noauth}]")
	if got := p.AnonymousMethods(); len(got) != 0 {
		t.Errorf("explicit empty anonymous_methods became %q", got)
	}
	if got := string(p.SchemesJSON("x")); got != `[{"type":"noauth"}]` {
		t.Errorf("default = %s", got)
	}
}

func TestParseJSON(t *testing.T) {
	p := mustParse(t, `{"default":[{"type":"noauth"}],"tools":{"w":[{"type":"oauth2","scopes":["write"]}]}}`)
	if got := string(p.SchemesJSON("w")); got != `[{"type":"oauth2","scopes":["write"]}]` {
		t.Errorf("w = %s", got)
	}
	if got := string(p.SchemesJSON("r")); got != `[{"type":"noauth"}]` {
		t.Errorf("r = %s", got)
	}
}

func TestParseAnchors(t *testing.T) {
	p := mustParse(t, `
tools:
  a: &rw [{type: oauth2, scopes: [read, write]}]
  b: *rw
`)
	if got := string(p.SchemesJSON("b")); got != `[{"type":"oauth2","scopes":["read","write"]}]` {
		t.Errorf("b = %s", got)
	}
}

func TestParseScopesDeduped(t *testing.T) {
	p := mustParse(t, `tools: {t: [{type: oauth2, scopes: [a, b, a]}]}`)
	if got := string(p.SchemesJSON("t")); got != `[{"type":"oauth2","scopes":["a","b"]}]` {
		t.Errorf("t = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // each must appear in the error
	}{
		{"empty file", "", []string{"policy file is empty"}},
		{"comments only", "# nothing\n", []string{"policy file is empty"}},
		{"syntax", "tools: [", []string{"yaml:"}},
		{"two documents", "{}\n---\n{}\n", []string{"line 2: policy file holds several YAML documents"}},
		{"not a mapping", "- a\n", []string{"line 1: want a mapping"}},
		{"unknown top key", "defaults: [{type: noauth}]\n", []string{`line 1: unknown key "defaults" (want default, anonymous_methods or tools)`}},
		{"duplicate top key", "default: [{type: noauth}]\ndefault: [{type: oauth2}]\n", []string{`line 2: duplicate key "default" (first at line 1)`}},
		{"unknown scheme type", "tools:\n  admin_*: [{type: apikey}]\n", []string{`line 2: tools.admin_*[0]: unknown scheme type "apikey" (want noauth or oauth2)`}},
		{"type case", "tools:\n  t: [{type: OAuth2}]\n", []string{`tools.t[0]: unknown scheme type "OAuth2"`}},
		{"missing type", "tools:\n  t: [{scopes: [a]}]\n", []string{"line 2: tools.t[0]: missing type"}},
		{"unknown scheme key", "tools:\n  t:\n    - type: oauth2\n      scope: [a]\n", []string{`line 4: tools.t[0]: unknown key "scope" (want type or scopes)`}},
		{"noauth with scopes", "tools:\n  t: [{type: noauth, scopes: [a]}]\n", []string{"line 2: tools.t[0]: a noauth scheme takes no scopes"}},
		{"noauth with empty scopes", "tools:\n  t: [{type: noauth, scopes: []}]\n", []string{"tools.t[0]: a noauth scheme takes no scopes"}},
		{"empty list", "tools:\n  t: []\n", []string{"line 2: tools.t: empty scheme list"}},
		{"empty default", "default: []\n", []string{"line 1: default: empty scheme list"}},
		{"null default", "default:\n", []string{"line 1: default: want a list of schemes", "got null"}},
		{"scheme not a mapping", "tools:\n  t: [oauth2]\n", []string{`line 2: tools.t[0]: want a scheme such as {type: oauth2, scopes: [read]}, got "oauth2"`}},
		{"schemes not a list", "tools:\n  t: {type: noauth}\n", []string{"line 2: tools.t: want a list of schemes"}},
		{"scopes not a list", "tools:\n  t: [{type: oauth2, scopes: read}]\n", []string{`tools.t[0].scopes: want a list of scopes, got "read"`}},
		{"bad scope", "tools:\n  t: [{type: oauth2, scopes: [ok, \"a b\"]}]\n", []string{`tools.t[0].scopes[1]: "a b" is not a scope token`}},
		{"quote in scope", "tools:\n  t: [{type: oauth2, scopes: ['x\"y']}]\n", []string{`tools.t[0].scopes[0]:`, "not a scope token"}},
		{"null scope", "tools:\n  t: [{type: oauth2, scopes: [~]}]\n", []string{"tools.t[0].scopes[0]: want a scope, got null"}},
		{"type not a string", "tools:\n  t: [{type: [oauth2]}]\n", []string{"tools.t[0].type: want a scheme type, got a list"}},
		{"tools not a mapping", "tools: [a]\n", []string{"line 1: tools: want a mapping"}},
		{"duplicate tool", "tools:\n  t: [{type: noauth}]\n  t: [{type: oauth2}]\n", []string{`line 3: tools: duplicate key "t" (first at line 2)`}},
		{"empty tool name", "tools:\n  \"\": [{type: noauth}]\n", []string{"line 2: tools: empty tool name"}},
		{"bad glob class", "tools:\n  \"admin_[ab]*\": [{type: noauth}]\n", []string{`line 2: tools."admin_[ab]*": bad glob`}},
		{"bad glob escape", "tools:\n  'a\\*': [{type: noauth}]\n", []string{`tools."a\\*": bad glob`}},
		{"duplicate scheme key", "tools:\n  t: [{type: oauth2, type: noauth}]\n", []string{`tools.t[0]: duplicate key "type"`}},
		{"anonymous tools/call", "anonymous_methods: [ping, tools/call]\n", []string{"line 1: anonymous_methods[1]: tools/call cannot be anonymous"}},
		{"anonymous not a list", "anonymous_methods: ping\n", []string{"anonymous_methods: want a list of method names"}},
		{"anonymous empty name", "anonymous_methods: [ping, \"\"]\n", []string{"anonymous_methods[1]: want a method name, got an empty string"}},
		{"merge key", "tools:\n  t:\n    - <<: {type: noauth}\n", []string{`line 3: tools.t[0]: unknown key "<<"`}},
		{"every problem at once", "tools:\n  a: [{type: apikey}]\n  b: []\nbogus: 1\n", []string{
			`line 2: tools.a[0]: unknown scheme type "apikey"`,
			"line 3: tools.b: empty scheme list",
			`line 4: unknown key "bogus"`,
		}},
		{"json unknown key", `{"tools":{"t":[{"type":"oauth2","scopes":[],"extra":1}]}}`, []string{`tools.t[0]: unknown key "extra"`}},
		{"json duplicate key", `{"tools":{"t":[{"type":"noauth"}],"t":[{"type":"oauth2"}]}}`, []string{`duplicate key "t"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded (%v), want an error", p)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); err != nil {
		t.Fatalf("Load: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tools:\n  t: [{type: apikey}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `line 2: tools.t[0]: unknown scheme type "apikey"`) {
		t.Errorf("Load(bad) = %v, want the path and the place", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}
