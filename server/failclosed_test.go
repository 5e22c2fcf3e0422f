package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// TestFailClosed: while the vault cannot be reached, a use that needs a new
// quota lease is refused with 503 and Retry-After, by /token
// (temporarily_unavailable) and /verify alike, and /readyz answers 503;
// uses already leased go on being served. Once the vault is back, both
// serve again, and after the server stops, the uses counted in the vault
// are exactly those granted: nothing granted uncounted, nothing lost.
func TestFailClosed(t *testing.T) {
	se := newStoreEnv(t)
	server.Poll(se.srv)
	form := url.Values{"grant_type": {"client_credentials"}}
	header := basic(se.metered.id, se.metered.secret)
	granted := map[string]int{} // by credential id
	tokenReq := func() *http.Response {
		t.Helper()
		w := se.do(t, request{path: "/token", form: form, header: header})
		if w.Code == http.StatusOK {
			granted[se.metered.id]++
		}
		return w.Result()
	}
	verifyReq := func() *http.Response {
		t.Helper()
		w := se.verify(t, bearer(se.meterKey.secret), "")
		if w.Code == http.StatusOK {
			granted[se.meterKey.id]++
		}
		return w.Result()
	}
	// A few uses of each, which lease blocks of uses.
	for range 3 {
		if r := tokenReq(); r.StatusCode != http.StatusOK {
			t.Fatalf("/token: %d", r.StatusCode)
		}
		if r := verifyReq(); r.StatusCode != http.StatusOK {
			t.Fatalf("/verify: %d", r.StatusCode)
		}
	}

	se.store.down.Store(true)
	server.Poll(se.srv)
	if code, body, retry := se.ready(t); code != http.StatusServiceUnavailable || body["reason"] != "vault unreachable" || retry == "" {
		t.Errorf("/readyz with the vault down: %d %v Retry-After %q", code, body, retry)
	}
	// Leased uses are served until none is left; then 503.
	for name, do := range map[string]func() *http.Response{"/token": tokenReq, "/verify": verifyReq} {
		var r *http.Response
		for range 100 {
			if r = do(); r.StatusCode != http.StatusOK {
				break
			}
		}
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s with the vault down and no lease left: %d, want 503", name, r.StatusCode)
		}
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s 503: Retry-After %q", name, r.Header.Get("Retry-After"))
		}
		var body oauthErr
		decodeJSON(t, mustRead(t, r), &body)
		if body.Error != "temporarily_unavailable" {
			t.Errorf("%s 503: error %q, want temporarily_unavailable", name, body.Error)
		}
		// And again: still refused, not granted uncounted.
		if r := do(); r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s again with the vault down: %d", name, r.StatusCode)
		}
	}
	if got := se.scrape(t).value("keymint_vault_errors_total", "op", "lease"); got < 2 {
		t.Errorf("lease errors counted: %v, want at least 2", got)
	}

	se.store.down.Store(false)
	server.Poll(se.srv)
	if code, body, _ := se.ready(t); code != http.StatusOK {
		t.Errorf("/readyz with the vault back: %d %v", code, body)
	}
	if r := tokenReq(); r.StatusCode != http.StatusOK {
		t.Errorf("/token with the vault back: %d", r.StatusCode)
	}
	if r := verifyReq(); r.StatusCode != http.StatusOK {
		t.Errorf("/verify with the vault back: %d", r.StatusCode)
	}

	se.stop(t) // gives back the unused leased uses
	for _, c := range []struct {
		kind vault.Kind
		id   string
	}{{vault.KindClient, se.metered.id}, {vault.KindKey, se.meterKey.id}} {
		var used int64
		err := se.vault.View(func(tx *vault.Tx) error {
			cred, err := tx.Credential(c.id)
			if err != nil {
				return err
			}
			st, err := quota.Current(tx, cred, se.clock.Now())
			if err != nil {
				return err
			}
			used = st[0].Used
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if used != int64(granted[c.id]) {
			t.Errorf("%s %s: %d uses counted in the vault, %d granted", c.kind, c.id, used, granted[c.id])
		}
	}
}

func mustRead(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
