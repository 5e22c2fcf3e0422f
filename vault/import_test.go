package vault_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// TestImportLegacy: an imported secret not in keymint's format is kept as
// an HMAC marked legacy, authenticates, and a rotation clears the mark once
// its grace has passed. An imported client keeps a 40-hex client_id, found
// by it and by name.
func TestImportLegacy(t *testing.T) {
	tv := newTestVault(t)
	const legacyKey = "sk-live-0123456789abcdef"
	const hexID = "3f2a9c0d1e4b5a6978695a4b3c2d1e0f9a8b7c6d"
	const legacyClient = "soap-secret-XYZ-12345"
	good, err := apikey.Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	tv.update(t, func(tx *vault.Tx) error {
		if err := tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "old-key", Scopes: []string{"a:read"}}}, legacyKey); err != nil {
			return err
		}
		if err := tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "new-key"}}, good); err != nil {
			return err
		}
		return tx.ImportClient(&vault.Client{Credential: vault.Credential{ID: hexID, Name: "soap-app"}, GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}, legacyClient)
	})
	now := tv.Clock.Now()
	tv.view(t, func(tx *vault.Tx) error {
		k, err := tx.KeyBySecret(legacyKey)
		if err != nil {
			t.Fatalf("KeyBySecret(legacy): %v", err)
		}
		if k.Name != "old-key" || !k.LegacySecret(now) {
			t.Errorf("legacy key = %s, legacy %v", k.Name, k.LegacySecret(now))
		}
		k, err = tx.KeyBySecret(good)
		if err != nil || k.LegacySecret(now) {
			t.Errorf("KeyBySecret(keymint) = %v, %v; want not legacy", k, err)
		}
		for _, ref := range []string{hexID, "soap-app"} {
			c, err := tx.Client(ref)
			if err != nil || c.ID != hexID || !c.LegacySecret(now) {
				t.Errorf("Client(%s) = %v, %v", ref, c, err)
			}
		}
		c, err := tx.ClientBySecret(legacyClient)
		if err != nil || c.ID != hexID {
			t.Errorf("ClientBySecret = %v, %v", c, err)
		}
		if _, err := tx.Credential(hexID); err != nil {
			t.Errorf("Credential(%s): %v", hexID, err)
		}
		return nil
	})

	// Refused: a bad checksum, a short or non-ASCII secret, a reused
	// secret, a taken id, a name that is an imported id.
	last := byte('A')
	if good[len(good)-1] == last {
		last = 'B'
	}
	bad := good[:len(good)-1] + string(last)
	for name, try := range map[string]func(tx *vault.Tx) error{
		"checksum": func(tx *vault.Tx) error {
			return tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "x1"}}, bad)
		},
		"short": func(tx *vault.Tx) error {
			return tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "x2"}}, "short")
		},
		"non-ascii": func(tx *vault.Tx) error {
			return tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "x3"}}, "päss wörd 123")
		},
		"reused": func(tx *vault.Tx) error {
			return tx.ImportKey(&vault.Key{Credential: vault.Credential{Name: "x4"}}, legacyKey)
		},
		"id taken": func(tx *vault.Tx) error {
			return tx.ImportClient(&vault.Client{Credential: vault.Credential{ID: hexID, Name: "x5"}}, "another-secret-1")
		},
		"id as name": func(tx *vault.Tx) error {
			return tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: hexID}}, mustGen(t, "kmcs"))
		},
		"bad id": func(tx *vault.Tx) error {
			return tx.ImportClient(&vault.Client{Credential: vault.Credential{ID: "key_0123456789abcdefgh", Name: "x6"}}, "another-secret-2")
		},
	} {
		if err := tv.Update(try); err == nil {
			t.Errorf("%s: import succeeded", name)
		} else if errors.Is(err, vault.ErrLegacySecret) != (name == "short" || name == "non-ascii") {
			t.Errorf("%s: %v", name, err)
		} else if name == "reused" && !errors.Is(err, vault.ErrSecretTaken) {
			t.Errorf("%s: %v, want ErrSecretTaken", name, err)
		}
	}

	// Rotation: legacy until the old secret's grace has passed.
	tv.update(t, func(tx *vault.Tx) error {
		_, err := tx.RotateKey("old-key", mustGen(t, "km"), time.Hour)
		return err
	})
	tv.view(t, func(tx *vault.Tx) error {
		k, err := tx.Key("old-key")
		if err != nil {
			return err
		}
		if !k.LegacySecret(tv.Clock.Now()) || k.LegacySecret(tv.Clock.Now().Add(time.Hour)) {
			t.Errorf("after rotation: legacy now %v, after grace %v", k.LegacySecret(tv.Clock.Now()), k.LegacySecret(tv.Clock.Now().Add(time.Hour)))
		}
		return nil
	})
}

func mustGen(t *testing.T, prefix string) string {
	t.Helper()
	s, err := apikey.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
