package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// Limits on what a provider may send back. A misbehaving or hostile
// provider must not be able to hold a sign-in open forever or fill memory.
const (
	maxResponseBytes = 1 << 20
	requestTimeout   = 30 * time.Second
)

// boundedClient returns a copy of c (or a fresh client) whose every request
// has a time limit and whose every response body is cut off with an error
// past maxResponseBytes. The caller's client is not modified.
func boundedClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	if out.Timeout == 0 {
		out.Timeout = requestTimeout
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = boundedTransport{base: base}
	return &out
}

type boundedTransport struct{ base http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

// limitedBody fails loudly instead of truncating, so a cut-off document
// never parses as a shorter valid one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

var errTooLarge = fmt.Errorf("idp: response body is larger than %d bytes", maxResponseBytes)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Allow a clean EOF exactly at the limit; anything more is too much.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		switch {
		case n > 0:
			return 0, errTooLarge
		case err == nil:
			return 0, nil // nothing yet; the caller reads again
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// withClient hands the client to golang.org/x/oauth2, which only accepts
// it through the context.
func withClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// tokenError describes a failed code exchange without echoing the raw
// response body, which can be large and is not ours to show.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	if re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("the provider answered %q: %q", re.ErrorCode, re.ErrorDescription)
		}
		return fmt.Errorf("the provider answered %q", re.ErrorCode)
	}
	return fmt.Errorf("the token endpoint answered %s", re.Response.Status)
}

// checkEndpoint requires an absolute https URL; plain http is accepted only
// for loopback hosts, where tests and local development run.
func checkEndpoint(setting, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s is empty", setting)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", setting, raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%s %q must be an https URL (http is allowed only for loopback)", setting, raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostOf names a provider in error messages.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}
