package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/decorate"
	"github.com/toolgate/toolgate/jsonrpc"
)

// maxDecoratedJSON bounds a JSON response held in memory for decoration; a
// larger one streams through undecorated.
const maxDecoratedJSON = 16 << 20

// decoratorFor returns the decorator for a request whose response can carry
// tools/list results, or nil. Only results answering the tools/list ids of
// this request are rewritten and learnt from, so another method's result
// that happens to hold a "tools" array can neither be rewritten nor teach
// the policy that a tool is public. GET streams carry no ids toolgate saw
// (they replay earlier responses): there every tools/list-shaped result is
// decorated, but from the policy alone, without learning.
func (g *Gateway) decoratorFor(r *http.Request, msgs jsonrpc.Message) *decorate.Decorator {
	if g.decorator == nil {
		return nil
	}
	if r.Method == http.MethodGet {
		return g.replayDecorator
	}
	var ids []string
	for _, c := range msgs.Calls {
		if c.Kind == jsonrpc.Request && c.Method == "tools/list" {
			ids = append(ids, string(c.ID))
		}
	}
	if ids == nil {
		return nil
	}
	d := *g.decorator
	d.ForID = func(id json.RawMessage) bool {
		for _, want := range ids {
			if string(id) == want {
				return true
			}
		}
		return false
	}
	return &d
}

// decorateResponse rewrites a tools/list response in place. Decoration is
// advisory (tools/call is where access is enforced), so anything it cannot
// handle passes through unchanged with a log line.
func (g *Gateway) decorateResponse(resp *http.Response, d *decorate.Decorator) {
	h := resp.Header
	if ce := h.Get("Content-Encoding"); ce != "" && ce != "identity" {
		g.log.Warn("upstream compressed a tools/list response despite the request; securitySchemes not added", zap.String("content_encoding", ce))
		return
	}
	ct := h.Get("Content-Type")
	if isEventStream(ct) {
		resp.Body = d.SSE(resp.Body)
		resp.ContentLength = -1
		h.Del("Content-Length")
		return
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDecoratedJSON+1))
	if err != nil || len(body) > maxDecoratedJSON {
		if err == nil {
			g.log.Warn("tools/list response too large to decorate; passed through unchanged", zap.Int("limit", maxDecoratedJSON))
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return
	}
	_ = resp.Body.Close()
	out := d.JSON(body)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	h.Set("Content-Length", strconv.Itoa(len(out)))
}

type readCloser struct {
	io.Reader
	io.Closer
}
