package server

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddr feeds clientAddr untrusted X-Forwarded-For and X-Real-IP
// fields, and peers, behind a set of trusted proxies chosen by a bit mask.
// Whatever comes in, it must not panic, must never read the fields of a
// peer that is not trusted, and must return an address some field or the
// peer actually holds, unmapped and without zone; when the right-most
// X-Forwarded-For entry is an address that is not trusted, that entry is
// the client.
func FuzzClientAddr(f *testing.F) {
	for _, seed := range []struct {
		remote, xff, realIP string
		mask                byte
	}{
		{"127.0.0.1:5000", "203.0.113.7", "", 1},
		{"127.0.0.1:5000", "198.51.100.1, 203.0.113.7", "", 1},
		{"127.0.0.1:5000", "203.0.113.7, 10.0.0.2", "", 3},
		{"127.0.0.1:5000", "10.0.0.1, 10.0.0.2", "", 3},
		{"127.0.0.1:5000", "garbage", "203.0.113.9", 1},
		{"127.0.0.1:5000", "", "[2001:db8::1]:443", 1},
		{"[::ffff:127.0.0.1]:80", "::ffff:203.0.113.7", "", 1},
		{"[::1]:80", "[2001:db8::5]:1, fe80::1%eth0", "", 4},
		{"192.0.2.1:1", "203.0.113.7", "203.0.113.8", 1},
		{"not an address", "203.0.113.7", "", 15},
	} {
		f.Add(seed.remote, seed.xff, seed.realIP, seed.mask)
	}
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	f.Fuzz(func(t *testing.T, remote, xff, realIP string, mask byte) {
		var trusted []netip.Prefix
		for i, p := range prefixes {
			if mask&(1<<i) != 0 {
				trusted = append(trusted, p)
			}
		}
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		if realIP != "" {
			h.Set("X-Real-Ip", realIP)
		}
		addr, forwarded := clientAddr(remote, h, trusted)

		peerPort, err := netip.ParseAddrPort(remote)
		if err != nil {
			if addr.IsValid() || forwarded {
				t.Fatalf("peer %q is no IP:port, yet got %v (forwarded %v)", remote, addr, forwarded)
			}
			return
		}
		peer := peerPort.Addr().Unmap().WithZone("")
		if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() {
			t.Fatalf("got %v: want a valid address, unmapped, without zone", addr)
		}
		if !trustedAddr(peer, trusted) {
			if forwarded || addr != peer {
				t.Fatalf("untrusted peer %v: got %v (forwarded %v), want the peer, fields unread", peer, addr, forwarded)
			}
			return
		}
		if !forwarded {
			if addr != peer {
				t.Fatalf("not forwarded, yet %v is not the peer %v", addr, peer)
			}
			return
		}
		var held []netip.Addr
		for _, field := range append(strings.Split(xff, ","), realIP) {
			if ip, ok := parseForwardedAddr(field); ok {
				held = append(held, ip)
			}
		}
		found := false
		for _, ip := range held {
			found = found || ip == addr
		}
		if !found {
			t.Fatalf("forwarded client %v is in no field: X-Forwarded-For %q, X-Real-IP %q", addr, xff, realIP)
		}
		entries := strings.Split(xff, ",")
		if last, ok := parseForwardedAddr(entries[len(entries)-1]); ok && xff != "" && !trustedAddr(last, trusted) && addr != last {
			t.Fatalf("X-Forwarded-For %q ends with untrusted %v, yet the client is %v", xff, last, addr)
		}
	})
}
