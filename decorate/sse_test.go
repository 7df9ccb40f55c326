package decorate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

const (
	listResult = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}}`
	decorated  = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","securitySchemes":[{"type":"noauth"}],"_meta":{"securitySchemes":[{"type":"noauth"}]}}]}}`
)

// chunks is a reader that returns at most n bytes per Read, to cut the
// stream at every possible place.
type chunks struct {
	b      []byte
	n      int
	err    error // returned after b is drained; io.EOF when nil
	closed bool
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := min(len(p), c.n, len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func (c *chunks) Close() error { c.closed = true; return nil }

func runSSE(t testing.TB, d *Decorator, in string, chunk int) string {
	t.Helper()
	out, err := io.ReadAll(d.SSE(&chunks{b: []byte(in), n: chunk}))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return string(out)
}

// eachChunking runs in through SSE cut into reads of every size from 1 byte
// to the whole stream and requires the same output each time.
func eachChunking(t *testing.T, d *Decorator, in, want string) {
	t.Helper()
	for _, n := range []int{len(in) + 1, 1, 2, 3, 5, 7, 13, 64} {
		if got := runSSE(t, d, in, n); got != want {
			t.Errorf("reads of %d bytes:\ngot  %q\nwant %q", n, got, want)
			return
		}
	}
}

func TestSSEDecoratesAndKeepsFraming(t *testing.T) {
	d, _ := recorder()
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		l := func(s string) string { return s + eol }
		in := l(": keep-alive") +
			l("retry: 3000") + l("") +
			l("id: 7") + l("event: message") + l("data: "+listResult) + l("x-unknown: field") + l("") +
			l(":comment") + l("event: message") + l(`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}`) + l("") +
			l("id: 8") + l("data:") + l("")
		want := l(": keep-alive") +
			l("retry: 3000") + l("") +
			l("id: 7") + l("event: message") + l("data: "+decorated) + l("x-unknown: field") + l("") +
			l(":comment") + l("event: message") + l(`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}`) + l("") +
			l("id: 8") + l("data:") + l("")
		eachChunking(t, d, in, want)
	}
}

func TestSSEMixedLineEndings(t *testing.T) {
	d, _ := recorder()
	in := "id: 1\r\ndata: " + listResult + "\r\r\nevent: x\ndata: plain\r\n\n"
	want := "id: 1\r\ndata: " + decorated + "\r\r\nevent: x\ndata: plain\r\n\n"
	eachChunking(t, d, in, want)
}

func TestSSEMultiLineData(t *testing.T) {
	d, _ := recorder()
	in := "id: 1\n" +
		"data: {\"jsonrpc\":\"2.0\",\n" +
		"id: 2\n" +
		"data:\"id\":1,\"result\":{\"tools\":[\n" +
		": a comment inside the event\n" +
		"data:   {\"name\":\"a\"}]}}\n" +
		"\n"
	// The payload was "{...,\n\"id\":1,...[\n  {...}]}}"; the newlines are
	// JSON whitespace and become spaces on the single data line, which
	// takes the place of the last one. Other lines keep their order.
	want := "id: 1\n" +
		"id: 2\n" +
		": a comment inside the event\n" +
		"data: {\"jsonrpc\":\"2.0\", \"id\":1,\"result\":{\"tools\":[   {\"name\":\"a\",\"securitySchemes\":[{\"type\":\"noauth\"}],\"_meta\":{\"securitySchemes\":[{\"type\":\"noauth\"}]}}]}}\n" +
		"\n"
	eachChunking(t, d, in, want)
}

func TestSSEDataFieldSpellings(t *testing.T) {
	d, _ := recorder()
	for _, tc := range []struct{ in, want string }{
		{"data:" + listResult + "\n\n", "data:" + decorated + "\n\n"},
		{"data:  " + listResult + "\n\n", "data: " + " " + decorated + "\n\n"}, // the second space is part of the value
		{"data\ndata: " + listResult + "\n\n", "data:  " + decorated + "\n\n"}, // a leading empty value: a leading LF of whitespace
		{"data: " + listResult + "\ndata\n\n", "data:" + decorated + " \n\n"},  // trailing empty data line: a trailing LF of whitespace
		{"Data: " + listResult + "\n\n", "Data: " + listResult + "\n\n"},       // field names are case-sensitive
		{"datum: " + listResult + "\n\n", "datum: " + listResult + "\n\n"},
		{"data : " + listResult + "\n\n", "data : " + listResult + "\n\n"},
	} {
		eachChunking(t, d, tc.in, tc.want)
	}
}

func TestSSEUntouched(t *testing.T) {
	d, calls := recorder()
	for _, in := range []string{
		"",
		"\n\n\n",
		"\r\n\r\n",
		": only comments\n: more\n",
		"event: endpoint\ndata: /messages?sessionId=abc\n\n",
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n",
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"}]}\n\n", // malformed
		"data: " + listResult + "\n",                                                        // never completed: a client drops it
		"data: " + listResult,                                                               // no line end either
		"id: 1\ndata: " + listResult[:20],                                                   // cut mid-line
		"data:\n\ndata\n\n",
		"retry: 10\nid: \x00\n\n",
	} {
		*calls = nil
		eachChunking(t, d, in, in)
		if len(*calls) != 0 {
			t.Errorf("callback ran for %q", in)
		}
	}
}

func TestSSEByteOrderMark(t *testing.T) {
	d, _ := recorder()
	in := "\xEF\xBB\xBFdata: " + listResult + "\n\n"
	want := "\xEF\xBB\xBFdata: " + decorated + "\n\n"
	eachChunking(t, d, in, want)
	// Only at the start of the stream.
	in = "\n\xEF\xBB\xBFdata: " + listResult + "\n\n"
	eachChunking(t, d, in, in)
}

func TestSSEOversize(t *testing.T) {
	var sizes []int
	d, _ := recorder()
	d.MaxEvent = 40
	d.OnOversize = func(n int) { sizes = append(sizes, n) }
	big := "id: 1\ndata: " + listResult + "\ndata: more\n\n"
	small := "data: [1]\n\n"
	in := big + small + big
	eachChunking(t, d, in, in)
	if len(sizes) == 0 || sizes[0] <= 40 {
		t.Errorf("OnOversize calls: %v", sizes)
	}
	// After an oversized event the next one is decorated again.
	d.MaxEvent = len("data: "+listResult+"\n") + 1
	in = "data: " + listResult + "\ndata: x\n\n" + "data: " + listResult + "\n\n"
	want := "data: " + listResult + "\ndata: x\n\n" + "data: " + decorated + "\n\n"
	eachChunking(t, d, in, want)
}

func TestSSEReleasesEachEventAtOnce(t *testing.T) {
	d, _ := recorder()
	pr, pw := io.Pipe()
	rc := d.SSE(pr)
	defer rc.Close()
	got := make(chan string)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := rc.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	expect := func(want string) {
		t.Helper()
		var acc string
		for acc != want {
			select {
			case s, ok := <-got:
				if !ok {
					t.Fatalf("stream ended; got %q, want %q", acc, want)
				}
				acc += s
				if !strings.HasPrefix(want, acc) {
					t.Fatalf("got %q, want %q", acc, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("waited for %q; got only %q", want, acc)
			}
		}
	}
	// One writer goroutine keeps the writes in order; a pipe write blocks
	// until the reader has taken it.
	writes := make(chan string, 16)
	go func() {
		for s := range writes {
			_, _ = pw.Write([]byte(s))
		}
		pw.Close()
	}()
	write := func(s string) { writes <- s }
	// Keep-alives and lines before data go out at once, even unterminated.
	write(": ping\n")
	expect(": ping\n")
	write("id: 1\nevent: message\n")
	expect("id: 1\nevent: message\n")
	write(": partial comm")
	expect(": partial comm")
	write("ent\n")
	expect("ent\n")
	// A data line is held until its event is complete, then released whole.
	write("data: " + listResult + "\n")
	write("\n")
	expect("data: " + decorated + "\n\n")
	// A CR line end is released without waiting for a possible LF.
	write("data: [1]\r\r")
	expect("data: [1]\r\r")
	write("\n")
	expect("\n")
	close(writes)
	if _, ok := <-got; ok {
		t.Error("data after the end")
	}
}

func TestSSEErrorsAndClose(t *testing.T) {
	d, _ := recorder()
	boom := errors.New("upstream reset")
	src := &chunks{b: []byte("id: 1\ndata: " + listResult + "\n\ndata: partial"), n: 5, err: boom}
	rc := d.SSE(src)
	out, err := io.ReadAll(rc)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
	if want := "id: 1\ndata: " + decorated + "\n\ndata: partial"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("error not sticky: %v", err)
	}
	if err := rc.Close(); err != nil || !src.closed {
		t.Errorf("Close = %v, closed = %v", err, src.closed)
	}
	if n, err := rc.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
}

func TestSSEForIDAndLargeStream(t *testing.T) {
	d, calls := recorder()
	d.ForID = func(id json.RawMessage) bool { return string(id) == "1" }
	var in, want bytes.Buffer
	for range 1000 {
		in.WriteString(": ka\n\nid: x\ndata: " + strings.Replace(listResult, `"id":1`, `"id":2`, 1) + "\n\n")
		want.WriteString(": ka\n\nid: x\ndata: " + strings.Replace(listResult, `"id":1`, `"id":2`, 1) + "\n\n")
	}
	in.WriteString("data: " + listResult + "\n\n")
	want.WriteString("data: " + decorated + "\n\n")
	if got := runSSE(t, d, in.String(), 4096); got != want.String() {
		t.Error("large stream not decorated as expected")
	}
	if len(*calls) != 1 {
		t.Errorf("callback ran %d times, want once", len(*calls))
	}
}

// event is one dispatched event, as a client sees it.
type event struct{ id, typ, data string }

// parseSSE follows the WHATWG event-stream interpretation, as a client would.
func parseSSE(s string) []event {
	s = strings.TrimPrefix(s, "\xEF\xBB\xBF")
	var out []event
	var id, typ string
	var data strings.Builder
	hasData := false
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // an unterminated last line is dropped, its event never dispatched
		}
		line := s[:i]
		n := i + 1
		if s[i] == '\r' && n < len(s) && s[n] == '\n' {
			n++
		}
		s = s[n:]
		if line == "" {
			if hasData {
				out = append(out, event{id, typ, strings.TrimSuffix(data.String(), "\n")})
			}
			data.Reset()
			typ, hasData = "", false
			continue
		}
		name, val, _ := strings.Cut(line, ":")
		val = strings.TrimPrefix(val, " ")
		switch name {
		case "data":
			data.WriteString(val + "\n")
			hasData = true
		case "event":
			typ = val
		case "id":
			if !strings.Contains(val, "\x00") {
				id = val
			}
		}
	}
	return out
}

func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"",
		"data: " + listResult + "\n\n",
		"id: 7\r\nevent: message\r\ndata: " + listResult + "\r\n\r\n",
		": ka\r\rretry: 5\r\rdata: {\"a\":1}\r\r",
		"data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":1,\"result\":{\"tools\":[{\"name\":\"a\",\"_meta\":{}}]}}\n\n",
		"\xEF\xBB\xBFdata: " + listResult + "\n\n",
		"data\ndata:\ndata: x\n\n",
		"data: [" + strings.Repeat("[", 50) + "\n\n",
		// A bare-CR data line followed by an LF blank line: the rewritten
		// line must not take the CR, or CR+LF would read as one line end.
		"data:{\rdata:\"result\":{\"tools\":[{\"name\":\"\"}]}}\n\n",
		"data: {\"result\":\rid: 1\rdata: {\"tools\":[{\"name\":\"a\"}]}}\n\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		n := int(chunk)%64 + 1

		// A decorator with nothing to add must reproduce every stream.
		none := &Decorator{Schemes: func(string, json.RawMessage) json.RawMessage { return nil }, MaxEvent: 256}
		if got := runSSE(t, none, string(in), n); got != string(in) {
			t.Fatalf("stream changed with nothing to decorate:\nin  %q\nout %q", in, got)
		}

		// Decorating changes no event's framing, and a data payload only
		// when it is a tools/list result.
		d, _ := recorder()
		got := runSSE(t, d, string(in), n)
		before, after := parseSSE(string(in)), parseSSE(got)
		if len(before) != len(after) {
			t.Fatalf("%d events became %d:\nin  %q\nout %q", len(before), len(after), in, got)
		}
		for i := range before {
			b, a := before[i], after[i]
			if b.id != a.id || b.typ != a.typ {
				t.Fatalf("event %d: %+v became %+v", i, b, a)
			}
			if b.data != a.data {
				if !json.Valid([]byte(a.data)) || !strings.Contains(a.data, `"securitySchemes":[{"type":"noauth"}]`) {
					t.Fatalf("event %d: data %q became %q", i, b.data, a.data)
				}
				if again := d.JSON([]byte(a.data)); !json.Valid(again) {
					t.Fatalf("decorated data does not decorate cleanly again: %q", a.data)
				}
			}
		}
	})
}

func TestSSEBareCRBeforeLFBlankLine(t *testing.T) {
	d, _ := recorder()
	in := "data:{\"result\":\rid: 1\rdata:{\"tools\":[{\"name\":\"a\"}]}}\n\n" + "data: [2]\n\n"
	want := "id: 1\rdata:{\"result\": {\"tools\":[{\"name\":\"a\",\"securitySchemes\":[{\"type\":\"noauth\"}],\"_meta\":{\"securitySchemes\":[{\"type\":\"noauth\"}]}}]}}\n\n" + "data: [2]\n\n"
	eachChunking(t, d, in, want)
	if got := parseSSE(runSSE(t, d, in, 3)); len(got) != 2 {
		t.Errorf("events %+v, want 2", got)
	}
}

func BenchmarkSSE(b *testing.B) {
	body := toolsList(20)
	stream := []byte(": ka\n\nid: 1\nevent: message\ndata: " + string(body) + "\n\n")
	d, _ := recorder()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		rc := d.SSE(io.NopCloser(bytes.NewReader(stream)))
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
	}
}
