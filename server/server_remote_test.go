package server

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestClientAddr: the address throttled and logged is the peer's, unless
// the peer is a trusted proxy, whose X-Forwarded-For (else X-Real-IP)
// names the client; a client can prepend what it likes to that field, and
// an untrusted peer's fields are never read.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	}
	tests := []struct {
		name      string
		peer      string
		xff       []string // X-Forwarded-For fields
		realIP    []string // X-Real-IP fields
		want      string   // what clientAddr says
		forwarded bool
		key       string // the throttled unit, if not want
	}{
		{name: "untrusted peer, no fields", peer: "192.0.2.1:5000", want: "192.0.2.1"},
		{name: "untrusted peer's X-Forwarded-For ignored", peer: "192.0.2.1:5000",
			xff: []string{"198.51.100.7"}, realIP: []string{"198.51.100.8"}, want: "192.0.2.1"},
		{name: "untrusted peer claiming to be behind a trusted one", peer: "192.0.2.1:5000",
			xff: []string{"198.51.100.7, 10.0.0.1"}, want: "192.0.2.1"},
		{name: "trusted peer, no fields", peer: "127.0.0.1:5000", want: "127.0.0.1"},
		{name: "trusted peer, one client", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7"}, want: "198.51.100.7", forwarded: true},
		{name: "spoofed left-most entries", peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.1, 10.9.9.9, 198.51.100.7"}, want: "198.51.100.7", forwarded: true},
		{name: "garbage left of the client", peer: "127.0.0.1:5000",
			xff: []string{"unknown, <script>, 198.51.100.7"}, want: "198.51.100.7", forwarded: true},
		{name: "chain of trusted proxies skipped", peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.1, 198.51.100.7, 10.1.2.3, 10.0.0.9"}, want: "198.51.100.7", forwarded: true},
		{name: "chain over several fields", peer: "127.0.0.1:5000",
			xff: []string{"203.0.113.1", "198.51.100.7,10.1.2.3", " 10.0.0.9 "}, want: "198.51.100.7", forwarded: true},
		{name: "all trusted: the left-most", peer: "127.0.0.1:5000",
			xff: []string{"10.0.0.5, 10.0.0.6, 127.0.0.1"}, want: "10.0.0.5", forwarded: true},
		{name: "X-Forwarded-For wins over X-Real-IP", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7"}, realIP: []string{"198.51.100.8"}, want: "198.51.100.7", forwarded: true},
		{name: "IPv6 client", peer: "127.0.0.1:5000",
			xff: []string{"2001:db8:1:2:3:4:5:6"}, want: "2001:db8:1:2:3:4:5:6", forwarded: true, key: "2001:db8:1:2::/64"},
		{name: "IPv6 client in brackets", peer: "127.0.0.1:5000",
			xff: []string{"[2001:db8:1:2::9]"}, want: "2001:db8:1:2::9", forwarded: true, key: "2001:db8:1:2::/64"},
		{name: "IPv6 client with port", peer: "127.0.0.1:5000",
			xff: []string{"[2001:db8:1:2::9]:4711"}, want: "2001:db8:1:2::9", forwarded: true, key: "2001:db8:1:2::/64"},
		{name: "IPv4 client with port", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7:4711"}, want: "198.51.100.7", forwarded: true},
		{name: "IPv4-mapped client", peer: "127.0.0.1:5000",
			xff: []string{"::ffff:198.51.100.7"}, want: "198.51.100.7", forwarded: true},
		{name: "IPv6 trusted peer and chain", peer: "[2001:db8:ffff::1]:443",
			xff: []string{"2001:db8:1::1, 2001:db8:ffff:1::2"}, want: "2001:db8:1::1", forwarded: true, key: "2001:db8:1::/64"},
		{name: "IPv6 peer outside the trusted /48", peer: "[2001:db8:fffe::1]:443",
			xff: []string{"2001:db8:1::1"}, want: "2001:db8:fffe::1", key: "2001:db8:fffe::/64"},
		{name: "IPv4-mapped trusted peer", peer: "[::ffff:127.0.0.1]:5000",
			xff: []string{"198.51.100.7"}, want: "198.51.100.7", forwarded: true},
		{name: "malformed X-Forwarded-For: X-Real-IP", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7, not-an-ip"}, realIP: []string{"198.51.100.8"}, want: "198.51.100.8", forwarded: true},
		{name: "malformed between trusted entries", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7, bogus, 10.0.0.1"}, realIP: []string{" 198.51.100.8 "}, want: "198.51.100.8", forwarded: true},
		{name: "empty entry", peer: "127.0.0.1:5000",
			xff: []string{"198.51.100.7,,"}, want: "127.0.0.1"},
		{name: "empty X-Forwarded-For: X-Real-IP", peer: "127.0.0.1:5000",
			xff: []string{""}, realIP: []string{"198.51.100.8"}, want: "198.51.100.8", forwarded: true},
		{name: "X-Real-IP alone", peer: "127.0.0.1:5000",
			realIP: []string{"198.51.100.8"}, want: "198.51.100.8", forwarded: true},
		{name: "malformed both: the peer", peer: "127.0.0.1:5000",
			xff: []string{"nope"}, realIP: []string{"nope either"}, want: "127.0.0.1"},
		{name: "two X-Real-IP fields: the peer", peer: "127.0.0.1:5000",
			realIP: []string{"198.51.100.8", "198.51.100.9"}, want: "127.0.0.1"},
		{name: "zone dropped", peer: "127.0.0.1:5000",
			xff: []string{"fe80::1%eth0"}, want: "fe80::1", forwarded: true, key: "fe80::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.realIP {
				h.Add("X-Real-IP", v)
			}
			ip, forwarded := clientAddr(tt.peer, h, trusted)
			if ip.String() != tt.want || forwarded != tt.forwarded {
				t.Errorf("clientAddr(%s, %v) = %s, %v; want %s, %v", tt.peer, h, ip, forwarded, tt.want, tt.forwarded)
			}
			key := tt.key
			if key == "" {
				key = tt.want
			}
			if got := ipKey(ip); got != key {
				t.Errorf("ipKey(%s) = %s, want %s", ip, got, key)
			}
			// With no trusted proxy, the fields are never read.
			if ip, forwarded := clientAddr(tt.peer, h, nil); ip.String() != addrKeyIP(tt.peer) || forwarded {
				t.Errorf("without trusted proxies: %s, %v; want the peer", ip, forwarded)
			}
		})
	}
	if ip, _ := clientAddr("not an address", http.Header{"X-Forwarded-For": {"198.51.100.7"}}, trusted); ip.IsValid() {
		t.Errorf("clientAddr of a RemoteAddr that is not IP:port = %s", ip)
	}
}

func addrKeyIP(remoteAddr string) string {
	return netip.MustParseAddrPort(remoteAddr).Addr().Unmap().String()
}

// TestNormalizeProxies: prefixes are masked, IPv4-mapped ones made IPv4,
// and invalid ones refused.
func TestNormalizeProxies(t *testing.T) {
	got, err := normalizeProxies([]netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"),
		netip.MustParsePrefix("::ffff:192.0.2.0/120"),
		netip.MustParsePrefix("2001:db8::1/32"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	if _, err := normalizeProxies([]netip.Prefix{{}}); err == nil {
		t.Error("the zero prefix was accepted")
	}
}
