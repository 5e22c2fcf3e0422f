package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// normalizeProxies checks the trusted proxies of [Options] and puts
// them in the form clientAddr compares with: masked, and an IPv4-mapped
// IPv6 prefix as the IPv4 prefix it covers.
func normalizeProxies(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid trusted proxy prefix %q", p)
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("trusted proxy prefix %s has a zone", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// trustedAddr reports whether ip (unmapped, without zone) is in one of
// the trusted prefixes.
func trustedAddr(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client a request comes from, for
// the throttle and the log, and whether it was taken from the request's
// fields rather than from the TCP peer (remoteAddr, as in
// [http.Request.RemoteAddr]). It is not valid if remoteAddr is not IP:port.
//
// When the peer is in a trusted prefix, the client is the right-most
// address of X-Forwarded-For that is not itself trusted: each trusted hop
// appended the address it was called from, and the entries to the left of
// the first untrusted one are whatever that untrusted party wrote. If
// every entry is trusted, the left-most is the client (as with nginx's
// real_ip_recursive). If X-Forwarded-For is absent, or an entry reached in
// that walk is not an address, X-Real-IP is the client; if that is absent
// or not an address either, the peer is. The fields of a peer that is not
// trusted are never read: a client does not pick its own throttle bucket.
func clientAddr(remoteAddr string, h http.Header, trusted []netip.Prefix) (addr netip.Addr, forwarded bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap().WithZone("")
	if len(trusted) == 0 || !trustedAddr(peer, trusted) {
		return peer, false
	}
	if ip, ok := forwardedFor(h.Values("X-Forwarded-For"), trusted); ok {
		return ip, true
	}
	if vs := h.Values("X-Real-Ip"); len(vs) == 1 {
		if ip, ok := parseForwardedAddr(vs[0]); ok {
			return ip, true
		}
	}
	return peer, false
}

// forwardedFor finds the client in the X-Forwarded-For fields vs (which
// make one comma-separated list, in order), walking from the right past
// trusted addresses. It fails if there is no entry, or if an entry it
// reaches is not an address.
func forwardedFor(vs []string, trusted []netip.Prefix) (netip.Addr, bool) {
	if len(vs) == 0 {
		return netip.Addr{}, false
	}
	entries := strings.Split(strings.Join(vs, ","), ",")
	var ip netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		var ok bool
		if ip, ok = parseForwardedAddr(entries[i]); !ok {
			return netip.Addr{}, false
		}
		if !trustedAddr(ip, trusted) {
			break
		}
	}
	return ip, true
}

// parseForwardedAddr parses one address of X-Forwarded-For or X-Real-IP:
// an IP, optionally in brackets ([2001:db8::1]) or with a port (192.0.2.1:5,
// [2001:db8::1]:5), between optional spaces. The result is unmapped and
// has no zone.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	return ip.Unmap().WithZone(""), true
}

// remote returns the throttled unit of r's client (see clientAddr and
// ipKey), and whether it came from a field a trusted proxy set.
func (s *Server) remote(r *http.Request) (unit string, forwarded bool) {
	ip, forwarded := clientAddr(r.RemoteAddr, r.Header, s.trustedProxies)
	if !ip.IsValid() {
		return r.RemoteAddr, forwarded
	}
	return ipKey(ip), forwarded
}
