package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// TestLegacyImported: an imported legacy API key verifies at /verify; an
// imported client with a 40-hex client_id and a legacy secret gets tokens
// at /token; wrong secrets against that client from 20 addresses are
// throttled per client after the burst, while its right secret still
// gets 200. A keymint client is not throttled per client.
func TestLegacyImported(t *testing.T) {
	e := newEnv(t)
	const keySecret = "sk-live-0123456789abcdef"
	const clientID = "3f2a9c0d1e4b5a6978695a4b3c2d1e0f9a8b7c6d"
	const clientSecret = "soap-secret-12345"
	if err := e.open(t).Update(func(tx *vault.Tx) error {
		if err := tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "old-key", Scopes: []string{"a:read"}}}, keySecret); err != nil {
			return err
		}
		return tx.ImportClient(&vault.Client{Credential: vault.Credential{ID: clientID, Name: "soap", Scopes: []string{"a:read"}},
			GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}, clientSecret)
	}); err != nil {
		t.Fatal(err)
	}
	e.reload(t)

	if w := e.verify(t, xAPIKey(keySecret), ""); w.Code != http.StatusOK {
		t.Errorf("/verify legacy key: %d %s", w.Code, w.Body)
	}
	if w := e.verify(t, xAPIKey(keySecret+"x"), ""); w.Code != http.StatusUnauthorized {
		t.Errorf("/verify wrong legacy key: %d", w.Code)
	}

	form := url.Values{"grant_type": {"client_credentials"}}
	tokenAs := func(id, secret, remote string) int {
		return e.do(t, request{path: "/token", form: form, header: basic(id, secret), remote: remote}).Code
	}
	tokenReq := func(secret, remote string) int { return tokenAs(clientID, secret, remote) }
	if code := tokenReq(clientSecret, ""); code != http.StatusOK {
		t.Fatalf("/token legacy client: %d", code)
	}
	var codes []int
	for i := range 20 {
		codes = append(codes, tokenReq("wrong-secret-1", fmt.Sprintf("198.51.100.%d:1234", i+1)))
	}
	for i, code := range codes {
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if code != want {
			t.Errorf("wrong secret %d from a new address: %d, want %d (all: %v)", i+1, code, want, codes)
			break
		}
	}
	if code := tokenReq(clientSecret, "203.0.113.9:1"); code != http.StatusOK {
		t.Errorf("/token right secret after the attack: %d", code)
	}
	// A keymint client is throttled per address only.
	erp := e.clients["erp"]
	for i := range 20 {
		if code := tokenAs(erp.id, "kmcs_wrong", fmt.Sprintf("198.51.101.%d:1234", i+1)); code != http.StatusUnauthorized {
			t.Fatalf("keymint client, wrong secret %d from a new address: %d, want 401", i+1, code)
		}
	}
}
