package server

import "net/http"

// KeyFromHeaders exposes the header parsing of /verify to the fuzz test:
// the key found, or the status of the refusal.
func KeyFromHeaders(h http.Header) (key string, status int) {
	key, e := keyFromHeaders(h)
	if e != nil {
		return "", e.status
	}
	return key, 0
}
