package clientmeta

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// newHTTPClient builds the only client that fetches documents. Every field
// that matters is set explicitly rather than cloned from
// http.DefaultTransport, whose environment proxy would send requests around
// the address check.
func newHTTPClient(o Options) *http.Client {
	dialer := &net.Dialer{Timeout: o.Timeout}
	if !o.AllowPrivateAddresses {
		dialer.Control = checkDialAddress
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           10,
		IdleConnTimeout:        30 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		// A redirect could point anywhere, and the document's client_id
		// must equal the URL we asked for anyway; refuse them.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		// No Jar: cookies are never stored or sent.
	}
}

// kind describes one sort of thing the Fetcher fetches, for its limits
// and for error descriptions that say which it was.
type kind struct {
	noun      string // "the client metadata document"
	param     string // the parameter that named the URL: "client_id"
	accept    string // the Accept header
	wantType  string // the acceptable Content-Types, for descriptions
	mediaType func(string) bool
	maxBytes  func(*Fetcher) int64
}

var documentKind = &kind{
	noun:      "the client metadata document",
	param:     "client_id",
	accept:    "application/json",
	wantType:  "application/json",
	mediaType: isJSONMediaType,
	maxBytes:  func(f *Fetcher) int64 { return f.opts.MaxBytes },
}

// fetchDocument GETs clientID and validates the document. It returns how
// long the document may be cached.
func (f *Fetcher) fetchDocument(ctx context.Context, clientID string) (*Document, time.Duration, error) {
	body, ttl, err := f.get(ctx, clientID, documentKind)
	if err != nil {
		return nil, 0, err
	}
	doc, err := parseDocument(body, clientID)
	if err != nil {
		return nil, 0, err
	}
	return doc, ttl, nil
}

// get GETs rawURL with the safe client and returns the body of a 200
// answer of k's media type and size, and how long it may be cached.
func (f *Fetcher) get(ctx context.Context, rawURL string, k *kind) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, newError(k.param+" is not a valid URL", err)
	}
	req.Header.Set("Accept", k.accept)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, f.transportError(err, k)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, k); err != nil {
		return nil, 0, err
	}
	body, err := f.readBody(resp, k)
	if err != nil {
		return nil, 0, err
	}
	return body, cacheTTL(resp.Header.Get("Cache-Control"), f.opts.MinTTL, f.opts.MaxTTL), nil
}

// transportError turns a failed request into an Error whose description
// says what went wrong without revealing internal addresses.
func (f *Fetcher) transportError(err error, k *kind) *Error {
	var addrErr *addressError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &addrErr):
		return newError("the "+k.param+" host resolves to an address that is not publicly routable", err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return newError(fmt.Sprintf("fetching %s timed out after %s", k.noun, f.opts.Timeout), err)
	case errors.As(err, &dnsErr):
		return newError("the "+k.param+" host name could not be resolved", err)
	default:
		return newError(k.noun+" could not be fetched (connection or TLS failure)", err)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// checkResponse accepts only a 200 with one of k's media types.
func checkResponse(resp *http.Response, k *kind) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return newError(fmt.Sprintf("%s URL answered with a redirect (status %d); redirects are not followed", k.noun, resp.StatusCode), nil)
	}
	if resp.StatusCode != http.StatusOK {
		return newError(fmt.Sprintf("%s URL answered with status %d, want 200", k.noun, resp.StatusCode), nil)
	}
	contentType := resp.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || !k.mediaType(mediaType) {
		return newError(fmt.Sprintf("%s has Content-Type %q, want %s", k.noun, truncate(contentType, 100), k.wantType), err)
	}
	return nil
}

// isJSONMediaType accepts application/json and application/*+json.
// mime.ParseMediaType has already lower-cased the type.
func isJSONMediaType(mediaType string) bool {
	return mediaType == "application/json" ||
		(strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json"))
}

// readBody reads at most k's size limit. A larger body is an error, never
// cut short and parsed: a truncated document could parse to something else.
func (f *Fetcher) readBody(resp *http.Response, k *kind) ([]byte, error) {
	limit := k.maxBytes(f)
	tooLarge := newError(fmt.Sprintf("%s is larger than %d bytes", k.noun, limit), nil)
	if resp.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, f.transportError(err, k)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// truncate shortens s for inclusion in a description.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
