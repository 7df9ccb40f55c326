package authserver

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Local sign-in attempts allowed per client IP and per username.
const (
	loginLimit = rate.Limit(10.0 / 60) // 10 per minute
	loginBurst = 5
)

// maxLimiterKeys bounds the memory of one limiter. Past it, idle entries
// are dropped; if all are busy, the map starts over.
const maxLimiterKeys = 10000

// limiter is a token bucket per key (client IP or username).
type limiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(limit rate.Limit, burst int) *limiter {
	return &limiter{limit: limit, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket. When there is none it reports
// how long until there will be.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimiterKeys {
			l.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// blocked reports, without spending anything, whether key's bucket is
// empty, and if so how long until it is not.
func (l *limiter) blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok || b.lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.lim.TokensAt(now)) / float64(l.limit) * float64(time.Second))
}

// sweep drops buckets idle long enough to have refilled completely.
func (l *limiter) sweep(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxLimiterKeys {
		clear(l.buckets)
	}
}

// clientIP is the address rate limits count against: the TCP peer, or,
// when the peer is one of Options.TrustedProxies, the nearest address in
// X-Forwarded-For that is not (anyone can write X-Forwarded-For; only the
// hops toolgate was told to trust are believed). IPv6 addresses count per
// /64, the block one subscriber usually holds.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if s.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a garbled hop: stop believing the header here
			}
			addr = hop.Unmap()
			if !s.trusted(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opt.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Log fields with stable names. Client IDs are public, but tgc1 ones can
// be kilobytes long, so only their start is logged.
func clientIDField(id string) zap.Field {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return zap.String("client_id", id)
}

func errField(err error) zap.Field { return zap.Error(err) }

func zapString(k, v string) zap.Field { return zap.String(k, v) }
