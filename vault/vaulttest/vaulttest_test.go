package vaulttest_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
	"github.com/keymint/keymint/vault/vaulttest"
)

// newVault makes a vault with two keys and returns its path and options.
func newVault(t *testing.T) (string, vault.Options) {
	t.Helper()
	id, err := vault.GenerateIdentityFile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	opts := vault.Options{Identities: []vault.Identity{id.Identity}, LockTimeout: 200 * time.Millisecond}
	err = vault.Create(path, vault.CreateOptions{
		Recipients: []vault.Recipient{id.Recipient},
		Settings:   vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    opts,
		Setup: func(tx *vault.Tx) error {
			for _, name := range []string{"a", "b"} {
				secret, err := apikey.Generate("km")
				if err != nil {
					return err
				}
				if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: name}}, secret); err != nil {
					return err
				}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, opts
}

// verify opens the vault afresh and checks it whole.
func verify(path string, opts vault.Options) error {
	v, err := vault.Open(path, opts)
	if err != nil {
		return err
	}
	_, err = v.Verify()
	return err
}

func TestDamageIsSeen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		want   error
	}{
		{"flip first key", func(p string) error { _, err := vaulttest.FlipRecord(p, "keys", false); return err }, vault.ErrTampered},
		{"flip last key", func(p string) error { _, err := vaulttest.FlipRecord(p, "keys", true); return err }, vault.ErrTampered},
		{"remove a key", func(p string) error { return vaulttest.DeleteRecord(p, "keys", false) }, vault.ErrTampered},
		{"remove an index entry", func(p string) error { return vaulttest.DeleteRecord(p, "index", true) }, vault.ErrTampered},
		{"cut the audit log", func(p string) error { return vaulttest.DeleteRecord(p, "audit", true) }, vault.ErrAuditChain},
		{"newer format", func(p string) error { return vaulttest.SetFormat(p, vault.FormatVersion+1) }, vault.ErrNewerFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, opts := newVault(t)
			if err := verify(path, opts); err != nil {
				t.Fatalf("before: %v", err)
			}
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			if err := verify(path, opts); !errors.Is(err, tc.want) {
				t.Errorf("after: %v, want %v", err, tc.want)
			}
			if err := vault.CheckFile(path, time.Second); err != nil {
				t.Errorf("the damage is not one bbolt sees, but CheckFile says %v", err)
			}
		})
	}
}

func TestFlipRecordFlipsEveryCopy(t *testing.T) {
	path, _ := newVault(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vaulttest.FlipRecord(path, "keys", false)
	if err != nil || n < 1 {
		t.Fatalf("FlipRecord = %d, %v", n, err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for i := range before {
		if before[i] != after[i] {
			diff++
			if x := before[i] ^ after[i]; x != 1 {
				t.Errorf("byte %d changed by %#x, want one bit", i, x)
			}
		}
	}
	if diff != n {
		t.Errorf("%d bytes changed for %d copies", diff, n)
	}
	if _, err := vaulttest.FlipRecord(path, "nope", false); err == nil {
		t.Error("FlipRecord of a missing bucket succeeded")
	}
}

func TestHoldLock(t *testing.T) {
	path, opts := newVault(t)
	release, err := vaulttest.HoldLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(path, opts); !errors.Is(err, vault.ErrBusy) {
		t.Errorf("Open with the lock held: %v, want ErrBusy", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(path, opts); err != nil {
		t.Errorf("Open once released: %v", err)
	}
}

func TestMakeForeignDB(t *testing.T) {
	_, opts := newVault(t)
	path := filepath.Join(t.TempDir(), "other.db")
	if err := vaulttest.MakeForeignDB(path); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(path, opts); !errors.Is(err, vault.ErrNotVault) {
		t.Errorf("Open: %v, want ErrNotVault", err)
	}
	if err := vaulttest.MakeForeignDB(path); err == nil {
		t.Error("MakeForeignDB replaced a file")
	}
	if err := vault.CheckFile(path, time.Second); err != nil {
		t.Errorf("CheckFile: %v", err)
	}
}

func TestUsedSize(t *testing.T) {
	path, _ := newVault(t)
	n, err := vaulttest.UsedSize(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n > st.Size() {
		t.Errorf("UsedSize = %d of a %d-byte file", n, st.Size())
	}
}

func TestNeverCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	for name, err := range map[string]error{
		"SetMeta":      vaulttest.SetMeta(path, "format", []byte{1}),
		"DeleteRecord": vaulttest.DeleteRecord(path, "keys", false),
		"HoldLock":     func() error { _, err := vaulttest.HoldLock(path); return err }(),
	} {
		if err == nil {
			t.Errorf("%s on a missing file succeeded", name)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was created: %v", err)
	}
}
