package jsonrpc

import (
	"fmt"
	"strings"
	"testing"
)

// toolsCall1K is a realistic tools/call of about 1 KiB, shaped like what the
// TS SDK sends for a search tool: _meta first, nested arguments, a little
// non-ASCII text and one escaped string.
const toolsCall1K = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"_meta":{"progressToken":"c0ffee-42","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.4.2"},"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}},"sampling":{}}},"name":"search_items","arguments":{"query":"wireless headphones with noise cancelling, under 200 € and in stock","filters":{"category":["electronics","audio"],"price":{"min":25.5,"max":199.99,"currency":"EUR"},"rating":{"atLeast":4},"availability":"in_stock","brands":["Sony","Bose","Sennheiser","Apple","Jabra"],"shipping":{"country":"DE","express":true}},"sort":[{"field":"relevance","order":"desc"},{"field":"price","order":"asc"}],"page":{"size":25,"cursor":null},"locale":"de-DE","include":["reviews","specs","images"],"notes":"Customer said: \"prefers over-ear\" \u2014 budget is firm.\nDo not include refurbished items.","session":{"user":"u-8d3f2a","started":"2026-08-01T09:14:07Z","device":{"os":"macOS","app":"Claude Desktop","ver":"0.14.1"}}}}}`

func BenchmarkInspect(b *testing.B) {
	batch := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Berlin","units":"metric"}}},`, 9) +
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":0.5}}]`
	bigArgs := func() string {
		var sb strings.Builder
		sb.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bulk_upload","arguments":{`)
		for i := range 2000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"field_%04d":{"v":[%d,"x",true]}`, i, i)
		}
		sb.WriteString(`}}}`)
		return sb.String()
	}()
	for _, bc := range []struct{ name, body string }{
		{"tools_call_1KiB", toolsCall1K},
		{"batch_10", batch},
		{"tools_list", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`},
		{"big_arguments_64KiB", bigArgs},
	} {
		body := []byte(bc.body)
		if _, err := Inspect(body); err != nil {
			b.Fatalf("%s: %v", bc.name, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Inspect(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
