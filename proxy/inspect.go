package proxy

import (
	"errors"
	"net/http"

	"github.com/toolgate/toolgate/jsonrpc"
)

// inspect checks a POST body strictly (package jsonrpc) and the headers that
// must agree with it. Bodies that any mainstream parser could read another
// way are refused here, so what toolgate decides on is what the upstream
// executes.
func inspect(r *http.Request, body []byte) (jsonrpc.Message, int, string) {
	if err := jsonrpc.CheckContentHeaders(r.Header); err != nil {
		return jsonrpc.Message{}, statusOf(err), err.Error()
	}
	m, err := jsonrpc.Inspect(body)
	if err != nil {
		return jsonrpc.Message{}, statusOf(err), err.Error()
	}
	if err := jsonrpc.CheckMetadataHeaders(m, r.Header); err != nil {
		return m, statusOf(err), err.Error()
	}
	return m, 0, ""
}

func statusOf(err error) int {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je.Status
	}
	return http.StatusBadRequest
}

// methodForLog names what a body asked for, for the request log line.
func methodForLog(m jsonrpc.Message) string {
	switch {
	case len(m.Calls) == 0:
		return ""
	case m.Batch:
		return "batch"
	case m.Calls[0].Kind == jsonrpc.Response:
		return "response"
	}
	return m.Calls[0].Method
}
