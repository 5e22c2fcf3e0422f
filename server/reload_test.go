package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// reloadEnv is an env whose failed-authentication throttle is off, since
// these tests check refused keys and secrets often, and cli, a second
// handle on its vault, as the CLI in another process would have.
type reloadEnv struct {
	*env
	cli *vault.Vault
	// What a case made, for its checks.
	key            testKey
	rotated, token string
	kid            string
}

func newReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	e := newEnv(t)
	server.SetAuthThrottle(e.srv, 1<<30, time.Millisecond)
	return &reloadEnv{env: e, cli: e.open(t)}
}

// update runs fn in a transaction of the CLI's handle.
func (r *reloadEnv) update(t *testing.T, fn func(tx *vault.Tx) error) {
	t.Helper()
	if err := r.cli.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// lastReload returns the fields of the last "reloaded the vault" line of
// the env's log, or nil.
func (e *env) lastReload(t *testing.T) map[string]any {
	t.Helper()
	var last map[string]any
	for line := range strings.Lines(e.logs.String()) {
		if !strings.Contains(line, `"msg":"reloaded the vault"`) {
			continue
		}
		last = nil
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
	}
	return last
}

// verifyStatus checks secret at /verify and returns the status, and the
// cause the log gives for a refusal.
func (e *env) verifyStatus(t *testing.T, secret string) (int, http.Header) {
	t.Helper()
	w := e.verify(t, bearer(secret), "")
	return w.Code, w.Header()
}

// lastCause returns the cause of the last refusal in the log.
func (e *env) lastCause(t *testing.T) string {
	t.Helper()
	var cause string
	for line := range strings.Lines(e.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			if c, ok := m["cause"].(string); ok {
				cause = c
			}
		}
	}
	return cause
}

// TestReloadPartial: a change another process makes to one key, client,
// revocation or signing key is served after the next Reload or poll, which
// reads only what changed.
func TestReloadPartial(t *testing.T) {
	tests := []struct {
		name string
		// prepare runs before the change, and is served by then.
		prepare func(t *testing.T, r *reloadEnv)
		change  func(t *testing.T, r *reloadEnv)
		check   func(t *testing.T, r *reloadEnv)
	}{
		{
			name: "key created",
			change: func(t *testing.T, r *reloadEnv) {
				r.key = r.addKey(t, r.cli, vault.Key{Credential: vault.Credential{Name: "newcomer", Scopes: []string{"a"}}})
			},
			check: func(t *testing.T, r *reloadEnv) {
				if code, h := r.verifyStatus(t, r.key.secret); code != 200 || h.Get("X-Keymint-Key-Name") != "newcomer" {
					t.Errorf("new key: %d %v", code, h)
				}
			},
		},
		{
			name:    "key removed",
			prepare: addServedKey,
			change: func(t *testing.T, r *reloadEnv) {
				r.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteKeys(r.key.id); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				// Unknown, not "removed meanwhile": its secret left the
				// snapshot.
				if code, _ := r.verifyStatus(t, r.key.secret); code != 401 || r.lastCause(t) != "unknown key" {
					t.Errorf("removed key: %d, cause %q", code, r.lastCause(t))
				}
			},
		},
		{
			name:    "key rotated with a grace",
			prepare: addServedKey,
			change: func(t *testing.T, r *reloadEnv) {
				r.rotated = r.newKeySecret(t)
				r.update(t, func(tx *vault.Tx) error { _, err := tx.RotateKey(r.key.id, r.rotated, time.Hour); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				if code, _ := r.verifyStatus(t, r.key.secret); code != 200 {
					t.Errorf("retired secret within its grace: %d", code)
				}
				if code, _ := r.verifyStatus(t, r.rotated); code != 200 {
					t.Errorf("new secret: %d", code)
				}
				r.clock.Advance(time.Hour + time.Second)
				if code, _ := r.verifyStatus(t, r.key.secret); code != 401 || r.lastCause(t) != "retired key" {
					t.Errorf("retired secret after its grace: %d, cause %q", code, r.lastCause(t))
				}
				if code, _ := r.verifyStatus(t, r.rotated); code != 200 {
					t.Errorf("new secret after the grace: %d", code)
				}
			},
		},
		{
			name:    "key rotated without a grace",
			prepare: addServedKey,
			change: func(t *testing.T, r *reloadEnv) {
				r.rotated = r.newKeySecret(t)
				r.update(t, func(tx *vault.Tx) error { _, err := tx.RotateKey(r.key.id, r.rotated, 0); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				if code, _ := r.verifyStatus(t, r.key.secret); code != 401 || r.lastCause(t) != "unknown key" {
					t.Errorf("old secret: %d, cause %q", code, r.lastCause(t))
				}
				if code, _ := r.verifyStatus(t, r.rotated); code != 200 {
					t.Errorf("new secret: %d", code)
				}
			},
		},
		{
			name:    "key renamed and rescoped",
			prepare: addServedKey,
			change: func(t *testing.T, r *reloadEnv) {
				r.update(t, func(tx *vault.Tx) error {
					k, err := tx.RenameKey(r.key.id, "renamed")
					if err != nil {
						return err
					}
					k.Scopes = []string{"b", "c"}
					return tx.SaveKey(k)
				})
			},
			check: func(t *testing.T, r *reloadEnv) {
				code, h := r.verifyStatus(t, r.key.secret)
				if code != 200 || h.Get("X-Keymint-Key-Name") != "renamed" || h.Get("X-Keymint-Scopes") != "b c" || h.Get("X-Keymint-Key-Id") != r.key.id {
					t.Errorf("renamed key: %d %v", code, h)
				}
			},
		},
		{
			name: "client created",
			change: func(t *testing.T, r *reloadEnv) {
				secret := r.env.newSecret(t)
				c := vault.Client{Credential: vault.Credential{Name: "newclient", Scopes: []string{"x"}},
					GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}
				r.update(t, func(tx *vault.Tx) error { return tx.CreateClient(&c, secret) })
				r.clients["newclient"] = testClient{id: c.ID, secret: secret}
			},
			check: func(t *testing.T, r *reloadEnv) {
				r.env.token(t, "newclient", nil)
			},
		},
		{
			name: "client renamed",
			change: func(t *testing.T, r *reloadEnv) {
				r.update(t, func(tx *vault.Tx) error { _, err := tx.RenameClient("erp", "ledger"); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				if name, ok := server.ServedClient(r.srv, r.clients["erp"].id); name != "ledger" || !ok {
					t.Errorf("served client %q, %v", name, ok)
				}
				r.env.token(t, "erp", nil) // by client_id, as before
			},
		},
		{
			name: "client removed",
			prepare: func(t *testing.T, r *reloadEnv) {
				r.token = r.env.token(t, "narrow", nil)
			},
			change: func(t *testing.T, r *reloadEnv) {
				r.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteClients("narrow"); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				form := url.Values{"grant_type": {"client_credentials"}}
				if w := r.do(t, request{path: "/token", form: form, header: r.basic("narrow")}); w.Code != 401 {
					t.Errorf("removed client's /token: %d", w.Code)
				}
				if got := r.introspect(t, "erp", r.token); got["active"] != false {
					t.Errorf("removed client's token: %v", got)
				}
				if _, ok := server.ServedClient(r.srv, r.clients["narrow"].id); ok {
					t.Error("removed client still served")
				}
			},
		},
		{
			name: "client secret rotated",
			change: func(t *testing.T, r *reloadEnv) {
				r.rotated = r.env.newSecret(t)
				r.update(t, func(tx *vault.Tx) error { _, err := tx.RotateClient("erp", r.rotated, 0); return err })
			},
			check: func(t *testing.T, r *reloadEnv) {
				form := url.Values{"grant_type": {"client_credentials"}}
				if w := r.do(t, request{path: "/token", form: form, header: r.basic("erp")}); w.Code != 401 {
					t.Errorf("old secret: %d", w.Code)
				}
				if w := r.do(t, request{path: "/token", form: form, header: basic(r.clients["erp"].id, r.rotated)}); w.Code != 200 {
					t.Errorf("new secret: %d %s", w.Code, w.Body)
				}
			},
		},
		{
			name: "token revoked",
			prepare: func(t *testing.T, r *reloadEnv) {
				r.token = r.env.token(t, "erp", nil)
			},
			change: func(t *testing.T, r *reloadEnv) {
				claims, err := r.keySet(t).Verify(r.token, r.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				r.update(t, func(tx *vault.Tx) error {
					return tx.Revoke(vault.Revocation{JTI: claims.ID, ClientID: claims.ClientID, ExpiresAt: claims.ExpiresAt})
				})
			},
			check: func(t *testing.T, r *reloadEnv) {
				if got := r.introspect(t, "erp", r.token); got["active"] != false {
					t.Errorf("revoked token: %v", got)
				}
			},
		},
		{
			name: "signing key rotated",
			prepare: func(t *testing.T, r *reloadEnv) {
				r.token = r.env.token(t, "erp", nil)
			},
			change: func(t *testing.T, r *reloadEnv) {
				next, err := token.GenerateSigningKey(token.EdDSA, serverEpoch)
				if err != nil {
					t.Fatal(err)
				}
				r.kid = next.ID
				r.update(t, func(tx *vault.Tx) error { return tx.AddSigningKey(token.ToVault(next), 2*time.Hour) })
			},
			check: func(t *testing.T, r *reloadEnv) {
				if got := decodeHeader(t, r.env.token(t, "erp", nil))["kid"]; got != r.kid {
					t.Errorf("new token's kid %v, want %s", got, r.kid)
				}
				if got := r.introspect(t, "erp", r.token); got["active"] != true {
					t.Errorf("the old key's token: %v", got)
				}
				body := r.do(t, request{method: http.MethodGet, path: "/jwks.json"}).Body.String()
				if !strings.Contains(body, r.kid) || strings.Count(body, `"kid"`) != 2 {
					t.Errorf("JWKS: %s", body)
				}
			},
		},
	}
	for _, tt := range tests {
		for _, via := range []string{"Reload", "poll"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				r := newReloadEnv(t)
				if tt.prepare != nil {
					tt.prepare(t, r)
					r.reload(t)
				}
				partial, full := server.ReloadCounts(r.srv)
				tt.change(t, r)
				if via == "poll" {
					server.Poll(r.srv)
				} else {
					r.reload(t)
				}
				p, f := server.ReloadCounts(r.srv)
				if p != partial+1 || f != full {
					t.Errorf("reloads: %d partial and %d full, want 1 partial", p-partial, f-full)
				}
				line := r.lastReload(t)
				if line["full"] != false || line["changed"].(float64) < 1 || line["generation"].(float64) <= line["previous_generation"].(float64) {
					t.Errorf("log: %v", line)
				}
				tt.check(t, r)
			})
		}
	}
}

// addServedKey adds a key through the CLI and serves it.
func addServedKey(t *testing.T, r *reloadEnv) {
	r.key = r.addKey(t, r.cli, vault.Key{Credential: vault.Credential{Name: "k", Scopes: []string{"a"}}})
	r.reload(t)
	if code, _ := r.verifyStatus(t, r.key.secret); code != 200 {
		t.Fatalf("served key: %d", code)
	}
}

// TestReloadNothingChanged: with the vault unchanged, a reload reads
// nothing and makes no new snapshot; the server's own revocation is served
// at once, and read back from the change log alone.
func TestReloadNothingChanged(t *testing.T) {
	r := newReloadEnv(t)
	r.reload(t)
	server.Poll(r.srv)
	if p, f := server.ReloadCounts(r.srv); p != 0 || f != 0 {
		t.Errorf("unchanged vault: %d partial, %d full reloads", p, f)
	}
	token := r.env.token(t, "erp", nil)
	if w := r.do(t, request{path: "/revoke", form: url.Values{"token": {token}}, header: r.basic("erp")}); w.Code != 200 {
		t.Fatalf("revoke: %d", w.Code)
	}
	if got := r.introspect(t, "erp", token); got["active"] != false {
		t.Errorf("revoked before a reload: %v", got)
	}
	server.Poll(r.srv)
	if p, f := server.ReloadCounts(r.srv); p != 1 || f != 0 {
		t.Errorf("after the server's revocation: %d partial, %d full reloads", p, f)
	}
	if got := r.introspect(t, "erp", token); got["active"] != false {
		t.Errorf("revoked after a reload: %v", got)
	}
}

// TestReloadFull: a server further behind than the change log reaches
// reads everything again, and serves the vault as it is.
func TestReloadFull(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 1030 vault writes")
	}
	r := newReloadEnv(t)
	churn := r.addKey(t, r.cli, vault.Key{Credential: vault.Credential{Name: "churn"}})
	doomed := r.addKey(t, r.cli, vault.Key{Credential: vault.Credential{Name: "doomed"}})
	r.reload(t)
	partial, full := server.ReloadCounts(r.srv)
	const changes = 1030
	for i := range changes {
		r.update(t, func(tx *vault.Tx) error {
			k, err := tx.Key(churn.id)
			if err != nil {
				return err
			}
			k.Scopes = []string{fmt.Sprint("s", i)}
			return tx.SaveKey(k)
		})
	}
	r.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteKeys(doomed.id); return err })
	r.reload(t)
	if p, f := server.ReloadCounts(r.srv); p != partial || f != full+1 {
		t.Errorf("reloads: %d partial and %d full, want 1 full", p-partial, f-full)
	}
	if line := r.lastReload(t); line["full"] != true || line["generation"].(float64)-line["previous_generation"].(float64) != changes+1 {
		t.Errorf("log: %v", line)
	}
	if code, h := r.verifyStatus(t, churn.secret); code != 200 || h.Get("X-Keymint-Scopes") != fmt.Sprint("s", changes-1) {
		t.Errorf("changed key: %d %v", code, h)
	}
	if code, _ := r.verifyStatus(t, doomed.secret); code != 401 || r.lastCause(t) != "unknown key" {
		t.Errorf("removed key: %d, cause %q", code, r.lastCause(t))
	}

	// Within the log's reach again, reloads are partial.
	r.update(t, func(tx *vault.Tx) error { _, err := tx.RenameKey(churn.id, "churned"); return err })
	r.reload(t)
	if p, f := server.ReloadCounts(r.srv); p != partial+1 || f != full+1 {
		t.Errorf("reloads: %d partial and %d full, want 1 and 1", p-partial, f-full)
	}
	if code, h := r.verifyStatus(t, churn.secret); code != 200 || h.Get("X-Keymint-Key-Name") != "churned" {
		t.Errorf("renamed key: %d %v", code, h)
	}
}

// TestReloadRefusesOlderVault: a vault file replaced by an older copy is
// refused, whether the rollback guard catches it (a lower revision) or only
// its generation gives it away (the copy accepted elsewhere and written to
// since, with usage, which advances the revision only); the server logs it
// once and keeps serving what it had.
func TestReloadRefusesOlderVault(t *testing.T) {
	r := newReloadEnv(t)
	old, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	k := r.addKey(t, r.cli, vault.Key{Credential: vault.Credential{Name: "after-the-copy"}})
	r.update(t, func(tx *vault.Tx) error {
		c, err := tx.Client("erp")
		if err != nil {
			return err
		}
		c.Scopes = append(c.Scopes, "more")
		return tx.SaveClient(c)
	})
	server.Poll(r.srv)
	served := r.lastReload(t)["generation"].(float64)

	// The older copy put back in place.
	restore := func() {
		t.Helper()
		tmp := r.path + ".restore"
		if err := os.WriteFile(tmp, old, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, r.path); err != nil {
			t.Fatal(err)
		}
	}
	restore()
	refusals := func() int { return strings.Count(r.logs.String(), "the vault is older than what is served") }
	stillServed := func() {
		t.Helper()
		// (Not through /verify: counting a use needs the vault.)
		if _, ok := server.ServedKey(r.srv, k.id); !ok {
			t.Error("a key of the newer vault is no longer served")
		}
		if got := r.lastReload(t)["generation"].(float64); got != served {
			t.Errorf("serving generation %v, want %v", got, served)
		}
	}
	for range 3 {
		server.Poll(r.srv)
	}
	if n := refusals(); n != 1 {
		t.Errorf("rolled-back vault refused %d times in the log, want 1\n%s", n, r.logs)
	}
	if err := r.srv.Reload(); !errorsIsRolledBack(err) {
		t.Errorf("Reload of the rolled-back vault: %v", err)
	}
	stillServed()

	// Accepted by another process, which then only counts usage: the
	// revision passes the server's, the generation stays older.
	accepting, err := vault.Open(r.path, vault.Options{Identities: []age.Identity{r.identity}, Now: r.clock.Now,
		LockTimeout: 5 * time.Second, AcceptRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := accepting.Update(func(tx *vault.Tx) error { return tx.TouchClient("erp") }); err != nil {
			t.Fatal(err)
		}
	}
	err = r.srv.Reload()
	if !errorsIsRolledBack(err) || !strings.Contains(err.Error(), "older than the generation") {
		t.Errorf("Reload of the older generation: %v", err)
	}
	for range 3 {
		server.Poll(r.srv)
	}
	if n := refusals(); n != 2 {
		t.Errorf("older generation refused %d times in the log, want 2 in all\n%s", n, r.logs)
	}
	stillServed()
}

func errorsIsRolledBack(err error) bool { return errors.Is(err, vault.ErrRolledBack) }
