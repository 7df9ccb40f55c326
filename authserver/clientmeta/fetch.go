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

// fetch GETs clientID and validates the document. It returns how long the
// document may be cached.
func (f *Fetcher) fetch(ctx context.Context, clientID string) (*Document, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, 0, newError("client_id is not a valid URL", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, f.transportError(err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp); err != nil {
		return nil, 0, err
	}
	body, err := f.readBody(resp)
	if err != nil {
		return nil, 0, err
	}
	doc, err := parseDocument(body, clientID)
	if err != nil {
		return nil, 0, err
	}
	ttl := cacheTTL(resp.Header.Get("Cache-Control"), f.opts.MinTTL, f.opts.MaxTTL)
	return doc, ttl, nil
}

// transportError turns a failed request into an Error whose description
// says what went wrong without revealing internal addresses.
func (f *Fetcher) transportError(err error) *Error {
	var addrErr *addressError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &addrErr):
		return newError("the client_id host resolves to an address that is not publicly routable", err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return newError(fmt.Sprintf("fetching the client metadata document timed out after %s", f.opts.Timeout), err)
	case errors.As(err, &dnsErr):
		return newError("the client_id host name could not be resolved", err)
	default:
		return newError("the client metadata document could not be fetched (connection or TLS failure)", err)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// checkResponse accepts only a 200 with a JSON media type.
func checkResponse(resp *http.Response) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return newError(fmt.Sprintf("the client metadata document URL answered with a redirect (status %d); redirects are not followed", resp.StatusCode), nil)
	}
	if resp.StatusCode != http.StatusOK {
		return newError(fmt.Sprintf("the client metadata document URL answered with status %d, want 200", resp.StatusCode), nil)
	}
	contentType := resp.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || !isJSONMediaType(mediaType) {
		return newError(fmt.Sprintf("the client metadata document has Content-Type %q, want application/json", truncate(contentType, 100)), err)
	}
	return nil
}

// isJSONMediaType accepts application/json and application/*+json.
// mime.ParseMediaType has already lower-cased the type.
func isJSONMediaType(mediaType string) bool {
	return mediaType == "application/json" ||
		(strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json"))
}

// readBody reads at most MaxBytes. A larger body is an error, never cut
// short and parsed: a truncated document could parse to something else.
func (f *Fetcher) readBody(resp *http.Response) ([]byte, error) {
	tooLarge := newError(fmt.Sprintf("the client metadata document is larger than %d bytes", f.opts.MaxBytes), nil)
	if resp.ContentLength > f.opts.MaxBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBytes+1))
	if err != nil {
		return nil, f.transportError(err)
	}
	if int64(len(body)) > f.opts.MaxBytes {
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
