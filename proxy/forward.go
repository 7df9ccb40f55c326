package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/decorate"
	"github.com/toolgate/toolgate/jsonrpc"
)

// Identity headers toolgate asserts to the upstream. Inbound headers that
// could be read as one of these are always removed first.
const (
	headerUser  = "X-Forwarded-User"
	headerEmail = "X-Forwarded-Email"
)

type principalKey struct{}

// decorateKey marks a forwarded request whose response may hold tools/list
// results; the value is the *decorate.Decorator to apply.
type decorateKey struct{}

func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, p *auth.Principal, msgs jsonrpc.Message) {
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	if d := g.decoratorFor(r, msgs); d != nil {
		ctx = context.WithValue(ctx, decorateKey{}, d)
	}
	if r.Method == http.MethodGet {
		// A GET is the long-lived server-to-client stream. It ends when the
		// token that opened it expires, so a stream never outlives its
		// authorization (the client reconnects with a fresh token), and
		// when toolgate shuts down rather than holding shutdown to its
		// deadline.
		var cancel context.CancelFunc
		if p != nil && !p.Expiry.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, p.Expiry)
		} else {
			ctx, cancel = context.WithCancel(ctx)
		}
		stop := context.AfterFunc(g.streams, cancel)
		defer stop()
		defer cancel()
	}
	g.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (g *Gateway) newReverseProxy() *httputil.ReverseProxy {
	target := g.opt.Upstream
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme = target.Scheme
			out.URL.Host = target.Host
			// The MCP endpoint maps onto the upstream endpoint exactly;
			// whatever path the client used is not appended to it.
			out.URL.Path = target.Path
			out.URL.RawPath = target.RawPath
			out.URL.RawQuery = target.RawQuery
			out.Host = "" // Host is the upstream's: SDK DNS-rebinding guards check it
			pr.SetXForwarded()
			if in := pr.In; in.Method == http.MethodPost && in.ContentLength > 0 {
				// ReverseProxy wraps the body in a type the transport cannot
				// tell is in memory, so it would write headers and body in
				// two syscalls. This body is the inspected bytes (setBody).
				out.Body = in.Body
			}
			stripIdentityHeaders(out.Header)
			if !g.opt.ForwardAccessToken {
				out.Header.Del("Authorization")
			}
			if out.Context().Value(decorateKey{}) != nil {
				// The response will be rewritten: ask for it uncompressed.
				out.Header.Del("Accept-Encoding")
			}
			if p, _ := out.Context().Value(principalKey{}).(*auth.Principal); p != nil {
				out.Header.Set(headerUser, p.Subject)
				if p.Email != "" {
					out.Header.Set(headerEmail, p.Email)
				}
			}
		},
		Transport:      g.opt.Transport,
		BufferPool:     copyBuffers,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
	}
}

// stripIdentityHeaders removes every inbound header an upstream might take
// for an asserted identity header: any case, and "_" for "-", since some
// servers (WSGI, PHP) fold underscores into dashes.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if foldedEqual(name, "x-forwarded-user") || foldedEqual(name, "x-forwarded-email") {
			delete(h, name)
		}
	}
}

// foldedEqual compares a header name with want (lowercase, dashes) ignoring
// ASCII case and reading '_' as '-', without allocating: it runs on every
// header of every request.
func foldedEqual(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

func (g *Gateway) modifyResponse(resp *http.Response) error {
	h := resp.Header
	// toolgate owns CORS for the endpoint; a second Allow-Origin from the
	// upstream would make browsers reject the response.
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			delete(h, name)
		}
	}
	if isEventStream(h.Get("Content-Type")) {
		// Tell buffering reverse proxies in front of toolgate (nginx) to
		// pass events through as they come.
		h.Set("X-Accel-Buffering", "no")
	}
	p, _ := resp.Request.Context().Value(principalKey{}).(*auth.Principal)
	g.trackSession(resp, subject(p))
	if d, _ := resp.Request.Context().Value(decorateKey{}).(*decorate.Decorator); d != nil {
		g.decorateResponse(resp, d)
	}
	return nil
}

func isEventStream(ct string) bool {
	if !strings.HasPrefix(ct, "text/event-stream") {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// upstreamError answers 502 with a JSON-RPC error when the upstream cannot
// be reached or breaks off; a client that went away gets nothing.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	g.log.Error("upstream request failed", zap.String("method", r.Method), zap.Error(err))
	rpcError(w, http.StatusBadGateway, -32603, "the MCP server behind toolgate is unavailable")
}

// copyBuffers pools ReverseProxy's copy buffers; without a pool it
// allocates 32 KiB per response. The pool holds array pointers so that
// neither Get nor Put allocates.
var copyBuffers = &bufferPool{}

const copyBufferSize = 32 << 10

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}

// readBody reads the whole POST body, bounded by max. It returns a status
// and message when the body cannot be accepted. The buffer is not pooled:
// the transport may still read a request body after the round trip ends,
// and a reused buffer could then carry one user's bytes into another's
// request.
//
// Memory follows the bytes that actually arrive, not the Content-Length a
// client declares (a few bytes of headers must not pin MAX_BODY_BYTES), and
// the read has a deadline, so a client that stalls mid-body lets go of its
// buffer. The deadline is lifted afterwards: responses may stream for long.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, int, string) {
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, "request body is larger than MAX_BODY_BYTES"
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()

	src := http.MaxBytesReader(w, r.Body, max)
	var body []byte
	var err error
	if r.ContentLength >= 0 && r.ContentLength <= initialBodyBuffer {
		body = make([]byte, r.ContentLength) // the common case: one exact allocation
		_, err = io.ReadFull(src, body)
	} else {
		var buf bytes.Buffer // grows only as bytes arrive
		buf.Grow(initialBodyBuffer)
		_, err = buf.ReadFrom(src)
		body = buf.Bytes()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, "request body is larger than MAX_BODY_BYTES"
		}
		return nil, http.StatusBadRequest, "request body could not be read in time"
	}
	return body, 0, ""
}

// initialBodyBuffer is the most allocated before body bytes arrive.
const initialBodyBuffer = 64 << 10

// bodyReadTimeout bounds how long a client may take to send its body; a
// variable so tests need not wait for it.
var bodyReadTimeout = 30 * time.Second

// setBody makes the request carry exactly the bytes that were inspected,
// with a Content-Length instead of chunked framing.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
}
