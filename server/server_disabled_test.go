package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keymint/keymint/vault"
)

// setDisabled disables or enables a key or client through another handle
// (as the CLI would) and reloads the server.
func (e *env) setDisabled(t testing.TB, kind vault.Kind, name string, disabled bool) {
	t.Helper()
	v := e.open(t)
	u := vault.CredentialUpdate{Disabled: &disabled}
	if err := v.Update(func(tx *vault.Tx) error {
		var err error
		if kind == vault.KindKey {
			_, _, err = tx.UpdateKey(name, vault.KeyUpdate{CredentialUpdate: u})
		} else {
			_, _, err = tx.UpdateClient(name, vault.ClientUpdate{CredentialUpdate: u})
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
}

// TestTokenDisabledClient: the right secret of a disabled client gets 401
// invalid_client saying it is disabled, as often as it is sent, never the
// failed-authentication throttle's 429: it is no guess. A wrong secret
// learns nothing of it. Its tokens are inactive at /introspect until it
// is enabled again.
func TestTokenDisabledClient(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "narrow", nil)
	e.setDisabled(t, vault.KindClient, "erp", true)
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := range 20 {
		w := e.do(t, request{path: "/token", form: form, header: e.basic("erp"), remote: attackerAddr})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s, want 401", i+1, w.Code, w.Body)
		}
		var body oauthErr
		decodeJSON(t, w.Body.Bytes(), &body)
		if body.Error != "invalid_client" || !strings.Contains(body.Description, "disabled") {
			t.Fatalf("request %d: %+v", i+1, body)
		}
		checkNoStore(t, w)
	}
	if !strings.Contains(e.logs.String(), "client is disabled") {
		t.Error("the log does not say the client is disabled")
	}
	// A wrong secret for the disabled client: the usual answer, which does
	// not say disabled.
	w := e.do(t, request{path: "/token", form: form, header: basic(e.clients["erp"].id, e.newSecret(t)), remote: freshAddr})
	if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "disabled") {
		t.Errorf("wrong secret of a disabled client: %d %s", w.Code, w.Body)
	}

	// Introspection of the disabled client's tokens: inactive.
	e.setDisabled(t, vault.KindClient, "erp", false)
	erpTok := e.token(t, "erp", nil)
	introspect := func(tok string) string {
		t.Helper()
		w := e.do(t, request{path: "/introspect", form: url.Values{"token": {tok}}, header: e.basic("narrow")})
		if w.Code != 200 {
			t.Fatalf("/introspect: %d %s", w.Code, w.Body)
		}
		return w.Body.String()
	}
	if b := introspect(erpTok); !strings.Contains(b, `"active":true`) {
		t.Fatalf("enabled client's token: %s", b)
	}
	e.setDisabled(t, vault.KindClient, "erp", true)
	if b := introspect(erpTok); strings.TrimSpace(b) != `{"active":false}` {
		t.Errorf("disabled client's token: %s", b)
	}
	if b := introspect(tok); !strings.Contains(b, `"active":true`) {
		t.Errorf("another client's token: %s", b)
	}
	e.setDisabled(t, vault.KindClient, "erp", false)
	if b := introspect(erpTok); !strings.Contains(b, `"active":true`) {
		t.Errorf("enabled again: %s", b)
	}
}

// TestVerifyDisabledKey: /verify refuses a disabled key's right secret with
// 401 invalid_key, as often as it is sent, never throttled; its own cause
// in the log. Enabled again, it is valid.
func TestVerifyDisabledKey(t *testing.T) {
	e := newEnv(t)
	k := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "svc", Scopes: []string{"a"}}})
	e.reload(t)
	if w := e.verify(t, bearer(k.secret), attackerAddr); w.Code != 200 {
		t.Fatalf("enabled: %d", w.Code)
	}
	e.setDisabled(t, vault.KindKey, "svc", true)
	for i := range 20 {
		w := e.verify(t, bearer(k.secret), attackerAddr)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "invalid_key") {
			t.Fatalf("request %d: %d %s, want 401 invalid_key", i+1, w.Code, w.Body)
		}
	}
	if !strings.Contains(e.logs.String(), "key is disabled") {
		t.Error("the log does not say the key is disabled")
	}
	e.setDisabled(t, vault.KindKey, "svc", false)
	if w := e.verify(t, bearer(k.secret), attackerAddr); w.Code != 200 {
		t.Errorf("enabled again: %d %s", w.Code, w.Body)
	}
}
