package server_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// readyWindow is how old a successful poll may be for /readyz to answer
// 200: twice the reload interval, and a second.
const readyWindow = 2*storeEnvInterval + time.Second

// TestReadiness: /readyz answers 200 {"status":"ready"} only when the last
// poll read the vault, within twice the reload interval and a margin by
// the server's clock, and the snapshot serves what it saw; otherwise 503
// with a reason and Retry-After. /healthz, liveness, stays 200 for the
// states that are no fault of the vault's.
func TestReadiness(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup brings the env into the state under test.
		setup      func(t *testing.T, se *storeEnv)
		wantReason string // empty: 200
		wantHealth int
	}{
		{"before the first poll", func(t *testing.T, se *storeEnv) {}, "not yet loaded", http.StatusOK},
		{"after a poll", func(t *testing.T, se *storeEnv) { server.Poll(se.srv) }, "", http.StatusOK},
		{"poll at the end of the window", func(t *testing.T, se *storeEnv) {
			server.Poll(se.srv)
			se.clock.Advance(readyWindow)
		}, "", http.StatusOK},
		{"poll too old", func(t *testing.T, se *storeEnv) {
			server.Poll(se.srv)
			se.clock.Advance(readyWindow + time.Millisecond)
		}, "vault not read recently", http.StatusOK},
		{"polled again", func(t *testing.T, se *storeEnv) {
			server.Poll(se.srv)
			se.clock.Advance(time.Hour)
			server.Poll(se.srv)
		}, "", http.StatusOK},
		{"vault unreachable", func(t *testing.T, se *storeEnv) {
			server.Poll(se.srv)
			se.store.down.Store(true)
			server.Poll(se.srv)
		}, "vault unreachable", http.StatusServiceUnavailable},
		{"vault reachable again", func(t *testing.T, se *storeEnv) {
			se.store.down.Store(true)
			server.Poll(se.srv)
			se.store.down.Store(false)
			server.Poll(se.srv)
		}, "", http.StatusOK},
		{"a change read and served", func(t *testing.T, se *storeEnv) {
			server.Poll(se.srv)
			se.addKey(t, se.openAgain(t), vault.Key{Credential: vault.Credential{Name: "more", Scopes: []string{"api:read"}}})
			server.Poll(se.srv)
		}, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			se := newStoreEnv(t)
			tc.setup(t, se)
			code, body, retry := se.ready(t)
			if tc.wantReason == "" {
				if code != http.StatusOK || body["status"] != "ready" || len(body) != 1 || retry != "" {
					t.Errorf("/readyz %d %v Retry-After %q, want 200 {status: ready}", code, body, retry)
				}
			} else if code != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["reason"] != tc.wantReason || retry != "1" {
				t.Errorf("/readyz %d %v Retry-After %q, want 503 {status: unavailable, reason: %s} Retry-After 1", code, body, retry, tc.wantReason)
			}
			if w := se.do(t, request{method: http.MethodGet, path: "/healthz"}); w.Code != tc.wantHealth {
				t.Errorf("/healthz %d, want %d", w.Code, tc.wantHealth)
			}
			se.stop(t)
		})
	}
}

// TestReadyWhileReloading: while a poll that saw a newer generation reads
// the changes, /readyz answers 503 "reloading", and /verify goes on
// answering from the snapshot it has; once the snapshot is swapped, 200.
func TestReadyWhileReloading(t *testing.T) {
	se := newStoreEnv(t)
	defer se.stop(t)
	server.Poll(se.srv)
	k := se.addKey(t, se.openAgain(t), vault.Key{Credential: vault.Credential{Name: "late", Scopes: []string{"api:read"}}})
	reached, release := se.store.holdChangeLog()
	defer release()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		server.Poll(se.srv)
	}()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not read the change log")
	}
	if code, body, _ := se.ready(t); code != http.StatusServiceUnavailable || body["reason"] != "reloading" {
		t.Errorf("/readyz while reloading: %d %v, want 503 reloading", code, body)
	}
	// Requests are not held up by the reload.
	if code, _ := se.verifyStatus(t, se.meterKey.secret); code != http.StatusOK {
		t.Errorf("/verify while reloading: %d", code)
	}
	if code, _ := se.verifyStatus(t, k.secret); code != http.StatusUnauthorized {
		t.Errorf("/verify of the key being read: %d, want 401 until the swap", code)
	}
	release()
	<-polled
	if code, body, _ := se.ready(t); code != http.StatusOK {
		t.Errorf("/readyz after the reload: %d %v", code, body)
	}
	if code, _ := se.verifyStatus(t, k.secret); code != http.StatusOK {
		t.Errorf("/verify of the key read: %d", code)
	}
}

// TestReadyRolledBack: a vault put back as an older copy is refused, and
// /readyz says so (the file vault, whose copy a test can put back).
func TestReadyRolledBack(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.ReloadInterval = storeEnvInterval })
	server.Poll(e.srv)
	saved, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.open(t).Update(func(tx *vault.Tx) error { _, err := tx.RenameClient("narrow", "narrower"); return err }); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	if code, body, _ := e.ready(t); code != http.StatusOK {
		t.Fatalf("/readyz after a change: %d %v", code, body)
	}
	if err := os.WriteFile(e.path+".old", saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path+".old", e.path); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	if code, body, retry := e.ready(t); code != http.StatusServiceUnavailable || body["reason"] != "vault rolled back" || retry != "1" {
		t.Errorf("/readyz after a rollback: %d %v Retry-After %q, want 503 vault rolled back", code, body, retry)
	}
}
