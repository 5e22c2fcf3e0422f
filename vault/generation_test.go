package vault_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func TestGeneration(t *testing.T) {
	tv := newTestVault(t)
	gen := tv.generation(t)
	if gen != 1 {
		t.Errorf("new vault at generation %d, want 1", gen)
	}
	step := func(what string, wantDelta uint64, fn func() error) {
		t.Helper()
		before := tv.generation(t)
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := tv.generation(t); got != before+wantDelta {
			t.Errorf("%s: generation %d -> %d, want +%d", what, before, got, wantDelta)
		}
	}
	upd := func(fn func(tx *vault.Tx) error) func() error { return func() error { return tv.Update(fn) } }
	failed := func(fn func(tx *vault.Tx) error) func() error {
		return func() error {
			if err := tv.Update(fn); err == nil {
				return errors.New("Update succeeded")
			}
			return nil
		}
	}

	step("create key", 1, upd(func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km"))
	}))
	step("two changes in one Update", 1, upd(func(tx *vault.Tx) error {
		if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k2"}}, newSecret(t, "km")); err != nil {
			return err
		}
		_, err := tx.RenameKey("k", "k1")
		return err
	}))
	// Last use is usage data, not a change to the record: a server holding
	// records in memory must not reload them on every use.
	step("touch", 0, upd(func(tx *vault.Tx) error { return tx.TouchKey("k1") }))
	tv.view(t, func(tx *vault.Tx) error {
		k, err := tx.Key("k1")
		if err == nil && (k.LastUsedAt == nil || !k.LastUsedAt.Equal(tv.Clock.Now())) {
			t.Errorf("touch: LastUsedAt = %v, want %v: the use was not recorded", k.LastUsedAt, tv.Clock.Now())
		}
		return err
	})
	step("delete", 1, upd(func(tx *vault.Tx) error { _, err := tx.DeleteKeys("k2"); return err }))
	step("View", 0, func() error {
		return tv.View(func(tx *vault.Tx) error { _, err := tx.Keys(); return err })
	})
	step("Update that reads only", 0, upd(func(tx *vault.Tx) error { _, err := tx.Keys(); return err }))
	step("rename to the same name", 0, upd(func(tx *vault.Tx) error { _, err := tx.RenameKey("k1", "k1"); return err }))
	step("failed Update after a change", 0, failed(func(tx *vault.Tx) error {
		if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k3"}}, newSecret(t, "km")); err != nil {
			return err
		}
		return errors.New("changed my mind")
	}))
	step("failed create", 0, failed(func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k1"}}, newSecret(t, "km"))
	}))
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.Key("k3"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("key from a failed Update: %v, want ErrNotFound", err)
		}
		return nil
	})

	// The generation inside an Update is the one it began with.
	before := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error {
		if tx.Generation() != before {
			t.Errorf("tx.Generation() = %d, want %d", tx.Generation(), before)
		}
		return tx.TouchKey("k1")
	})
}

// TestConcurrentCreate runs many Updates on one *Vault at once; the Vault's
// own lock serialises them and none is lost. Run with -race.
func TestConcurrentCreate(t *testing.T) {
	tv := newTestVault(t)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				secret := newSecret(t, "km")
				errs <- tv.Update(func(tx *vault.Tx) error {
					return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "w" + itoa(w) + "-" + itoa(i)}}, secret)
				})
			}
		})
	}
	// Readers alongside the writers.
	wg.Go(func() {
		for range 20 {
			if err := tv.View(func(tx *vault.Tx) error { _, err := tx.Keys(); return err }); err != nil {
				errs <- err
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	tv.view(t, func(tx *vault.Tx) error {
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		if len(keys) != workers*each {
			t.Errorf("%d keys after concurrent creates, want %d", len(keys), workers*each)
		}
		if g := tx.Generation(); g != 1+workers*each {
			t.Errorf("generation %d, want %d", g, 1+workers*each)
		}
		log, err := tx.AuditLog()
		if err != nil {
			return err
		}
		if len(log) != 1+workers*each {
			t.Errorf("%d audit entries, want %d", len(log), 1+workers*each)
		}
		return nil
	})
}
