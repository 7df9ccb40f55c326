package jsonrpc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// call builds the tools/call most cases vary: params is spliced in raw.
func call(params string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
}

// nested returns n arrays around a number.
func nested(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }

// wideObject returns an object with n distinct keys and then extra members.
func wideObject(n int, extra string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&sb, `"k%d":%d,`, i, i)
	}
	sb.WriteString(extra)
	sb.WriteByte('}')
	return sb.String()
}

// rejectCases are bodies Inspect must refuse with a 400; reason is a
// fragment of the Reason that names the rule.
var rejectCases = []struct {
	name, body, reason string
}{
	// Not JSON, or not one JSON value.
	{"empty body", ``, "empty body"},
	{"only whitespace", " \n\t ", "body is not a JSON object or array"},
	{"scalar body", `42`, "body is not a JSON object or array"},
	{"string body", `"tools/call"`, "body is not a JSON object or array"},
	{"null body", `null`, "body is not a JSON object or array"},
	{"truncated object", `{"jsonrpc":"2.0","id":1`, "unexpected end"},
	{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, "expected object key"},
	{"missing colon", `{"jsonrpc" "2.0"}`, "expected ':'"},
	{"missing comma", `{"jsonrpc":"2.0" "id":1}`, "expected ','"},
	{"single quotes", `{'jsonrpc':'2.0'}`, "expected object key"},
	{"bare word", `{"jsonrpc":"2.0","id":1,"method":ping}`, "method is not a string"},
	{"bad literal", call(`{"name":"a","arguments":{"x":tru}}`), "invalid JSON value"},
	{"literal with tail", call(`{"name":"a","arguments":{"x":nulll}}`), "expected ','"},
	{"NaN", call(`{"name":"a","arguments":{"x":NaN}}`), "invalid JSON value"},
	{"Infinity", call(`{"name":"a","arguments":{"x":-Infinity}}`), "invalid number"},
	{"leading zero", call(`{"name":"a","arguments":{"x":01}}`), "expected ','"},
	{"bare minus", call(`{"name":"a","arguments":{"x":-}}`), "invalid number"},
	{"dot without digits", call(`{"name":"a","arguments":{"x":1.}}`), "invalid number"},
	{"leading dot", call(`{"name":"a","arguments":{"x":.5}}`), "invalid JSON value"},
	{"exponent without digits", call(`{"name":"a","arguments":{"x":1e}}`), "invalid number"},
	{"plus sign", call(`{"name":"a","arguments":{"x":+1}}`), "invalid JSON value"},
	{"trailing object", `{"jsonrpc":"2.0","method":"ping","id":1}{"jsonrpc":"2.0","method":"tools/call","id":2,"params":{"name":"admin"}}`, "data after the JSON value"},
	{"several values on lines", "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}\n{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":2}\n", "data after the JSON value"},
	{"trailing garbage", `{"jsonrpc":"2.0","method":"ping","id":1} x`, "data after the JSON value"},
	{"trailing bracket", `{"jsonrpc":"2.0","method":"ping","id":1}]`, "data after the JSON value"},
	{"trailing NUL", "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}\x00", "data after the JSON value"},
	{"UTF-8 BOM", "\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}", "byte order mark"},
	{"UTF-16 BOM", "\xfe\xff{}", "body is not a JSON object or array"},
	{"non-breaking space as whitespace", "\u00a0{}", "body is not a JSON object or array"},

	// Bytes and escapes that decode differently in different stacks.
	{"invalid UTF-8 in name", call("{\"name\":\"adm\xffin\"}"), "invalid UTF-8"},
	{"invalid UTF-8 deep in arguments", call("{\"name\":\"a\",\"arguments\":{\"x\":[{\"y\":\"\xc3\"}]}}"), "invalid UTF-8"},
	{"invalid UTF-8 in key", call("{\"name\":\"a\",\"arguments\":{\"\xe2\x82\":1}}"), "invalid UTF-8"},
	{"overlong encoding of slash", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools\xc0\xafcall\"}", "invalid UTF-8"},
	{"UTF-8 encoded surrogate", call("{\"name\":\"\xed\xa0\x80\"}"), "invalid UTF-8"},
	{"code point above U+10FFFF", call("{\"name\":\"\xf4\x90\x80\x80\"}"), "invalid UTF-8"},
	{"lone high surrogate", call(`{"name":"\ud800"}`), "unpaired surrogate"},
	{"lone low surrogate", call(`{"name":"\udc00"}`), "unpaired surrogate"},
	{"high surrogate then letter", call(`{"name":"\ud800A"}`), "unpaired surrogate"},
	{"high surrogate then non-surrogate escape", call(`{"name":"\ud800\u0041"}`), "unpaired surrogate"},
	{"two high surrogates", call(`{"name":"\udbff\udbff"}`), "unpaired surrogate"},
	{"reversed pair", call(`{"name":"\ude00\ud83d"}`), "unpaired surrogate"},
	{"lone surrogate in method", `{"jsonrpc":"2.0","id":1,"method":"tools/call\udfff"}`, "unpaired surrogate"},
	{"lone surrogate in key", call(`{"name":"a","arguments":{"\ud800":1}}`), "unpaired surrogate"},
	{"lone surrogate at end of body", `{"jsonrpc":"2.0","id":"\ud800`, "unpaired surrogate"},
	{"raw tab in string", call("{\"name\":\"a\tb\"}"), "control character"},
	{"raw newline in string", call("{\"name\":\"a\nb\"}"), "control character"},
	{"raw NUL in string", call("{\"name\":\"a\x00\"}"), "control character"},
	{"unknown escape", call(`{"name":"\x41"}`), "invalid escape"},
	{"short unicode escape", call(`{"name":"\u12"}`), "invalid \\u escape"},
	{"non-hex unicode escape", call(`{"name":"\u12G4"}`), "invalid \\u escape"},
	{"unterminated string", `{"jsonrpc":"2.0","id":1,"method":"tools/call`, "unterminated string"},
	{"backslash at end", `{"jsonrpc":"2.0","id":1,"method":"tools/call\`, "unterminated string"},

	// Duplicate keys: encoding/json, JS and Python keep the last, Envoy-style
	// early-stop parsers the first.
	{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"admin"}}`, "duplicate key"},
	{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, "duplicate key"},
	{"duplicate jsonrpc", `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, "duplicate key"},
	{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"public"},"params":{"name":"admin"}}`, "duplicate key"},
	{"duplicate name", call(`{"name":"public","name":"admin"}`), "duplicate key"},
	{"duplicate arguments", call(`{"name":"a","arguments":{},"arguments":{}}`), "duplicate key"},
	{"duplicate _meta", call(`{"name":"a","_meta":{},"_meta":{}}`), "duplicate key"},
	{"duplicate protocol version", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-06-18"}}`), "duplicate key"},
	{"duplicate key in arguments", call(`{"name":"a","arguments":{"path":"/tmp","path":"/etc"}}`), "duplicate key"},
	{"duplicate key deep in arguments", call(`{"name":"a","arguments":{"x":[{"y":{"z":1,"z":2}}]}}`), "duplicate key"},
	{"duplicate through escape", call(`{"name":"public","n\u0061me":"admin"}`), "duplicate key"},
	{"duplicate through solidus escape", call(`{"name":"a","arguments":{"a/b":1,"a\/b":2}}`), "duplicate key"},
	{"duplicate through surrogate pair", call(`{"name":"a","arguments":{"😀":1,"\ud83d\ude00":2}}`), "duplicate key"},
	{"duplicate in wide object", call(`{"name":"a","arguments":` + wideObject(200, `"k7":0`) + `}`), "duplicate key"},
	{"escaped duplicate in wide object", call(`{"name":"a","arguments":` + wideObject(40, `"\u006b39":0`) + `}`), "duplicate key"},
	{"duplicate in wide message", wideObject(20, `"jsonrpc":"2.0","id":1,"method":"ping","k3":0`), "duplicate key"},

	// Keys that only a case-insensitive decoder binds to a protocol field
	// (encoding/json v1, CVE-2026-27896).
	{"Method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"admin"}}`, `"method" only under case folding`},
	{"METHOD alone", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}`, `"method" only under case folding`},
	{"escaped capital M", `{"jsonrpc":"2.0","id":1,"\u004dethod":"tools/call"}`, `"method" only under case folding`},
	{"JSONRPC", `{"JSONRPC":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, `"jsonrpc" only under case folding`},
	{"ID", `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, `"id" only under case folding`},
	{"Id", `{"jsonrpc":"2.0","Id":1,"method":"ping"}`, `"id" only under case folding`},
	{"Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"public"},"Params":{"name":"admin"}}`, `"params" only under case folding`},
	{"long s in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"public"},"paramſ":{"name":"admin"}}`, `"params" only under case folding`},
	{"escaped long s in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"public"},"param\u017f":{"name":"admin"}}`, `"params" only under case folding`},
	{"long s in jsonrpc", `{"jſonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, `"jsonrpc" only under case folding`},
	{"Result", `{"jsonrpc":"2.0","id":1,"Result":{}}`, `"result" only under case folding`},
	{"ERROR", `{"jsonrpc":"2.0","id":1,"ERROR":{}}`, `"error" only under case folding`},
	{"NAME", call(`{"name":"public","NAME":"admin"}`), `"name" only under case folding`},
	{"Name alone", call(`{"Name":"admin"}`), `"name" only under case folding`},
	{"Arguments", call(`{"name":"a","Arguments":{}}`), `"arguments" only under case folding`},
	{"long s in arguments", call(`{"name":"a","argumentſ":{}}`), `"arguments" only under case folding`},
	{"_Meta", call(`{"name":"a","_Meta":{}}`), `"_meta" only under case folding`},
	{"URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public","URI":"file:///etc/shadow"}}`, `"uri" only under case folding`},
	{"Uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"Uri":"file:///etc/shadow"}}`, `"uri" only under case folding`},
	{"protocol version with long s", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolVerſion":"2026-07-28"}}`), "only under case folding"},
	{"protocol version in lower case", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolversion":"2026-07-28"}}`), "only under case folding"},
	{"folded key in batch element", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"Method":"tools/call"}]`, `"method" only under case folding`},

	// Envelope rules.
	{"jsonrpc missing", `{"id":1,"method":"ping"}`, "jsonrpc member missing"},
	{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, `jsonrpc is not "2.0"`},
	{"jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, `jsonrpc is not "2.0"`},
	{"jsonrpc with space", `{"jsonrpc":"2.0 ","id":1,"method":"ping"}`, `jsonrpc is not "2.0"`},
	{"jsonrpc null", `{"jsonrpc":null,"id":1,"method":"ping"}`, `jsonrpc is not "2.0"`},
	{"method number", `{"jsonrpc":"2.0","id":1,"method":1}`, "method is not a string"},
	{"method null", `{"jsonrpc":"2.0","id":1,"method":null}`, "method is not a string"},
	{"method array", `{"jsonrpc":"2.0","id":1,"method":["tools/call"]}`, "method is not a string"},
	{"empty object", `{}`, "jsonrpc member missing"},
	{"no method, result or error", `{"jsonrpc":"2.0","id":1}`, "no method, result or error"},
	{"method and result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, "both method and result"},
	{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, "both result and error"},
	{"response without id", `{"jsonrpc":"2.0","result":{}}`, "response has no id"},
	{"response with params", `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, "response has params"},

	// ids: strings or integers only.
	{"id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, "id is not a string or an integer"},
	{"id float", `{"jsonrpc":"2.0","id":1.0,"method":"ping"}`, "id is not a string or an integer"},
	{"id exponent", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, "id is not a string or an integer"},
	{"id negative fraction", `{"jsonrpc":"2.0","id":-1.5,"method":"ping"}`, "id is not a string or an integer"},
	{"id true", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, "id is not a string or an integer"},
	{"id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, "id is not a string or an integer"},
	{"id array", `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, "id is not a string or an integer"},
	{"id null on response", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`, "id is not a string or an integer"},

	// params and the decision fields.
	{"params array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["admin"]}`, "params is not an object"},
	{"params null", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, "params is not an object"},
	{"params string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"admin"}`, "params is not an object"},
	{"params array on other method", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, "params is not an object"},
	{"tools/call without params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, "tools/call has no params"},
	{"tools/call without name", call(`{"arguments":{}}`), "tools/call has no params.name"},
	{"tools/call with empty params", call(`{}`), "tools/call has no params.name"},
	{"name number", call(`{"name":1}`), "params.name is not a string"},
	{"name null", call(`{"name":null}`), "params.name is not a string"},
	{"name array", call(`{"name":["admin"]}`), "params.name is not a string"},
	{"name object", call(`{"name":{"admin":true}}`), "params.name is not a string"},
	{"name non-string on other method", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":7}}`, "params.name is not a string"},
	{"uri non-string", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":7}}`, "params.uri is not a string"},
	{"arguments array", call(`{"name":"a","arguments":[1]}`), "params.arguments is not an object"},
	{"arguments string", call(`{"name":"a","arguments":"{}"}`), "params.arguments is not an object"},
	{"arguments null", call(`{"name":"a","arguments":null}`), "params.arguments is not an object"},
	{"_meta array", call(`{"name":"a","_meta":[]}`), "params._meta is not an object"},
	{"protocol version number", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}`), "protocol version is not a string"},
	{"protocol version empty", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":""}}`), "protocol version is empty"},
	{"tools/call notification", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin"}}`, "tools/call has no id"},
	{"tools/call id null", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"admin"}}`, "id is not a string or an integer"},
	{"escaped tools/call notification", `{"jsonrpc":"2.0","method":"tools\/call","params":{"name":"admin"}}`, "tools/call has no id"},

	// Batches.
	{"empty batch", `[]`, "empty batch"},
	{"empty batch with space", ` [ ] `, "empty batch"},
	{"batch of number", `[1]`, "batch element is not an object"},
	{"nested batch", `[[{"jsonrpc":"2.0","id":1,"method":"ping"}]]`, "batch element is not an object"},
	{"batch with null", `[{"jsonrpc":"2.0","id":1,"method":"ping"},null]`, "batch element is not an object"},
	{"batch with a bad element", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin"}}]`, "tools/call has no id"},
	{"batch trailing comma", `[{"jsonrpc":"2.0","id":1,"method":"ping"},]`, "batch element is not an object"},
	{"batch with duplicate", `[{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}]`, "duplicate key"},

	// Depth: the message is level 1, params 2, arguments 3.
	{"too deep in arguments", call(`{"name":"a","arguments":{"x":` + nested(maxDepth-2) + `}}`), "nesting deeper than 64"},
	{"too deep in batch", `[` + call(`{"name":"a","arguments":{"x":`+nested(maxDepth-3)+`}}`) + `]`, "nesting deeper than 64"},
	{"too deep in result", `{"jsonrpc":"2.0","id":1,"result":` + nested(maxDepth) + `}`, "nesting deeper than 64"},
	{"deep unterminated", strings.Repeat("[", 100000), "batch element is not an object"},
	{"deep unterminated in arguments", call(`{"name":"a","arguments":{"x":` + strings.Repeat("[", 100000)), "nesting deeper than 64"},
}

var acceptCases = []struct {
	name, body string
	want       Message
}{
	{"tools/call", call(`{"name":"search","arguments":{"q":"x"}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "search"}}}},
	{"tools/call without arguments", call(`{"name":"search"}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "search"}}}},
	{"string id kept verbatim", `{"jsonrpc":"2.0","id":"a\"b\u00e9","method":"ping"}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte(`"a\"b\u00e9"`)}}}},
	{"empty string id", `{"jsonrpc":"2.0","id":"","method":"ping"}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte(`""`)}}}},
	{"negative integer id", `{"jsonrpc":"2.0","id":-12,"method":"ping"}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte(`-12`)}}}},
	{"large integer id", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte(`123456789012345678901234567890`)}}}},
	{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		Message{Calls: []Call{{Kind: Notification, Method: "notifications/initialized"}}}},
	{"notification with params", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"user"}}`,
		Message{Calls: []Call{{Kind: Notification, Method: "notifications/cancelled"}}}},
	{"response with result", `{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}`,
		Message{Calls: []Call{{Kind: Response, ID: []byte(`"srv-1"`)}}}},
	{"response with error", `{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"no"}}`,
		Message{Calls: []Call{{Kind: Response, ID: []byte(`5`)}}}},
	{"escaped solidus in method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"admin"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "admin"}}}},
	{"unicode escape in method", `{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"name":"admin"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "admin"}}}},
	{"escaped letters everywhere", `{"\u006asonrpc":"2\u002e0","\u0069d":1,"m\u0065thod":"t\u006fols/call","p\u0061rams":{"n\u0061me":"\u0061dmin"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "admin"}}}},
	{"method case is kept", `{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"x"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "Tools/Call", ID: []byte("1")}}}},
	{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"x-vendor/thing","params":{"name":"n"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "x-vendor/thing", ID: []byte("1")}}}},
	{"unicode tool name", call(`{"name":"天気_café"}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "天気_café"}}}},
	{"escaped unicode tool name", call(`{"name":"caf\u00e9 \ud83d\ude00"}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "café 😀"}}}},
	{"long escaped tool name", call(`{"name":"` + strings.Repeat(`\u0061`, 100) + `"}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: strings.Repeat("a", 100)}}}},
	{"NUL escape in name", call(`{"name":"a\u0000"}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a\x00"}}}},
	{"whitespace everywhere", " \r\n\t{ \"jsonrpc\" : \"2.0\" ,\n\"id\"\t:\t1 , \"method\" : \"tools/call\" , \"params\" : { \"name\" : \"a\" , \"arguments\" : { } } } \n\r\t ",
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"params before method", `{"params":{"arguments":{"a":1},"name":"late"},"id":9,"method":"tools/call","jsonrpc":"2.0"}`,
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("9"), Name: "late"}}}},
	{"resources/read uri", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///projects/a.json"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "resources/read", ID: []byte("2"), Name: "file:///projects/a.json"}}}},
	{"prompts/get name", `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"code_review","arguments":{"language":"go"}}}`,
		Message{Calls: []Call{{Kind: Request, Method: "prompts/get", ID: []byte("3"), Name: "code_review"}}}},
	{"name ignored for other methods", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a","name":"n"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "resources/subscribe", ID: []byte("1")}}}},
	{"2026-07-28 tools/call", toolsCall1K,
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("42"), Name: "search_items", ProtocolVersion: "2026-07-28"}}}},
	{"unknown protocol version", call(`{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":"DRAFT-2027-v1"}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a", ProtocolVersion: "DRAFT-2027-v1"}}}},
	{"folded keys allowed in arguments", call(`{"name":"a","arguments":{"Name":"x","ID":7,"Method":"m","URI":"u","paramſ":1}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"case variants are distinct keys in arguments", call(`{"name":"a","arguments":{"a":1,"A":2,"K":3,"k":4}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"Kelvin sign key on the decision path", `{"jsonrpc":"2.0","id":1,"method":"ping","K":1,"params":{"K":2,"_meta":{"K":3}}}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte("1")}}}},
	{"unicode in arguments", call(`{"name":"a","arguments":{"text":"Grüße, 世界 😀 \ud83d\ude00 \u00e9\n","emoji key 🔑":["ø"]}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"numbers in arguments", call(`{"name":"a","arguments":{"n":[0,-0,1.5,-2e10,3E+2,4e-3,1e999,12345678901234567890123]}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"deepest arguments allowed", call(`{"name":"a","arguments":{"x":` + nested(maxDepth-3) + `}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"wide arguments", call(`{"name":"a","arguments":` + wideObject(500, `"last":{"k1":1}`) + `}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"wide arguments with escaped keys", call(`{"name":"a","arguments":` + wideObject(40, `"\u006b40":0,"k\u0034\u0031":0`) + `}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"big nested arguments", call(`{"name":"a","arguments":{"rows":[` + strings.Repeat(`{"id":1,"tags":["a","b"],"meta":{"ok":true,"n":null}},`, 300) + `{}]}}`),
		Message{Calls: []Call{{Kind: Request, Method: "tools/call", ID: []byte("1"), Name: "a"}}}},
	{"other keys on the message", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":{"Method":"tools/call"}}`,
		Message{Calls: []Call{{Kind: Request, Method: "ping", ID: []byte("1")}}}},
	{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"r","result":{}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b"}}]`,
		Message{Batch: true, Calls: []Call{
			{Kind: Request, Method: "tools/list", ID: []byte("1")},
			{Kind: Notification, Method: "notifications/initialized"},
			{Kind: Response, ID: []byte(`"r"`)},
			{Kind: Request, Method: "tools/call", ID: []byte("2"), Name: "b"},
		}}},
	{"batch of one", ` [ {"jsonrpc":"2.0","id":1,"method":"ping"} ] `,
		Message{Batch: true, Calls: []Call{{Kind: Request, Method: "ping", ID: []byte("1")}}}},
	{"long batch", "[" + strings.Repeat(`{"jsonrpc":"2.0","method":"notifications/progress"},`, 20) + `{"jsonrpc":"2.0","method":"ping","id":0}]`,
		Message{Batch: true, Calls: append(
			slicesRepeat(Call{Kind: Notification, Method: "notifications/progress"}, 20),
			Call{Kind: Request, Method: "ping", ID: []byte("0")})}},
}

func slicesRepeat(c Call, n int) []Call {
	out := make([]Call, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func TestInspectRejects(t *testing.T) {
	for _, tc := range rejectCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Inspect([]byte(tc.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Inspect accepted it: %s", fmtMessage(m))
			}
			if e.Status != 400 {
				t.Errorf("Status = %d, want 400", e.Status)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to mention %q", e.Reason, tc.reason)
			}
			if m.Calls != nil || m.Batch {
				t.Errorf("a rejected body still returned %s", fmtMessage(m))
			}
		})
	}
}

func TestInspectAccepts(t *testing.T) {
	for _, tc := range acceptCases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			m, err := Inspect(body)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if !equalMessages(m, tc.want) {
				t.Fatalf("got  %s\nwant %s", fmtMessage(m), fmtMessage(tc.want))
			}
			for _, c := range m.Calls {
				if c.ID == nil {
					continue
				}
				// The id must be the very bytes of the body, not a copy, and
				// capped so that appending to it cannot write into the body.
				if !bytes.Contains(body, c.ID) || cap(c.ID) != len(c.ID) {
					t.Errorf("ID %q is not a capped slice of the body", c.ID)
				}
			}
		})
	}
}

// TestReasonsDoNotEchoTheBody guards the promise that an error can be shown
// to a client and logged: no part of a hostile key or value comes back.
func TestReasonsDoNotEchoTheBody(t *testing.T) {
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"<script>":1,"<script>":2}`,
		`{"jsonrpc":"2.0","id":1,"METHOD":"<script>"}`,
		`{"jsonrpc":"1.0<script>","id":1,"method":"ping"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<script>\xff\"}",
	} {
		_, err := Inspect([]byte(body))
		if err == nil || strings.Contains(err.Error(), "script") {
			t.Errorf("Inspect(%q) = %v", body, err)
		}
	}
}

// TestDifferentialTables runs the encoding/json differential and the oracle
// over every table case, so a plain go test covers them even without the
// fuzz corpus.
func TestDifferentialTables(t *testing.T) {
	for _, tc := range acceptCases {
		checkBody(t, []byte(tc.body))
	}
	for _, tc := range rejectCases {
		checkBody(t, []byte(tc.body))
	}
}

func TestFoldEq(t *testing.T) {
	for _, tc := range []struct {
		r, c rune
		want bool
	}{
		{'S', 's', true},
		{'ſ', 's', true},
		{'K', 'k', true}, // Kelvin sign
		{'K', 'k', true},
		{'İ', 'i', false}, // Turkish dotted I is not a simple fold of i
		{'ı', 'i', false},
		{'a', 'b', false},
	} {
		if got := foldEq(tc.r, tc.c); got != tc.want {
			t.Errorf("foldEq(%q, %q) = %v, want %v", tc.r, tc.c, got, tc.want)
		}
		if got := strings.EqualFold(string(tc.r), string(tc.c)); got != tc.want {
			t.Errorf("strings.EqualFold disagrees on %q, %q", tc.r, tc.c)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Request: "request", Notification: "notification", Response: "response", 0: "invalid"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// TestInspectAllocations pins the allocation budget of the common case: the
// Calls slice and the tool name, nothing per byte.
func TestInspectAllocations(t *testing.T) {
	body := []byte(toolsCall1K)
	if n := testing.AllocsPerRun(100, func() { _, _ = Inspect(body) }); n > 2 {
		t.Errorf("Inspect of a 1 KiB tools/call allocates %v times, want ≤ 2", n)
	}
	list := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = Inspect(list) }); n > 1 {
		t.Errorf("Inspect of tools/list allocates %v times, want 1", n)
	}
}
