package jsonrpc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzInspect feeds raw bodies. Its committed corpus in
// testdata/fuzz/FuzzInspect holds the tricky cases (duplicates, folded keys,
// BOM, surrogates, escapes, trailing data, batches); the tables of
// inspect_test.go are added as seeds too.
func FuzzInspect(f *testing.F) {
	for _, tc := range rejectCases {
		f.Add([]byte(tc.body))
	}
	for _, tc := range acceptCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkBody(t, body)
	})
}

// FuzzDifferential builds messages around fuzzed keys and strings, spliced in
// raw so the fuzzer can write escapes, folded letters and broken syntax
// exactly where a decision reads, which raw-body mutation reaches slowly.
func FuzzDifferential(f *testing.F) {
	f.Add("method", "tools/call", "name", "search", "x", "arguments", uint8(0))
	f.Add("Method", "tools/call", "name", "search", "x", "arguments", uint8(1))
	f.Add("method", `tools\/call`, "NAME", "admin", "x", "_meta", uint8(2))
	f.Add("m\\u0065thod", "tools\\u002fcall", "n\\u0061me", "adm\\u0069n", "x", "uri", uint8(3))
	f.Add("method", "resources/read", "uri", "file:///etc", "x", "paramſ", uint8(4))
	f.Add("method", "prompts/get", "name", "\\ud83d\\ude00", "\\ud800", "argumentſ", uint8(5))
	f.Add("id", "1", "name", "a", "b", "Id", uint8(6))
	f.Add("method", "tools/call", "name", "a", "io.modelcontextprotocol/protocolVerſion", "2026-07-28", uint8(7))
	f.Fuzz(func(t *testing.T, topKey, method, paramsKey, name, extraKey, extraVal string, shape uint8) {
		checkBody(t, []byte(build(topKey, method, paramsKey, name, extraKey, extraVal, shape)))
	})
}

// build assembles a message whose shape bits choose key order, nesting and
// batching, so that fuzzed strings land on every part of the decision path.
func build(topKey, method, paramsKey, name, extraKey, extraVal string, shape uint8) string {
	q := func(s string) string { return `"` + s + `"` }
	meta := `"_meta":{` + q(metaProtocolVersion) + `:"2026-07-28",` + q(extraKey) + `:` + q(extraVal) + `}`
	params := []string{q(paramsKey) + ":" + q(name), `"arguments":{` + q(extraKey) + `:{"v":` + q(extraVal) + `}}`, meta}
	if shape&1 != 0 {
		params[0], params[2] = params[2], params[0]
	}
	members := []string{`"jsonrpc":"2.0"`, `"id":7`, q(topKey) + ":" + q(method), `"params":{` + strings.Join(params, ",") + `}`}
	if shape&2 != 0 {
		members[0], members[3] = members[3], members[0]
	}
	if shape&4 != 0 {
		members = append(members, q(extraKey)+":"+q(extraVal))
	}
	if shape&8 != 0 {
		members = append(members, `"params":{}`)
	}
	msg := "{" + strings.Join(members, ",") + "}"
	switch {
	case shape&16 != 0:
		return "[" + msg + `,{"jsonrpc":"2.0","method":"notifications/initialized"}]`
	case shape&32 != 0:
		return " \r\n" + msg + "\t\n"
	}
	return msg
}

// TestSeedCorpusIntent pins what each committed seed is for: files named
// accept-* must pass Inspect, every other seed names a rule it breaks.
func TestSeedCorpusIntent(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzInspect")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("empty seed corpus")
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, value, ok := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if !ok || header != "go test fuzz v1" || !strings.HasPrefix(value, "[]byte(") || !strings.HasSuffix(value, ")") {
			t.Fatalf("%s is not a go test fuzz v1 file", e.Name())
		}
		body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(value, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = Inspect([]byte(body))
		if want := strings.HasPrefix(e.Name(), "accept-"); want != (err == nil) {
			t.Errorf("%s: Inspect error = %v", e.Name(), err)
		}
	}
}
