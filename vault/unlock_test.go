package vault_test

import (
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/vault"
)

// TestUnlockDataKey: the data key Unlock returns opens the vault without
// identities, its Lock is the one PeekLock reads, and after a rekey neither
// the old key nor its Lock fits any more.
func TestUnlockDataKey(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 2)
	opts := vault.Options{Identities: []age.Identity{tv.Identity}, LockTimeout: 5 * time.Second}
	u, err := vault.Unlock(vault.Location{File: tv.Path}, opts)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := vault.PeekLock(vault.Location{File: tv.Path}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !lock.Matches(u.Lock) {
		t.Fatalf("PeekLock %x does not match Unlock's %x", lock.ID, u.ID)
	}
	byKey, err := vault.Open(tv.Path, vault.Options{DataKey: u.DataKey, Now: tv.Clock.Now, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open with the data key: %v", err)
	}
	f.check(t, byKey)

	nv, _, err := tv.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = nv
	after, err := vault.PeekLock(vault.Location{File: tv.Path}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Matches(u.Lock) {
		t.Error("the Lock is the same after a rekey: an agent would answer with a stale key")
	}
	if !after.Matches(vault.Lock{ID: u.ID, KeyCheck: after.KeyCheck}) {
		t.Error("the vault's id changed with a rekey")
	}
	if _, err := vault.Open(tv.Path, vault.Options{DataKey: u.DataKey, LockTimeout: 5 * time.Second}); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("open with the data key from before the rekey: %v, want ErrWrongIdentity", err)
	}
	if _, err := vault.Unlock(vault.Location{File: tv.Path}, vault.Options{LockTimeout: 5 * time.Second}); !errors.Is(err, vault.ErrNoIdentity) {
		t.Errorf("Unlock with no identity: %v", err)
	}
}

// TestFollowRekey: a Vault opened to follow rekeys goes on after another
// one rekeys the file, with every secret still valid; one that does not
// follow fails with ErrRekeyed; and one whose identity the rekey left out
// says so.
func TestFollowRekey(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 3)
	x := recipientsX25519(t)
	ids := []age.Identity{tv.Identity}
	if _, err := tv.AddRecipients(ids, []string{x.Recipient().String()}, nil); err != nil {
		t.Fatal(err)
	}
	open := func(follow bool, id age.Identity) *vault.Vault {
		t.Helper()
		v, err := vault.Open(tv.Path, vault.Options{Identities: []age.Identity{id}, FollowRekey: follow, Now: tv.Clock.Now, LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	server, plain, removed := open(true, tv.Identity), open(false, tv.Identity), open(true, x)

	if _, err := tv.RemoveRecipients(ids, []string{x.Recipient().String()}, nil); err != nil {
		t.Fatal(err)
	}
	nv, _, err := tv.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = nv

	f.check(t, server) // reads through View and Update, after following
	if _, err := plain.Generation(); !errors.Is(err, vault.ErrRekeyed) {
		t.Errorf("a vault not following rekeys: %v, want ErrRekeyed", err)
	}
	_, err = removed.Generation()
	if !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("following with a removed identity: %v, want ErrWrongIdentity", err)
	}
	// Writes through the follower are seen by the rekeyed vault, and
	// the other way round: they share the new key.
	if err := server.Update(func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "after-rekey"}}, newSecret(t, "km"))
	}); err != nil {
		t.Fatalf("write after following: %v", err)
	}
	tv.view(t, func(tx *vault.Tx) error {
		_, err := tx.Key("after-rekey")
		return err
	})
}
