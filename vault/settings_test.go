package vault

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

// TestSettingsIssuer: a vault records an issuer when made with one, keeps
// it, and one made without it (before there was the setting, or migrated
// from format 1) reads as having none, which is what makes the default
// apply.
func TestSettingsIssuer(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, settings Settings) *Vault {
		t.Helper()
		path := filepath.Join(t.TempDir(), "vault.db")
		if err := Create(path, CreateOptions{Recipients: []age.Recipient{id.Recipient()}, Settings: settings}); err != nil {
			t.Fatal(err)
		}
		v, err := Open(path, Options{Identities: []age.Identity{id}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	issuerOf := func(t *testing.T, v *Vault) string {
		t.Helper()
		var s Settings
		if err := v.View(func(tx *Tx) (err error) { s, err = tx.Settings(); return err }); err != nil {
			t.Fatal(err)
		}
		return s.Issuer
	}

	t.Run("recorded", func(t *testing.T) {
		v := open(t, Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs", Issuer: "https://auth.example"})
		if got := issuerOf(t, v); got != "https://auth.example" {
			t.Errorf("issuer %q, want https://auth.example", got)
		}
	})

	t.Run("record without the field", func(t *testing.T) {
		v := open(t, Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"})
		// The settings as a vault made before the field existed wrote them.
		old := json.RawMessage(`{"key_prefix":"km","client_secret_prefix":"kmcs"}`)
		if err := v.Update(func(tx *Tx) error { return tx.putJSON(bucketSettings, []byte(settingsKey), old) }); err != nil {
			t.Fatal(err)
		}
		if got := issuerOf(t, v); got != "" {
			t.Errorf("issuer %q, want none", got)
		}
		// And none is written back as an empty member.
		raw, err := json.Marshal(Settings{KeyPrefix: "km"})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["issuer"]; ok {
			t.Errorf("settings without an issuer encode as %s", raw)
		}
	})

	t.Run("migrated from format 1", func(t *testing.T) {
		path, ids, _ := format1Copy(t)
		v, err := Open(path, Options{Identities: ids, Now: format1Clock})
		if err != nil {
			t.Fatal(err)
		}
		if got := issuerOf(t, v); got != "" {
			t.Errorf("issuer %q, want none", got)
		}
	})
}
