package proxy

import (
	"encoding/json"
	"net/http"
)

// inspect is replaced by the strict jsonrpc inspector.
func inspect(r *http.Request, body []byte) (string, int, string) {
	if !json.Valid(body) {
		return "", http.StatusBadRequest, "request body is not valid JSON"
	}
	return "", 0, ""
}
