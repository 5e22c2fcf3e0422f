package vault_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestUsable is the one decision whether a credential may be used now, as
// a table: the secret first (live, in its grace, past it, unknown), then
// expiry, then nothing else; a missing credential is not found.
func TestUsable(t *testing.T) {
	now := epoch
	mac := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	current, inGrace, pastGrace, justRetired := mac(1), mac(2), mac(3), mac(4)
	secrets := []vault.SecretHash{
		{MAC: pastGrace, RetiresAt: at(-time.Second)},
		{MAC: justRetired, RetiresAt: at(0)},
		{MAC: inGrace, RetiresAt: at(time.Hour)},
		{MAC: current},
	}
	live := &vault.Credential{ID: "key_live", Name: "live", Secrets: secrets}
	expired := &vault.Credential{ID: "key_gone", Name: "gone", Secrets: secrets, ExpiresAt: at(0)}
	expiresSoon := &vault.Credential{ID: "key_soon", Name: "soon", Secrets: secrets, ExpiresAt: at(time.Nanosecond)}
	for _, tt := range []struct {
		name string
		c    *vault.Credential
		mac  []byte
		want error // nil, a sentinel, or vault.ErrExpired for an ExpiredError
	}{
		{"good secret", live, current, nil},
		{"retired secret in its grace", live, inGrace, nil},
		{"retired secret past its grace", live, pastGrace, vault.ErrSecretRetired},
		{"retired at exactly now", live, justRetired, vault.ErrSecretRetired},
		{"unknown secret", live, mac(9), vault.ErrWrongSecret},
		{"empty secret matches nothing", live, []byte{}, vault.ErrWrongSecret},
		{"named, no secret", live, nil, nil},
		{"expired credential, good secret", expired, current, vault.ErrExpired},
		{"expired credential, secret in grace", expired, inGrace, vault.ErrExpired},
		{"expired credential, named", expired, nil, vault.ErrExpired},
		// The secret is checked first: a wrong one learns nothing of
		// the expiry.
		{"expired credential, unknown secret", expired, mac(9), vault.ErrWrongSecret},
		{"expired credential, retired secret", expired, pastGrace, vault.ErrSecretRetired},
		{"expires a moment later", expiresSoon, current, nil},
		{"removed or never there", nil, current, vault.ErrNotFound},
		{"removed, named", nil, nil, vault.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := vault.Usable(vault.KindKey, tt.c, tt.mac, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Usable = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Usable = %v, want %v", err, tt.want)
			}
			for _, other := range []error{vault.ErrNotFound, vault.ErrSecretRetired, vault.ErrWrongSecret, vault.ErrExpired} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Usable = %v, which is also %v", err, other)
				}
			}
			if tt.want == vault.ErrExpired {
				var ee *vault.ExpiredError
				if !errors.As(err, &ee) || ee.Kind != vault.KindKey || ee.ID != tt.c.ID || ee.Name != tt.c.Name || !ee.ExpiresAt.Equal(*tt.c.ExpiresAt) {
					t.Errorf("error %#v does not name the key and its expiry", err)
				}
			}
		})
	}
	// SecretMatches is the secret check alone.
	for m, want := range map[string]bool{"current": true, "in grace": true, "past grace": false, "unknown": false} {
		b := map[string][]byte{"current": current, "in grace": inGrace, "past grace": pastGrace, "unknown": mac(9)}[m]
		if got := vault.SecretMatches(expired, b, now); got != want {
			t.Errorf("SecretMatches(%s) = %v, want %v", m, got, want)
		}
	}
}

// TestBySecretUsable: the vault's lookup by secret asks Usable. A secret
// in its grace finds its credential; one past it finds none (ErrNotFound,
// and ErrSecretRetired says why); the right secret of an expired
// credential gives its ExpiredError.
func TestBySecretUsable(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			expires := epoch.Add(3 * time.Hour)
			old, fresh := newSecret(t, ops.prefix), newSecret(t, ops.prefix)
			tv.update(t, func(tx *vault.Tx) error {
				cred := vault.Credential{Name: "svc", ExpiresAt: &expires}
				if ops.kind == "client" {
					return tx.CreateClient(&vault.Client{Credential: cred, GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}, old)
				}
				return tx.CreateKey(&vault.Key{Credential: cred}, old)
			})
			tv.update(t, func(tx *vault.Tx) error { _, err := ops.rotate(tx, "svc", fresh, time.Hour); return err })
			lookup := func(secret string) error {
				var err error
				tv.view(t, func(tx *vault.Tx) error {
					_, err = ops.bySecret(tx, secret)
					return nil
				})
				return err
			}

			for name, s := range map[string]string{"new secret": fresh, "old secret in its grace": old} {
				if err := lookup(s); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			tv.Clock.Advance(time.Hour)
			if err := lookup(old); !errors.Is(err, vault.ErrNotFound) || !errors.Is(err, vault.ErrSecretRetired) {
				t.Errorf("old secret past its grace: %v, want ErrNotFound and ErrSecretRetired", err)
			}
			if err := lookup(newSecret(t, ops.prefix)); !errors.Is(err, vault.ErrNotFound) || errors.Is(err, vault.ErrSecretRetired) {
				t.Errorf("unknown secret: %v, want ErrNotFound alone", err)
			}
			tv.Clock.Advance(2 * time.Hour)
			var ee *vault.ExpiredError
			if err := lookup(fresh); !errors.As(err, &ee) || ee.Name != "svc" {
				t.Errorf("expired %s's secret: %v, want its ExpiredError", ops.kind, err)
			}
			if err := lookup(old); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("expired %s's retired secret: %v, want ErrNotFound", ops.kind, err)
			}
		})
	}
}
