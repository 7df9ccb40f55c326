package decorate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const noauth = `[{"type":"noauth"}]`

type seen struct {
	tool     string
	declared string
}

// recorder returns a Decorator that writes noauth on every tool and records
// each callback.
func recorder() (*Decorator, *[]seen) {
	var calls []seen
	return &Decorator{Schemes: func(tool string, declared json.RawMessage) json.RawMessage {
		calls = append(calls, seen{tool, string(declared)})
		return json.RawMessage(noauth)
	}}, &calls
}

func TestJSONSingle(t *testing.T) {
	d, calls := recorder()
	in := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","description":"x","inputSchema":{"type":"object"}},{"name":"b"}],"nextCursor":"c"}}`
	want := `{"jsonrpc":"2.0","id":1,"result":{"tools":[` +
		`{"name":"a","description":"x","inputSchema":{"type":"object"},"securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]}},` +
		`{"name":"b","securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]}}],"nextCursor":"c"}}`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if want := []seen{{"a", ""}, {"b", ""}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Errorf("callbacks %v, want %v", *calls, want)
	}
}

func TestJSONBatch(t *testing.T) {
	d, _ := recorder()
	in := `[{"jsonrpc":"2.0","id":1,"result":{}},` +
		`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"}]}},` +
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}},` +
		`{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"hi"}]}}]`
	want := `[{"jsonrpc":"2.0","id":1,"result":{}},` +
		`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a","securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]}}]}},` +
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}},` +
		`{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"hi"}]}}]`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestJSONExistingSchemesAndMeta(t *testing.T) {
	d, calls := recorder()
	in := `{"id":1,"result":{"tools":[` +
		`{"securitySchemes":[{"type":"oauth2","scopes":["x"]}],"name":"a","_meta":{"openai/outputTemplate":"ui://w","securitySchemes":[],"z":1}},` +
		`{"name":"b","_meta":{"openai/widgetAccessible":true}},` +
		`{"name":"c","_meta":{"securitySchemes":[{"type":"noauth"}]}},` +
		`{"name":"d","_meta":{}},` +
		`{"name":"e","_meta":null}]}}`
	want := `{"id":1,"result":{"tools":[` +
		`{"securitySchemes":[{"type":"noauth"}],"name":"a","_meta":{"openai/outputTemplate":"ui://w","securitySchemes":[{"type":"noauth"}],"z":1}},` +
		`{"name":"b","_meta":{"openai/widgetAccessible":true,"securitySchemes":[{"type":"noauth"}]},"securitySchemes":[{"type":"noauth"}]},` +
		`{"name":"c","_meta":{"securitySchemes":[{"type":"noauth"}]},"securitySchemes":[{"type":"noauth"}]},` +
		`{"name":"d","_meta":{"securitySchemes":[{"type":"noauth"}]},"securitySchemes":[{"type":"noauth"}]},` +
		`{"name":"e","_meta":{"securitySchemes":[{"type":"noauth"}]},"securitySchemes":[{"type":"noauth"}]}]}}`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Top-level declaration first, _meta's when there is no top-level one.
	want2 := []seen{{"a", `[{"type":"oauth2","scopes":["x"]}]`}, {"b", ""}, {"c", `[{"type":"noauth"}]`}, {"d", ""}, {"e", ""}}
	if fmt.Sprint(*calls) != fmt.Sprint(want2) {
		t.Errorf("callbacks %v, want %v", *calls, want2)
	}
}

func TestJSONKeepsWhitespaceAndOrder(t *testing.T) {
	d, _ := recorder()
	in := "{\n  \"result\": {\n    \"tools\": [\n      {\n        \"name\": \"a\",\n        \"annotations\": {\"readOnlyHint\": true}\n      },\n      { }\n    ]\n  },\n  \"id\": \"x\",\n  \"jsonrpc\": \"2.0\"\n}\n"
	want := "{\n  \"result\": {\n    \"tools\": [\n      {\n        \"name\": \"a\",\n        \"annotations\": {\"readOnlyHint\": true}" +
		`,"securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]}` +
		"\n      },\n      { }\n    ]\n  },\n  \"id\": \"x\",\n  \"jsonrpc\": \"2.0\"\n}\n"
	got := d.JSON([]byte(in))
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Error("output is not JSON")
	}
}

func TestJSONUntouched(t *testing.T) {
	for _, in := range []string{
		``,
		`   `,
		`null`,
		`42`,
		`"tools"`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"resources":[{"name":"r"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"a"}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":["a",1,null]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"description":"no name"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":7}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","name":null}]}}`, // the last name counts
		`{"jsonrpc":"2.0","id":1,"result":[{"tools":[{"name":"a"}]}]}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":{"tools":[{"name":"a"}]}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"nested":{"tools":[{"name":"a"}]}}}`,
		`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"tools":[{"name":"a"}]}}`,
		`[{"tools":[{"name":"a"}]}]`,
		`[]`,
		// Not JSON, or not one JSON value: never touched.
		`{"id":1,"result":{"tools":[{"name":"a"}]}`,
		`{"id":1,"result":{"tools":[{"name":"a"}]}} {}`,
		`{"id":1,"result":{"tools":[{"name":"a"}]}}x`,
		`{"id":1,"result":{"tools":[{"name":"a",}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a"}],}}`,
		`{"id":01,"result":{"tools":[{"name":"a"}]}}`,
		`{"id":1.,"result":{"tools":[{"name":"a"}]}}`,
		`{"id":tru,"result":{"tools":[{"name":"a"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a\x"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a` + "\n" + `"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a\u12"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a"}]}}` + "\x00",
		"\xEF\xBB\xBF" + `{"id":1,"result":{"tools":[{"name":"a"}]}}`,
		`{"id":1,"result":{"tools":[{"name" "a"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a"}]]}`,
		`{"id":1,"result":{"tools":[{'name':"a"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a","x":` + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + `}]}}`,
	} {
		d, calls := recorder()
		got := d.JSON([]byte(in))
		if string(got) != in {
			t.Errorf("changed %.80q\ninto     %.80q", in, got)
		}
		if len(*calls) != 0 {
			t.Errorf("callback ran for %.80q", in)
		}
	}
}

func TestJSONReturnsSameSliceWhenUnchanged(t *testing.T) {
	d, _ := recorder()
	in := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	if got := d.JSON(in); &got[0] != &in[0] {
		t.Error("an unchanged body was copied")
	}
}

func TestJSONEscapedKeysAndNames(t *testing.T) {
	d, calls := recorder()
	in := `{"id":1,"r\u0065sult":{"tool\u0073":[{"na\u006de":"caf\u00e9\/x","\u005fmeta":{"k":1},"security\u0053chemes":null}]}}`
	want := `{"id":1,"r\u0065sult":{"tool\u0073":[{"na\u006de":"caf\u00e9\/x","\u005fmeta":{"k":1,"securitySchemes":[{"type":"noauth"}]},"security\u0053chemes":[{"type":"noauth"}]}]}}`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if want := []seen{{"café/x", "null"}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Errorf("callbacks %v, want %v", *calls, want)
	}
	// Keys are case-sensitive, as JSON clients read them.
	d, calls = recorder()
	in = `{"id":1,"result":{"Tools":[{"name":"a"}]}}`
	if got := string(d.JSON([]byte(in))); got != in || len(*calls) != 0 {
		t.Errorf("case-folded key decorated: %s", got)
	}
}

func TestJSONDuplicateMembers(t *testing.T) {
	d, calls := recorder()
	in := `{"id":1,"result":{"tools":[{"name":"first","name":"last","securitySchemes":1,"securitySchemes":2,"_meta":{},"_meta":{"securitySchemes":3}}]}}`
	want := `{"id":1,"result":{"tools":[{"name":"first","name":"last","securitySchemes":[{"type":"noauth"}],"securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]},"_meta":{"securitySchemes":[{"type":"noauth"}]}}]}}`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if want := []seen{{"last", "2"}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Errorf("callbacks %v, want %v", *calls, want)
	}
}

func TestJSONCallbackDeclines(t *testing.T) {
	d := &Decorator{Schemes: func(tool string, _ json.RawMessage) json.RawMessage {
		switch tool {
		case "skip":
			return nil
		case "broken":
			return json.RawMessage(`[{"type":`)
		}
		return json.RawMessage("[\n {\"type\": \"noauth\"}\n]")
	}}
	in := `{"id":1,"result":{"tools":[{"name":"skip"},{"name":"broken","_meta":{}},{"name":"ok"}]}}`
	want := `{"id":1,"result":{"tools":[{"name":"skip"},{"name":"broken","_meta":{}},{"name":"ok","securitySchemes":[` + "\n" + ` {"type": "noauth"}` + "\n" + `],"_meta":{"securitySchemes":[` + "\n" + ` {"type": "noauth"}` + "\n" + `]}}]}}`
	if got := string(d.JSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	in = `{"id":1,"result":{"tools":[{"name":"skip"}]}}`
	if got := d.JSON([]byte(in)); string(got) != in {
		t.Errorf("declined tool changed: %s", got)
	}
}

func TestJSONForID(t *testing.T) {
	var asked []string
	d, calls := recorder()
	d.ForID = func(id json.RawMessage) bool {
		asked = append(asked, string(id))
		return string(id) == `"list-1"`
	}
	in := `[{"result":{"tools":[{"name":"crafted","securitySchemes":[{"type":"noauth"}]}]},"id":7},` +
		`{"result":{"tools":[{"name":"real"}]},"id":"list-1"},` +
		`{"result":{"tools":[{"name":"no-id"}]}}]`
	got := string(d.JSON([]byte(in)))
	if want := []seen{{"real", ""}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Errorf("callbacks %v, want %v", *calls, want)
	}
	if want := []string{"7", `"list-1"`, ""}; fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Errorf("ForID saw %q, want %q", asked, want)
	}
	if !strings.Contains(got, `{"name":"crafted","securitySchemes":[{"type":"noauth"}]}`) || strings.Contains(got, `"no-id","securitySchemes"`) {
		t.Errorf("responses ForID rejected were changed: %s", got)
	}
	if !strings.Contains(got, `{"name":"real","securitySchemes":`) {
		t.Errorf("accepted response not decorated: %s", got)
	}
}

func TestJSONValidOutput(t *testing.T) {
	d, _ := recorder()
	for _, in := range []string{
		`{"id":1,"result":{"tools":[{"name":"a"}]}}`,
		`{ "id" : 1 , "result" : { "tools" : [ { "name" : "a" } , { "name" : "b" , "_meta" : { } } ] } }`,
		`[{"id":1,"result":{"tools":[{"name":"a","_meta":"str"}]}},{"id":2,"result":{"tools":[{"name":"b","_meta":[1]}]}}]`,
	} {
		out := d.JSON([]byte(in))
		if !json.Valid(out) {
			t.Errorf("invalid output for %s:\n%s", in, out)
		}
		var v any
		_ = json.Unmarshal(out, &v)
		if !strings.Contains(string(out), `"_meta":{"securitySchemes":[{"type":"noauth"}]}`) &&
			!strings.Contains(string(out), `"securitySchemes":[{"type":"noauth"}]}`) {
			t.Errorf("not decorated: %s", out)
		}
	}
}

// toolsList builds a realistic tools/list response with n tools.
func toolsList(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":2,"result":{"tools":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"tool_%d","title":"Tool %d","description":"Does thing number %d for the user, with care and \"quotes\".",`+
			`"inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"What to look for"},"limit":{"type":"integer","minimum":1,"maximum":100}},"required":["query"]},`+
			`"annotations":{"readOnlyHint":true,"openWorldHint":false},"_meta":{"openai/outputTemplate":"ui://widget/w%d.html"}}`, i, i, i, i)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

func BenchmarkJSON(b *testing.B) {
	body := toolsList(20)
	schemes := map[string]json.RawMessage{}
	for i := range 20 {
		schemes[fmt.Sprintf("tool_%d", i)] = json.RawMessage(`[{"type":"noauth"},{"type":"oauth2","scopes":["read"]}]`)
	}
	d := &Decorator{Schemes: func(tool string, _ json.RawMessage) json.RawMessage { return schemes[tool] }}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d.JSON(body)
	}
}

func BenchmarkJSONUntouched(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum ", 300) + `"}],"isError":false}}`)
	d, _ := recorder()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d.JSON(body)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		listResult,
		`[` + listResult + `,{"id":2,"result":{}}]`,
		`{"id":1,"result":{"tools":[{"name":"a","_meta":null,"securitySchemes":{}}]}}`,
		`{"id":1,"result":{"tools":[{"na\u006de":"\ud800"}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a"}]}} `,
		`{"id":1,"result":{"tools":[{"name":"a","_meta":"x"},{"name":"b","_meta":{"k":[1,{"securitySchemes":2}]}}]}}`,
		`{"id":1,"result":{"tools":[{"name":"a","name":"b","securitySchemes":1,"securitySchemes":2}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, calls := recorder()
		out := d.JSON(in)
		if !json.Valid(in) {
			if !bytes.Equal(out, in) || len(*calls) != 0 {
				t.Fatalf("invalid JSON was touched: %q -> %q", in, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("valid JSON became invalid: %q -> %q", in, out)
		}
		if !bytes.Equal(out, in) && len(*calls) == 0 {
			t.Fatalf("changed without a callback: %q -> %q", in, out)
		}
		// Decorating is idempotent, byte for byte.
		if again := d.JSON(out); !bytes.Equal(again, out) {
			t.Fatalf("decorating twice differs:\n%q\n%q", out, again)
		}
		// To a JSON client, only the schemes changed.
		var before, after any
		if json.Unmarshal(in, &before) != nil || json.Unmarshal(out, &after) != nil {
			return // encoding/json is stricter about UTF-8 escapes
		}
		if !reflect.DeepEqual(withoutSchemes(before), withoutSchemes(after)) {
			t.Fatalf("meaning changed:\n%q\n%q", in, out)
		}
	})
}

// withoutSchemes removes what decoration may add from every tool of every
// response, including a _meta left empty or that was not an object.
func withoutSchemes(v any) any {
	var responses []any
	switch v := v.(type) {
	case map[string]any:
		responses = []any{v}
	case []any:
		responses = v
	}
	for _, r := range responses {
		r, _ := r.(map[string]any)
		result, _ := r["result"].(map[string]any)
		tools, _ := result["tools"].([]any)
		for _, tool := range tools {
			tool, _ := tool.(map[string]any)
			if _, named := tool["name"].(string); !named {
				continue
			}
			delete(tool, "securitySchemes")
			if meta, ok := tool["_meta"].(map[string]any); ok {
				delete(meta, "securitySchemes")
				if len(meta) > 0 {
					continue
				}
			}
			delete(tool, "_meta")
		}
	}
	return v
}
