package policy

import (
	"reflect"
	"testing"
)

const decidePolicy = `
default: [{type: oauth2}]
tools:
  public:    [{type: noauth}]
  mixed:     [{type: noauth}, {type: oauth2, scopes: []}]
  mixed_rw:  [{type: noauth}, {type: oauth2, scopes: [read, write]}]
  rw:        [{type: oauth2, scopes: [read, write]}]
  admin_*:   [{type: oauth2, scopes: [admin]}]
  either:    [{type: oauth2, scopes: [a, b, c]}, {type: oauth2, scopes: [d]}, {type: oauth2, scopes: [e]}]
  signed_in: [{type: oauth2, scopes: []}]
`

func call(tool string) Call         { return Call{Method: "tools/call", Tool: tool} }
func method(m string) Call          { return Call{Method: m} }
func calls(c ...Call) []Call        { return c }
func token(scopes ...string) Caller { return Caller{Authenticated: true, Scopes: scopes} }

var anonymous = Caller{}

func TestDecide(t *testing.T) {
	p := mustParse(t, decidePolicy)
	for _, tc := range []struct {
		name   string
		caller Caller
		calls  []Call
		want   Decision
	}{
		// Without a token.
		{"anonymous method", anonymous, calls(method("initialize")), Decision{Allow: true, Anonymous: true, Index: -1}},
		{"anonymous batch of anonymous methods", anonymous, calls(method("initialize"), method("notifications/initialized"), method("tools/list")), Decision{Allow: true, Anonymous: true, Index: -1}},
		{"method needs a token", anonymous, calls(method("resources/list")), Decision{Denial: AuthRequired, Index: 0, Method: "resources/list"}},
		{"client response needs a token", anonymous, calls(method("")), Decision{Denial: AuthRequired, Index: 0}},
		{"method names are case-sensitive", anonymous, calls(method("Ping")), Decision{Denial: AuthRequired, Index: 0, Method: "Ping"}},
		{"noauth tool", anonymous, calls(call("public")), Decision{Allow: true, Anonymous: true, Index: -1}},
		{"mixed tool is anonymous", anonymous, calls(call("mixed_rw")), Decision{Allow: true, Anonymous: true, Index: -1}},
		{"protected tool", anonymous, calls(call("rw")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "rw", Scopes: []string{"read", "write"}}},
		{"signed-in tool asks for no scope", anonymous, calls(call("signed_in")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "signed_in"}},
		{"unknown tool fails closed", anonymous, calls(call("nope")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "nope"}},
		{"glob", anonymous, calls(call("admin_drop")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "admin_drop", Scopes: []string{"admin"}}},
		{"cheapest scheme: fewest scopes", anonymous, calls(call("either")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "either", Scopes: []string{"d"}}},
		{"no calls", anonymous, nil, Decision{Denial: AuthRequired, Index: -1}},

		// Batches without a token: one denial denies all, scopes are the union.
		{"batch: one denied", anonymous, calls(call("public"), call("rw")), Decision{Denial: AuthRequired, Index: 1, Method: "tools/call", Tool: "rw", Scopes: []string{"read", "write"}}},
		{"batch: union of scopes", anonymous, calls(call("admin_x"), method("ping"), call("rw"), call("admin_y"), call("public")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "admin_x", Scopes: []string{"admin", "read", "write"}}},
		{"batch: method first", anonymous, calls(method("resources/read"), call("rw")), Decision{Denial: AuthRequired, Index: 0, Method: "resources/read", Scopes: []string{"read", "write"}}},

		// With a token.
		{"any method", token(), calls(method("resources/list")), Decision{Allow: true, Index: -1}},
		{"no calls with token", token(), nil, Decision{Allow: true, Index: -1}},
		{"noauth tool with identity", token(), calls(call("public")), Decision{Allow: true, Index: -1}},
		{"mixed tool with identity", token(), calls(call("mixed_rw")), Decision{Allow: true, Index: -1}},
		{"default needs any token", token(), calls(call("nope")), Decision{Allow: true, Index: -1}},
		{"all scopes granted", token("write", "read", "extra"), calls(call("rw")), Decision{Allow: true, Index: -1}},
		{"one scope missing", token("read"), calls(call("rw")), Decision{Denial: InsufficientScope, Index: 0, Method: "tools/call", Tool: "rw", Scopes: []string{"read", "write"}}},
		{"scopes are case-sensitive", token("READ", "WRITE"), calls(call("rw")), Decision{Denial: InsufficientScope, Index: 0, Method: "tools/call", Tool: "rw", Scopes: []string{"read", "write"}}},
		{"any of: second scheme", token("d"), calls(call("either")), Decision{Allow: true, Index: -1}},
		{"any of: third scheme", token("e"), calls(call("either")), Decision{Allow: true, Index: -1}},
		{"any of: partial schemes do not add up", token("a", "b"), calls(call("either")), Decision{Denial: InsufficientScope, Index: 0, Method: "tools/call", Tool: "either", Scopes: []string{"a", "b", "c"}}},
		{"fewest missing, ties to the first", token("x"), calls(call("either")), Decision{Denial: InsufficientScope, Index: 0, Method: "tools/call", Tool: "either", Scopes: []string{"d"}}},

		// Batches with a token: scopes of allowed calls are kept so the new token covers the retry.
		{"batch keeps satisfied scopes", token("read", "write"), calls(call("rw"), call("admin_x")), Decision{Denial: InsufficientScope, Index: 1, Method: "tools/call", Tool: "admin_x", Scopes: []string{"read", "write", "admin"}}},
		{"batch: noauth adds nothing", token(), calls(call("mixed_rw"), call("admin_x")), Decision{Denial: InsufficientScope, Index: 1, Method: "tools/call", Tool: "admin_x", Scopes: []string{"admin"}}},
		{"batch allowed", token("admin", "d"), calls(method("resources/list"), call("admin_x"), call("either"), call("public")), Decision{Allow: true, Index: -1}},

		// Granted scopes of an unauthenticated caller are ignored.
		{"scopes without token", Caller{Scopes: []string{"read", "write"}}, calls(call("rw")), Decision{Denial: AuthRequired, Index: 0, Method: "tools/call", Tool: "rw", Scopes: []string{"read", "write"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Decide(tc.caller, tc.calls); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

func TestDecideAnonymousMethodsConfigured(t *testing.T) {
	p := mustParse(t, "anonymous_methods: [initialize, resources/list]\n")
	if d := p.Decide(anonymous, calls(method("resources/list"))); !d.Allow {
		t.Errorf("configured anonymous method denied: %+v", d)
	}
	if d := p.Decide(anonymous, calls(method("tools/list"))); d.Allow {
		t.Error("tools/list is anonymous only by default; an explicit list replaces the default")
	}
}

func TestDecideUpstreamDeclared(t *testing.T) {
	p := mustParse(t, decidePolicy)
	p.Learn("up_public", []Scheme{{Type: NoAuth}})
	p.Learn("up_scoped", []Scheme{{Type: OAuth2, Scopes: []string{"s"}}})
	p.Learn("rw", []Scheme{{Type: NoAuth}}) // the file names rw: ignored
	if d := p.Decide(anonymous, calls(call("up_public"))); !d.Allow || !d.Anonymous {
		t.Errorf("upstream noauth: %+v", d)
	}
	if d := p.Decide(token(), calls(call("up_scoped"))); d.Allow || d.Denial != InsufficientScope || !reflect.DeepEqual(d.Scopes, []string{"s"}) {
		t.Errorf("upstream scopes not enforced: %+v", d)
	}
	if d := p.Decide(anonymous, calls(call("rw"))); d.Allow {
		t.Errorf("upstream overrode the policy file: %+v", d)
	}
}

func TestDecideAllowPathAllocatesNothing(t *testing.T) {
	p := mustParse(t, decidePolicy)
	p.Learn("up", []Scheme{{Type: NoAuth}})
	batch := calls(method("initialize"), call("public"), call("mixed"), call("up"))
	authed := calls(call("rw"), call("admin_x"), call("either"), call("nope"), method("resources/list"))
	c := token("read", "write", "admin", "e")
	if n := testing.AllocsPerRun(100, func() {
		if !p.Decide(anonymous, batch).Allow || !p.Decide(c, authed).Allow {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Errorf("allow path allocates %v times per run", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	p := mustParse(b, decidePolicy)
	b.Run("anonymous_noauth", func(b *testing.B) {
		cs := calls(call("public"))
		b.ReportAllocs()
		for b.Loop() {
			p.Decide(anonymous, cs)
		}
	})
	b.Run("token_glob", func(b *testing.B) {
		cs := calls(call("admin_users"))
		c := token("openid", "email", "admin")
		b.ReportAllocs()
		for b.Loop() {
			p.Decide(c, cs)
		}
	})
	b.Run("denied_batch", func(b *testing.B) {
		cs := calls(call("rw"), call("admin_x"))
		b.ReportAllocs()
		for b.Loop() {
			p.Decide(anonymous, cs)
		}
	})
}
