package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/internal/testissuer"
	"github.com/toolgate/toolgate/proxy"
	"github.com/toolgate/toolgate/upstream"
)

// The benchmarks below measure toolgate's own cost on the hot path
// (credentials → verify → decide → inspect → forward) in-process: requests
// go straight to Gateway.ServeHTTP, and the gateway forwards them over
// loopback, through its pooled transport, to an upstream that answers a
// fixed JSON-RPC result without any MCP SDK behind it. The "direct"
// sub-benchmark sends the same request to the same upstream over the same
// kind of transport, so the difference between the two is what toolgate
// adds. bench/load.sh measures the built binary under wrk instead.

const benchResource = "https://mcp.example.com/mcp"

// benchResult is what the fake upstream answers to every tools/call.
var benchResult = []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"Found 3 documents matching the query."}],"isError":false}}`)

// benchCallBody is a realistic tools/call of about 1 KiB: a tool with
// nested arguments and a progress token, as MCP clients send them.
func benchCallBody(b *testing.B) []byte {
	b.Helper()
	call := map[string]any{
		"jsonrpc": "2.0",
		"id":      42,
		"method":  "tools/call",
		"params": map[string]any{
			"name": "search_documents",
			"arguments": map[string]any{
				"query": "quarterly revenue report for the EMEA region, including the breakdown per product line and the comparison with the previous fiscal year",
				"filters": map[string]any{
					"folders":       []string{"/finance/reports/2025", "/finance/reports/2024", "/shared/board-meetings"},
					"file_types":    []string{"pdf", "docx", "xlsx", "pptx"},
					"modified_from": "2024-01-01T00:00:00Z",
					"modified_to":   "2025-12-31T23:59:59Z",
					"owners":        []string{"alice@example.com", "bob@example.com", "carol@example.com"},
					"labels":        []string{"confidential", "finance", "quarterly", "emea"},
				},
				"sort":             map[string]any{"field": "relevance", "order": "desc"},
				"limit":            20,
				"include_snippets": true,
				"snippet_length":   240,
				"language":         "en",
				"context":          "The user is preparing the slides for the next board meeting and needs the latest figures, with sources they can cite. Prefer final versions over drafts, and official reports over email attachments.",
			},
			"_meta": map[string]any{"progressToken": "c0ffee00-1234-4abc-8def-0123456789ab"},
		},
	}
	body, err := json.Marshal(call)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(body); n < 900 || n > 1300 {
		b.Fatalf("tools/call body is %d bytes, want about 1 KiB", n)
	}
	return body
}

// fastUpstream answers every POST with benchResult and counts what reaches it.
func fastUpstream(b *testing.B) (*url.URL, *atomic.Int64) {
	b.Helper()
	var hits atomic.Int64
	length := strconv.Itoa(len(benchResult))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(benchResult)
	}))
	b.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	return u, &hits
}

// benchLogger is toolgate's production logger (zap's production JSON
// encoder at info, buffered, as cmd/toolgate/serve.go newLogger builds it)
// writing to /dev/null. Off, it is a no-op logger: with LOG_LEVEL=warn no
// per-request line is written.
func benchLogger(b *testing.B, on bool) *zap.Logger {
	b.Helper()
	if !on {
		return zap.NewNop()
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.Lock(f), Size: 256 << 10, FlushInterval: time.Second}
	b.Cleanup(func() { _ = ws.Stop() })
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, zap.InfoLevel)
	return zap.New(core).Named("gateway")
}

// benchGateway wires a Gateway the way cmd/toolgate/serve.go does with the
// default settings (JWT validation chosen by token shape, no tool policy,
// CHALLENGE_MODE=auto), with keys from a real issuer over httptest.
func benchGateway(b *testing.B, up *url.URL, log *zap.Logger) (*proxy.Gateway, *testissuer.Issuer) {
	b.Helper()
	iss := testissuer.New(b, "")
	keys := auth.NewRemoteKeySet(iss.Server.URL+"/jwks", iss.Server.Client())
	if err := keys.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	verifier, err := auth.NewJWTVerifier(auth.JWTOptions{
		Issuer:    iss.URL,
		Audiences: []string{benchResource},
		Keys:      keys,
		CacheSize: 10000, // TOKEN_CACHE_SIZE default
	})
	if err != nil {
		b.Fatal(err)
	}
	gw := proxy.New(proxy.Options{
		Upstream:            up,
		Transport:           upstream.NewTransport(upstream.Options{MaxIdleConns: 256}),
		Verifier:            auth.ByShape{JWT: verifier},
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		RequiredScopes:      []string{"mcp:read"},
		ChallengeScopes:     []string{"mcp:read"},
		MaxBodyBytes:        4 << 20,
		Log:                 log,
		ChallengeMode:       "auto",
	})
	b.Cleanup(gw.CloseStreams)
	return gw, iss
}

// benchRequest is a template request as net/http's server would hand it to
// the gateway: each iteration takes a shallow copy with its own header map
// and a rewound body, so the loop measures the gateway, not request parsing.
type benchRequest struct {
	tmpl *http.Request
	body []byte
}

func newBenchRequest(body []byte, token string) *benchRequest {
	r := httptest.NewRequest(http.MethodPost, benchResource, nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	r.Header.Set("User-Agent", "toolgate-bench/1")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r.ContentLength = int64(len(body))
	return &benchRequest{tmpl: r, body: body}
}

// rewindBody is an inbound body that can be replayed without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

func (br *benchRequest) next(body *rewindBody) *http.Request {
	r := *br.tmpl
	r.Header = br.tmpl.Header.Clone()
	body.Reset(br.body)
	r.Body = body
	return &r
}

// discardWriter is a reusable ResponseWriter that keeps only the status and
// the byte count; httptest.ResponseRecorder would add its own allocations.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: make(http.Header)} }

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *discardWriter) Flush() {}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// BenchmarkGatewayToolsCall is the authorised hot path: a cached RS256 token,
// a 1 KiB tools/call, forwarded to the upstream and answered 200.
func BenchmarkGatewayToolsCall(b *testing.B) {
	body := benchCallBody(b)
	for _, tc := range []struct {
		name string
		log  bool
	}{
		{"log=off", false}, // LOG_LEVEL=warn: no per-request line
		{"log=info", true}, // the default: one JSON line per request
	} {
		b.Run(tc.name, func(b *testing.B) {
			up, hits := fastUpstream(b)
			gw, iss := benchGateway(b, up, benchLogger(b, tc.log))
			req := newBenchRequest(body, iss.Token(b, iss.Claims(benchResource)))
			w := newDiscardWriter()
			var rb rewindBody

			// The first request verifies the signature and opens the
			// upstream connection; the loop measures what follows.
			gw.ServeHTTP(w, req.next(&rb))
			if w.status != http.StatusOK || w.n != len(benchResult) {
				b.Fatalf("warm-up: status %d, %d bytes; want 200 and %d bytes", w.status, w.n, len(benchResult))
			}
			hits.Store(0)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				gw.ServeHTTP(w, req.next(&rb))
				if w.status != http.StatusOK || w.n != len(benchResult) {
					b.Fatalf("status %d, %d bytes; want 200 and %d bytes", w.status, w.n, len(benchResult))
				}
			}
			if got := hits.Load(); got != int64(b.N) {
				b.Fatalf("upstream saw %d requests, want %d", got, b.N)
			}
		})
	}

	// The same request sent straight to the upstream over the same kind of
	// transport: subtract it from the runs above to get toolgate's share.
	b.Run("direct", func(b *testing.B) {
		up, _ := fastUpstream(b)
		rt := upstream.NewTransport(upstream.Options{MaxIdleConns: 256})
		b.Cleanup(rt.CloseIdleConnections)
		req := newBenchRequest(body, "")
		req.tmpl.URL = up
		req.tmpl.Host = up.Host
		req.tmpl.RequestURI = ""
		do := func() {
			r := req.tmpl.Clone(context.Background())
			r.Body = io.NopCloser(bytes.NewReader(body))
			resp, err := rt.RoundTrip(r)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		do()
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			do()
		}
	})
}

// BenchmarkGatewayToolsCallParallel runs the hot path from 32 goroutines,
// as wrk's 32 connections do, so the transport's idle pool and the token
// cache's lock are exercised under contention.
func BenchmarkGatewayToolsCallParallel(b *testing.B) {
	body := benchCallBody(b)
	up, hits := fastUpstream(b)
	gw, iss := benchGateway(b, up, zap.NewNop())
	req := newBenchRequest(body, iss.Token(b, iss.Claims(benchResource)))
	gw.ServeHTTP(newDiscardWriter(), req.next(&rewindBody{}))
	hits.Store(0)
	b.SetParallelism(16) // 16 × GOMAXPROCS (2 here) = 32 goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := newDiscardWriter()
		var rb rewindBody
		for pb.Next() {
			w.reset()
			gw.ServeHTTP(w, req.next(&rb))
			if w.status != http.StatusOK {
				b.Errorf("status %d, want 200", w.status)
				return
			}
		}
	})
}

// BenchmarkGatewayDenied is a request without a token: a 401 challenge that
// must never reach the upstream.
func BenchmarkGatewayDenied(b *testing.B) {
	body := benchCallBody(b)
	up, hits := fastUpstream(b)
	gw, _ := benchGateway(b, up, zap.NewNop())
	req := newBenchRequest(body, "")
	w := newDiscardWriter()
	var rb rewindBody
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		gw.ServeHTTP(w, req.next(&rb))
		if w.status != http.StatusUnauthorized || !strings.HasPrefix(w.h.Get("WWW-Authenticate"), "Bearer ") {
			b.Fatalf("status %d, challenge %q; want 401 with a Bearer challenge", w.status, w.h.Get("WWW-Authenticate"))
		}
	}
	if n := hits.Load(); n != 0 {
		b.Fatalf("a request without a token reached the upstream %d times", n)
	}
}
