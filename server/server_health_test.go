package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// TestHealthFollowsTheVault: /healthz answers 200 while the server's polls
// read the vault, and 503 with a short reason, no path, while the last one
// could not (the vault moved away, or put back as an older copy); a poll
// that reads it again makes it 200 again. Its 503 is logged at debug
// level, like its 200: the poll logs the vault's trouble, once.
func TestHealthFollowsTheVault(t *testing.T) {
	e := newEnv(t)
	health := func() (int, map[string]string) {
		t.Helper()
		w := e.do(t, request{method: http.MethodGet, path: "/healthz"})
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("/healthz Cache-Control %q", got)
		}
		if strings.Contains(w.Body.String(), e.path) {
			t.Errorf("/healthz names the vault's path: %s", w.Body)
		}
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("/healthz body %q: %v", w.Body, err)
		}
		return w.Code, body
	}
	wantOK := func(when string) {
		t.Helper()
		if code, body := health(); code != http.StatusOK || body["status"] != "ok" || len(body) != 1 {
			t.Errorf("%s: /healthz %d %v, want 200 {status: ok}", when, code, body)
		}
	}
	wantDown := func(when, reason string) {
		t.Helper()
		code, body := health()
		if code != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["reason"] != reason || len(body) != 2 {
			t.Errorf("%s: /healthz %d %v, want 503 {status: unavailable, reason: %s}", when, code, body, reason)
		}
	}

	wantOK("at start")
	server.Poll(e.srv)
	wantOK("after a poll")

	// The vault moved away.
	away := e.path + ".away"
	if err := os.Rename(e.path, away); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantDown("vault removed", "vault unreadable")
	server.Poll(e.srv)
	wantDown("vault still removed", "vault unreadable")
	// Put back.
	if err := os.Rename(away, e.path); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantOK("vault put back")

	// Unreadable: not a vault any more.
	saved, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path, []byte("not a vault"), 0o600); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantDown("vault overwritten", "vault unreadable")
	if err := os.WriteFile(e.path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantOK("vault restored")

	// Put back as an older copy: refused, and reported.
	if err := e.open(t).Update(func(tx *vault.Tx) error { _, err := tx.RenameClient("narrow", "narrower"); return err }); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantOK("after a change")
	if err := os.WriteFile(e.path+".old", saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path+".old", e.path); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	wantDown("vault rolled back", "vault rolled back")

	// The request lines of /healthz stay at debug level, 503 included.
	lines := 0
	for line := range strings.Lines(e.logs.String()) {
		if strings.Contains(line, `"path":"GET /healthz"`) {
			lines++
			if !strings.Contains(line, `"level":"DEBUG"`) {
				t.Errorf("/healthz logged above debug: %s", line)
			}
		}
	}
	if lines == 0 {
		t.Error("no request line of /healthz in the log")
	}
}
