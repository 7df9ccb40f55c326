// Package upstream knows how to reach the MCP server toolgate protects: the
// tuned HTTP transport every forwarded request uses. It never inspects or
// authorises requests.
package upstream

import (
	"net"
	"net/http"
	"time"
)

// Options tunes the transport. The zero value is usable.
type Options struct {
	// MaxIdleConns is how many idle keep-alive connections are kept to the
	// upstream. Go's default of 2 per host makes a busy proxy open a new
	// connection for most requests; size it for the expected concurrency.
	MaxIdleConns int
	DialTimeout  time.Duration
}

// NewTransport returns the transport for upstream requests.
func NewTransport(o Options) *http.Transport {
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 256
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               nil, // the upstream is addressed directly; HTTP_PROXY must not divert it
		DialContext:         d.DialContext,
		MaxIdleConns:        o.MaxIdleConns,
		MaxIdleConnsPerHost: o.MaxIdleConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// Responses pass through as the upstream encoded them; the
		// transport must not ask for gzip on its own and decode it
		// behind the proxy's back.
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		// No ResponseHeaderTimeout: a tool call may legitimately run for
		// minutes before its first byte. Client disconnects cancel it.
	}
}
