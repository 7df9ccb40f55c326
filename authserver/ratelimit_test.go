package authserver

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The address limits count against: the TCP peer unless it is a trusted
// proxy, then the nearest untrusted X-Forwarded-For hop; IPv6 per /64.
func TestClientIP(t *testing.T) {
	s := &Server{opt: Options{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}}}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},                  // untrusted peer: header ignored
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},                    // one trusted hop
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // spoofed left part ignored
		{"10.1.2.3:5000", "", "10.1.2.3"},                                    // nothing forwarded
		{"10.1.2.3:5000", "garbage, 10.9.9.9", "10.9.9.9"},                   // stop at a garbled hop
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"[fd00::1]:443", "2001:db8:aa:bb::1", "2001:db8:aa:bb::/64"},
		{"[::ffff:203.0.113.9]:80", "", "203.0.113.9"},
	} {
		r := httptest.NewRequest("POST", "/token", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientIP(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}
