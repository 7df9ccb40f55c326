package clientmeta

import (
	"net/netip"
	"testing"
	"time"
)

// Classification only: nothing here connects anywhere.
func TestBlockedReason(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"169.254.0.1", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.254", true},
		{"192.168.1.1", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1%1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:10.0.0.1", true},
		{"::127.0.0.1", true},        // IPv4-compatible
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"2002:c0a8:0101::1", true},  // 6to4 of 192.168.1.1
		{"2002:0808:0808::1", false}, // 6to4 of 8.8.8.8
		{"64:ff9b::808:808", false},  // NAT64 of 8.8.8.8
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"172.32.0.1", false},
		{"100.128.0.1", false},
		{"::ffff:8.8.8.8", false},
		{"2001:4860::8888", false},
		{"2606:4700:4700::1111", false},
	}
	for _, tt := range tests {
		reason := blockedReason(netip.MustParseAddr(tt.ip))
		if (reason != "") != tt.blocked {
			t.Errorf("blockedReason(%s) = %q, want blocked=%v", tt.ip, reason, tt.blocked)
		}
	}
	if blockedReason(netip.Addr{}) == "" {
		t.Error("the zero address was not blocked")
	}
}

func TestCheckDialAddress(t *testing.T) {
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2001:4860::8888]:443", true},
		{"tcp4", "127.0.0.1:443", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp4", "169.254.169.254:80", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp4", "not-an-address", false},
	}
	for _, tt := range tests {
		err := checkDialAddress(tt.network, tt.address, nil)
		if (err == nil) != tt.ok {
			t.Errorf("checkDialAddress(%s, %s) = %v, want ok=%v", tt.network, tt.address, err, tt.ok)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	const min, max = 5 * time.Minute, 24 * time.Hour
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", min},
		{"max-age=600", 10 * time.Minute},
		{"public, max-age=3600", time.Hour},
		{"Max-Age=3600", time.Hour},
		{`max-age="3600"`, time.Hour},
		{"max-age=10", min},
		{"max-age=0", min},
		{"no-store", min},
		{"no-cache, max-age=0", min},
		{"max-age=999999999", max},
		{"max-age=99999999999999999999", min}, // overflow: unparsable
		{"max-age=-5", min},
		{"max-age=abc", min},
	}
	for _, tt := range tests {
		if got := cacheTTL(tt.header, min, max); got != tt.want {
			t.Errorf("cacheTTL(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestCacheEvictsWhenFull(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCache[*Document](3, func() time.Time { return now })
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, &Document{ClientID: k}, nil, time.Minute)
	}
	if n := len(c.entries); n != 3 {
		t.Fatalf("cache holds %d entries, want 3", n)
	}
	if _, ok := c.get("e"); !ok {
		t.Error("the newest entry was evicted")
	}
}
