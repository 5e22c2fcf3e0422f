package server_test

// A real client of another language: Authlib, as Debian packages it
// (python3-authlib, 1.2), gets tokens from a listening server with
// OAuth2Session.fetch_token, the call that failed while the response
// carried a member of keymint's own, expires_at as an RFC 3339 time, which
// Authlib reads as epoch seconds. scripts/test installs it when it runs as
// root.

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// authlibScript fetches a token with each client authentication method
// Authlib offers for client_credentials, then with a wrong secret, and
// prints one JSON object per line: the token Authlib keeps, or its error.
const authlibScript = `
import json, os, sys
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client import OAuthError

url, client_id = sys.argv[1:3]
secret = os.environ["CLIENT_SECRET"]  # never in argv
for method, secret in (("client_secret_basic", secret), ("client_secret_post", secret), ("client_secret_basic", "kmcs_wrong")):
    s = OAuth2Session(client_id, secret, token_endpoint_auth_method=method, scope="invoices:read")
    s.trust_env = False  # no proxy from the environment
    try:
        tok = s.fetch_token(url, grant_type="client_credentials")
        print(json.dumps({"method": method, "token": dict(tok), "expired": tok.is_expired()}))
    except OAuthError as e:
        print(json.dumps({"method": method, "error": e.error}))
`

// authlibPython returns a python3 that imports Authlib's requests client:
// Debian's first, whose packages python3-authlib installs, then the one on
// PATH.
func authlibPython(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import authlib.integrations.requests_client").Run() == nil {
			return p
		}
	}
	t.Fatal("Authlib is not installed: this test runs a real Python client against keymint serve. " +
		"Install it with `apt-get install python3-authlib python3-requests` (scripts/test does so when it runs as root), or run go test -short to leave it out")
	return ""
}

func TestAuthlibFetchToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python's Authlib against a live server")
	}
	python := authlibPython(t)
	l := newLive(t)
	c := l.clients["erp"]
	cmd := exec.Command(python, "-c", authlibScript, l.url+"/token", c.id)
	// Authlib refuses http:// but for this; the server is on loopback.
	cmd.Env = append(os.Environ(), "AUTHLIB_INSECURE_TRANSPORT=1", "CLIENT_SECRET="+c.secret)
	before := time.Now()
	out, err := cmd.Output()
	after := time.Now()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("Authlib: %v\n%s%s", err, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("Authlib printed %d lines, want 3:\n%s", len(lines), out)
	}
	for _, line := range lines[:2] {
		var got struct {
			Method  string         `json:"method"`
			Token   map[string]any `json:"token"`
			Expired bool           `json:"expired"`
			Error   string         `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		tok := got.Token
		if got.Error != "" || tok == nil {
			t.Errorf("%s: error %q", got.Method, got.Error)
			continue
		}
		if tok["token_type"] != "Bearer" || tok["scope"] != "invoices:read" || tok["expires_in"] != 3600.0 || got.Expired {
			t.Errorf("%s: token %v, expired %v", got.Method, tok, got.Expired)
		}
		// Authlib's expires_at is its own: epoch seconds from expires_in.
		at, ok := tok["expires_at"].(float64)
		if !ok || int64(at) < before.Add(time.Hour).Unix()-1 || int64(at) > after.Add(time.Hour).Unix()+1 {
			t.Errorf("%s: expires_at %v (%T), want epoch seconds an hour from now", got.Method, tok["expires_at"], tok["expires_at"])
		}
		token, _ := tok["access_token"].(string)
		if claims := l.introspect(t, "erp", token); claims["active"] != true || claims["scope"] != "invoices:read" {
			t.Errorf("%s: the token Authlib got introspects as %v", got.Method, claims)
		}
	}
	if !strings.Contains(lines[2], `"error": "invalid_client"`) {
		t.Errorf("wrong secret: %s, want Authlib's OAuthError invalid_client", lines[2])
	}
}
