package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keymint/keymint/server"
)

// TestRoutes: every route server.Routes lists is served with its method,
// every other method of it gets 405, and the metadata's endpoint URLs are
// the issuer and paths of that list: it is the one list of the server's
// routes, which keymint serve --help shows too.
func TestRoutes(t *testing.T) {
	e := newEnv(t)
	routes := server.Routes()
	paths := map[string]bool{}
	for _, r := range routes {
		paths[r.Path] = true
		path := strings.ReplaceAll(r.Path, "PATH", "some/path")
		method := r.Method
		if method == "ANY" {
			method = http.MethodPut
		}
		w := e.do(t, request{method: method, path: path})
		if w.Code == http.StatusNotFound || w.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d", method, path, w.Code)
		}
		if r.Method == "ANY" {
			continue
		}
		other := http.MethodPut
		if w := e.do(t, request{method: other, path: path}); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", other, path, w.Code)
		}
	}
	for _, p := range []string{"/token", "/jwks.json", "/introspect", "/revoke",
		"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/verify", "/healthz"} {
		if !paths[p] {
			t.Errorf("Routes lacks %s", p)
		}
	}
	if server.TokenPath != "/token" || !paths[server.TokenPath] {
		t.Errorf("TokenPath = %q", server.TokenPath)
	}

	var md map[string]any
	decodeJSON(t, e.do(t, request{method: http.MethodGet, path: "/.well-known/oauth-authorization-server"}).Body.Bytes(), &md)
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"} {
		u, _ := md[k].(string)
		if !strings.HasPrefix(u, testIssuer+"/") || !paths[strings.TrimPrefix(u, testIssuer)] {
			t.Errorf("%s = %q: not the issuer and a path of Routes", k, u)
		}
	}
	decodeJSON(t, e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"}).Body.Bytes(), &md)
	if u, _ := md["userinfo_endpoint"].(string); !paths[strings.TrimPrefix(u, testIssuer)] {
		t.Errorf("userinfo_endpoint = %q: not a path of Routes", u)
	}
}
