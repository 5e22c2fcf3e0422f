package token

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Redirect URIs, the one place keymint decides them: registered with a
// client by `client new --redirect-uri`, and matched against the
// redirect_uri of each authorization and token request.

// ErrRedirectURI is wrapped by every refusal of a redirect URI.
var ErrRedirectURI = errors.New("invalid redirect URI")

// CheckRedirectURI validates a redirect URI to register (RFC 6749 §3.1.2,
// RFC 9700 §4.1): absolute, without a fragment; https, or http only on a
// loopback address (RFC 8252 §7.3) — or a private-use scheme of a native
// app, such as com.example.app:/cb (RFC 8252 §7.1), which must contain a
// period so it cannot be a bare scheme such as javascript or data.
func CheckRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs():
		return fmt.Errorf("%w %q: it must be an absolute URI", ErrRedirectURI, s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%w %q: a redirect URI has no fragment", ErrRedirectURI, s)
	case u.User != nil:
		return fmt.Errorf("%w %q: a redirect URI has no user information", ErrRedirectURI, s)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%w %q: no host", ErrRedirectURI, s)
		}
		return nil
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%w %q: plain http only on a loopback address (127.0.0.1, [::1] or localhost); use https", ErrRedirectURI, s)
		}
		return nil
	}
	if !strings.Contains(u.Scheme, ".") {
		return fmt.Errorf("%w %q: use https, http on a loopback address, or a private-use scheme in reverse domain form (com.example.app:/cb)", ErrRedirectURI, s)
	}
	return nil
}

// MatchRedirectURI returns the registered redirect URI that requested
// names, compared exactly as strings (RFC 9700 §4.1.3), except that the
// port of a loopback http URI may differ (RFC 8252 §7.3: a native app
// listens on a port the system gives it). It reports false when none
// matches; the caller then must not redirect anywhere.
func MatchRedirectURI(registered []string, requested string) (string, bool) {
	for _, r := range registered {
		if r == requested {
			return r, true
		}
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || !isLoopbackIP(req.Hostname()) {
		return "", false
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		if err != nil || reg.Scheme != "http" || !isLoopbackIP(reg.Hostname()) {
			continue
		}
		if reg.Hostname() == req.Hostname() && reg.EscapedPath() == req.EscapedPath() &&
			reg.RawQuery == req.RawQuery && req.Fragment == "" && req.User == nil && validPort(req.Port()) {
			return requested, true
		}
	}
	return "", false
}

// isLoopbackIP reports whether host is a loopback IP literal: the port
// exemption of RFC 8252 §7.3 is for those, not for the name localhost,
// which §8.3 advises against.
func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackHost also allows the name localhost, for registering.
func isLoopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || isLoopbackIP(host)
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}
