package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// This file holds two independent readings of a body, both built on
// encoding/json rather than on the scanner under test:
//
//   - oracle re-states every rule of Inspect over a tree decoded with
//     json.Decoder, so the fuzzers can check that Inspect accepts exactly the
//     bodies the rules allow and extracts the same values;
//   - goView decodes the body the way an upstream Go SDK on encoding/json v1
//     would (last duplicate wins, keys matched case-insensitively), which is
//     the differential the issue asks for: no accepted body may mean
//     something different to it.

type node struct {
	kind  byte // '{', '[', '"', '0' (number), 'b' (bool), 'n' (null)
	keys  []string
	vals  []*node
	elems []*node
	str   string
	raw   []byte
}

func (n *node) get(key string) (*node, bool) {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i], true
		}
	}
	return nil, false
}

func readTree(body []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	n, err := readNode(dec, body, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the value")
	}
	return n, nil
}

func readNode(dec *json.Decoder, body []byte, depth int) (*node, error) {
	before := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimLeft(body[before:dec.InputOffset()], " \t\r\n:,")
	switch v := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return nil, errors.New("too deep")
		}
		n := &node{kind: byte(v)}
		for dec.More() {
			if v == '{' {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := n.get(k); dup {
					return nil, errors.New("duplicate key")
				}
				n.keys = append(n.keys, k)
			}
			child, err := readNode(dec, body, depth+1)
			if err != nil {
				return nil, err
			}
			if v == '{' {
				n.vals = append(n.vals, child)
			} else {
				n.elems = append(n.elems, child)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	case string:
		return &node{kind: '"', str: v, raw: raw}, nil
	case json.Number:
		return &node{kind: '0', str: string(v), raw: raw}, nil
	case bool:
		return &node{kind: 'b', raw: raw}, nil
	case nil:
		return &node{kind: 'n', raw: raw}, nil
	}
	return nil, fmt.Errorf("unexpected token %T", tok)
}

var integerID = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// oracle applies the rules of Inspect to the tree of body.
func oracle(body []byte) (Message, error) {
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		return Message{}, errors.New("BOM")
	}
	root, err := readTree(body)
	if err != nil {
		return Message{}, err
	}
	var m Message
	switch root.kind {
	case '{':
		c, err := oracleCall(root)
		if err != nil {
			return m, err
		}
		m.Calls = []Call{c}
	case '[':
		m.Batch = true
		if len(root.elems) == 0 {
			return m, errors.New("empty batch")
		}
		for _, e := range root.elems {
			if e.kind != '{' {
				return m, errors.New("batch element is not an object")
			}
			c, err := oracleCall(e)
			if err != nil {
				return m, err
			}
			m.Calls = append(m.Calls, c)
		}
	default:
		return m, errors.New("not an object or array")
	}
	return m, nil
}

func foldedKeys(n *node) error {
	for _, k := range n.keys {
		for _, pk := range protocolKeys {
			if k != pk && strings.EqualFold(k, pk) {
				return fmt.Errorf("key folds to %q", pk)
			}
		}
	}
	return nil
}

func oracleCall(msg *node) (Call, error) {
	var c Call
	if err := foldedKeys(msg); err != nil {
		return c, err
	}
	if v, ok := msg.get("jsonrpc"); !ok || v.kind != '"' || v.str != "2.0" {
		return c, errors.New("jsonrpc")
	}
	if id, ok := msg.get("id"); ok {
		if id.kind != '"' && !(id.kind == '0' && integerID.MatchString(id.str)) {
			return c, errors.New("id type")
		}
		c.ID = id.raw
	}
	method, hasMethod := msg.get("method")
	if hasMethod && method.kind != '"' {
		return c, errors.New("method type")
	}
	var name, uri, version *node
	params, hasParams := msg.get("params")
	if hasParams {
		if params.kind != '{' {
			return c, errors.New("params type")
		}
		if err := foldedKeys(params); err != nil {
			return c, err
		}
		var ok bool
		if name, ok = params.get("name"); ok && name.kind != '"' {
			return c, errors.New("name type")
		}
		if uri, ok = params.get("uri"); ok && uri.kind != '"' {
			return c, errors.New("uri type")
		}
		if a, ok := params.get("arguments"); ok && a.kind != '{' {
			return c, errors.New("arguments type")
		}
		if meta, ok := params.get("_meta"); ok {
			if meta.kind != '{' {
				return c, errors.New("_meta type")
			}
			if err := foldedKeys(meta); err != nil {
				return c, err
			}
			if version, ok = meta.get(metaProtocolVersion); ok && (version.kind != '"' || version.str == "") {
				return c, errors.New("version type")
			}
		}
	}
	_, hasResult := msg.get("result")
	_, hasError := msg.get("error")
	switch {
	case hasMethod && (hasResult || hasError):
		return c, errors.New("method and result")
	case hasMethod:
		c.Kind, c.Method = Request, method.str
		if c.ID == nil {
			c.Kind = Notification
		}
	case hasResult && hasError:
		return c, errors.New("result and error")
	case hasResult || hasError:
		if c.ID == nil || hasParams {
			return c, errors.New("response shape")
		}
		c.Kind = Response
	default:
		return c, errors.New("no method")
	}
	switch c.Method {
	case "tools/call":
		if c.ID == nil || !hasParams || name == nil {
			return c, errors.New("tools/call shape")
		}
		c.Name = name.str
	case "prompts/get":
		if name != nil {
			c.Name = name.str
		}
	case "resources/read":
		if uri != nil {
			c.Name = uri.str
		}
	}
	if version != nil {
		c.ProtocolVersion = version.str
	}
	return c, nil
}

// goMessage is how an upstream on encoding/json v1 reads the fields a
// decision depends on.
type goMessage struct {
	Method string
	ID     json.RawMessage
	Params struct {
		Name string
		URI  string
	}
}

func goView(body []byte) ([]goMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var ms []goMessage
		err := json.Unmarshal(body, &ms)
		return ms, err
	}
	var m goMessage
	err := json.Unmarshal(body, &m)
	return []goMessage{m}, err
}

// surrogateEscape matches \u escapes of surrogates. encoding/json silently
// turns lone ones into U+FFFD, so the oracle cannot see them; bodies holding
// them are only checked in the accept ⇒ oracle-accepts direction.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// checkBody is the property every fuzz input must satisfy.
func checkBody(t *testing.T, body []byte) {
	t.Helper()
	m, err := Inspect(body)
	want, oerr := oracle(body)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Reason == "" {
			t.Fatalf("Inspect error %#v is not a 400 *Error", err)
		}
		if !plainHeaderValue(e.Reason) {
			t.Fatalf("reason %q is not printable ASCII", e.Reason)
		}
		if oerr == nil && utf8.Valid(body) && !surrogateEscape.Match(body) {
			t.Fatalf("Inspect rejected a body the rules allow: %v\nbody: %q", err, body)
		}
		return
	}
	if oerr != nil {
		t.Fatalf("Inspect accepted a body the rules reject (%v)\nbody: %q", oerr, body)
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		t.Fatalf("Inspect accepted invalid JSON or UTF-8: %q", body)
	}
	if !equalMessages(m, want) {
		t.Fatalf("Inspect = %s\noracle  = %s\nbody: %q", fmtMessage(m), fmtMessage(want), body)
	}
	for _, c := range m.Calls {
		if c.ID != nil && (cap(c.ID) != len(c.ID) || !bytes.Contains(body, c.ID)) {
			t.Fatalf("ID %q is not a capped slice of the body", c.ID)
		}
	}

	// The differential against a plain encoding/json decode.
	gm, gerr := goView(body)
	if gerr != nil {
		t.Fatalf("encoding/json cannot decode an accepted body: %v\nbody: %q", gerr, body)
	}
	if len(gm) != len(m.Calls) {
		t.Fatalf("encoding/json sees %d messages, Inspect %d", len(gm), len(m.Calls))
	}
	for i, c := range m.Calls {
		g := gm[i]
		if g.Method != c.Method || !bytes.Equal(g.ID, c.ID) {
			t.Fatalf("message %d: encoding/json reads method %q id %s, Inspect %q %s\nbody: %q", i, g.Method, g.ID, c.Method, c.ID, body)
		}
		gname := ""
		switch c.Method {
		case "tools/call", "prompts/get":
			gname = g.Params.Name
		case "resources/read":
			gname = g.Params.URI
		}
		if gname != c.Name {
			t.Fatalf("message %d: encoding/json reads name %q, Inspect %q\nbody: %q", i, gname, c.Name, body)
		}
	}
}

func equalMessages(a, b Message) bool {
	if a.Batch != b.Batch || len(a.Calls) != len(b.Calls) {
		return false
	}
	for i := range a.Calls {
		x, y := a.Calls[i], b.Calls[i]
		if x.Kind != y.Kind || x.Method != y.Method || !bytes.Equal(x.ID, y.ID) || x.Name != y.Name || x.ProtocolVersion != y.ProtocolVersion {
			return false
		}
	}
	return true
}

func fmtMessage(m Message) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "{Batch:%v", m.Batch)
	for _, c := range m.Calls {
		fmt.Fprintf(&sb, " {%v %q id=%s name=%q pv=%q}", c.Kind, c.Method, c.ID, c.Name, c.ProtocolVersion)
	}
	return sb.String() + "}"
}
