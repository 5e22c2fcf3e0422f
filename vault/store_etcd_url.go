package vault

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultEtcdPort is the port of an endpoint written without one.
const DefaultEtcdPort = "2379"

// ErrEtcdURLCredentials reports an etcd URL with user information. Its
// message names no part of the URL, which may hold a password.
var ErrEtcdURLCredentials = errors.New("etcd URL must not carry credentials: set the etcd username and password " +
	"(and TLS files) in the settings or the environment instead")

// ParseEtcdURL parses the location of a vault in etcd:
//
//	etcd://10.0.0.1:2379,10.0.0.2:2379/keymint
//	etcds://etcd.internal/keymint   (TLS; port 2379)
//
// The URL carries the endpoints and the key prefix (its path, default
// [DefaultEtcdPrefix]) and nothing else: credentials and TLS material come
// from settings or the environment, and a URL with user information, a
// query or a fragment is refused. etcds sets a TLS configuration that
// verifies the members against the system's roots; the caller may replace
// it or add CA and client certificate files. Errors never repeat the URL.
func ParseEtcdURL(s string) (EtcdConfig, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return EtcdConfig{}, errors.New("etcd URL: want etcd://host:port[,host:port]/prefix, or etcds:// for TLS")
	}
	var cfg EtcdConfig
	switch strings.ToLower(scheme) {
	case "etcd":
	case "etcds":
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		return EtcdConfig{}, errors.New("etcd URL: the scheme must be etcd or etcds")
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	// Checked before anything else is parsed, so that no later error can
	// quote a password.
	if strings.Contains(authority, "@") {
		return EtcdConfig{}, ErrEtcdURLCredentials
	}
	if strings.ContainsAny(rest, "?#") {
		return EtcdConfig{}, errors.New("etcd URL: no query or fragment allowed; put settings in the configuration")
	}
	for _, hp := range strings.Split(authority, ",") {
		ep, err := parseEtcdEndpoint(hp)
		if err != nil {
			return EtcdConfig{}, err
		}
		cfg.Endpoints = append(cfg.Endpoints, ep)
	}
	prefix, err := url.PathUnescape(path)
	if err != nil {
		return EtcdConfig{}, errors.New("etcd URL: the prefix has an invalid %-escape")
	}
	cfg.Prefix = strings.TrimRight(prefix, "/")
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultEtcdPrefix
	}
	return cfg, nil
}

// parseEtcdEndpoint checks one host[:port] of an etcd URL and returns it as
// host:port. It holds no credentials (the caller refused '@'), so errors
// may name it.
func parseEtcdEndpoint(hp string) (string, error) {
	if hp == "" {
		return "", errors.New("etcd URL: an empty endpoint (want host:port, separated by commas)")
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		// No port: a name, an IPv4 address or a bracketed IPv6 one.
		host, port = hp, DefaultEtcdPort
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
			if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
				return "", fmt.Errorf("etcd URL: endpoint %q: not an IPv6 address in brackets", hp)
			}
		} else if strings.ContainsAny(host, ":[]") {
			return "", fmt.Errorf("etcd URL: endpoint %q: want host:port (IPv6 in brackets)", hp)
		}
	}
	if host == "" {
		return "", fmt.Errorf("etcd URL: endpoint %q has no host", hp)
	}
	if strings.ContainsAny(host, " \t\r\n/\\%[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", fmt.Errorf("etcd URL: endpoint %q: invalid host", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("etcd URL: endpoint %q: the port must be a number from 1 to 65535", hp)
	}
	return net.JoinHostPort(host, port), nil
}

// URL formats c's endpoints and prefix as [ParseEtcdURL] reads them, with
// no credentials.
func (c EtcdConfig) URL() string {
	scheme := "etcd"
	if c.TLS != nil || c.CAFile != "" || c.CertFile != "" {
		scheme = "etcds"
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = DefaultEtcdPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	return scheme + "://" + strings.Join(c.Endpoints, ",") + (&url.URL{Path: prefix}).EscapedPath()
}
