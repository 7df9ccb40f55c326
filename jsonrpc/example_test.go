package jsonrpc_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/toolgate/toolgate/jsonrpc"
)

// The gateway runs the three checks in this order on every POST body (read
// once, bounded), then decides on m and forwards body unchanged.
func Example() {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("MCP-Protocol-Version", "2026-07-28")
	h.Set("Mcp-Method", "tools/call")
	h.Set("Mcp-Name", "=?base64?Y2Fmw6k=?=")
	body := []byte(`{"jsonrpc":"2.0","id":"r1","method":"tools\/call","params":{"name":"caf\u00e9","arguments":{},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)

	if err := jsonrpc.CheckContentHeaders(h); err != nil {
		panic(err)
	}
	m, err := jsonrpc.Inspect(body)
	if err != nil {
		panic(err)
	}
	if err := jsonrpc.CheckMetadataHeaders(m, h); err != nil {
		panic(err)
	}
	c := m.Calls[0]
	fmt.Println(c.Kind, c.Method, c.Name, string(c.ID), c.ProtocolVersion)

	_, err = jsonrpc.Inspect([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`))
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Reason)
	}
	// Output:
	// request tools/call café "r1" 2026-07-28
	// 400 key matches protocol key "method" only under case folding at byte 46
}
