package clientmeta

import (
	"fmt"
	"net/netip"
	"syscall"
)

// blockedPrefixes are the address ranges a client_id must never make
// toolgate connect to: they reach the host itself, the internal network or
// the cloud metadata service (169.254.169.254), or are not unicast at all.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes broadcast
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"}, // deprecated, may reach IPv4 internals
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// IPv6 ranges that carry an IPv4 address, which is checked in turn: a
// NAT64 or 6to4 gateway would otherwise forward to a blocked IPv4 address.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// blockedReason says why ip must not be connected to, or "" if it may.
func blockedReason(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	// Prefix.Contains is false for any address with a zone, so a zoned
	// fe80::1%eth0 would pass every check; the zone is not part of the range.
	ip = ip.WithZone("")
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if ip.Is6() {
		if embedded, ok := embeddedIPv4(ip); ok {
			if reason := blockedReason(embedded); reason != "" {
				return reason + " (embedded in IPv6)"
			}
		}
	}
	for _, b := range blockedPrefixes {
		if b.prefix.Contains(ip) {
			return b.reason
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address inside a NAT64 or 6to4 address.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// addressError is returned by the dialer for a refused address. Fetch maps
// it to a description that does not reveal the address, since a client_id
// naming an internal host name would otherwise learn what it resolves to.
type addressError struct {
	addr   string
	reason string
}

func (e *addressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: %s address", e.addr, e.reason)
}

// checkDialAddress is a net.Dialer Control function. The dialer calls it
// with the resolved IP right before connecting, for every address it tries,
// so a host name that resolves to a public address at first and a private
// one later (DNS rebinding) is still refused.
func checkDialAddress(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return &addressError{addr: address, reason: "non-TCP (" + network + ")"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &addressError{addr: address, reason: "unparsable"}
	}
	if reason := blockedReason(ap.Addr()); reason != "" {
		return &addressError{addr: address, reason: reason}
	}
	return nil
}
