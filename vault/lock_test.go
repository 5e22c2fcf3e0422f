package vault_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// TestBusy holds bbolt's file lock through a second handle in this process,
// as another keymint would, and expects ErrBusy once LockTimeout runs out.
func TestBusy(t *testing.T) {
	tv := newTestVault(t)
	const timeout = 200 * time.Millisecond
	v, err := vault.Open(tv.Path, vault.Options{Identities: []age.Identity{tv.Identity}, LockTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}

	// A read-write handle holds the exclusive lock: both writers and
	// readers wait, then give up.
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	gen := tv.generation
	ops := map[string]func() error{
		"Update": func() error {
			return v.Update(func(tx *vault.Tx) error {
				return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km"))
			})
		},
		"View": func() error { return v.View(func(*vault.Tx) error { return nil }) },
		"Open": func() error {
			_, err := vault.Open(tv.Path, vault.Options{Identities: []age.Identity{tv.Identity}, LockTimeout: timeout})
			return err
		},
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		elapsed := time.Since(start)
		if !errors.Is(err, vault.ErrBusy) {
			t.Errorf("%s under an exclusive lock = %v, want ErrBusy", name, err)
		}
		// bbolt polls the lock every 50ms and gives up one poll early, at
		// timeout-50ms; allow for a slow machine above.
		if elapsed < timeout-60*time.Millisecond || elapsed > timeout+time.Second {
			t.Errorf("%s gave up after %v, want about %v", name, elapsed, timeout)
		}
	}
	db.Close()

	// A read-only handle shares the lock: readers go ahead, writers wait.
	db, err = bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := ops["View"](); err != nil {
		t.Errorf("View beside a reader: %v", err)
	}
	if err := ops["Update"](); !errors.Is(err, vault.ErrBusy) {
		t.Errorf("Update beside a reader = %v, want ErrBusy", err)
	}
	db.Close()

	// Once the lock is free, a change goes through, and the busy attempts
	// changed nothing.
	g := gen(t)
	if err := ops["Update"](); err != nil {
		t.Fatalf("Update after the lock was released: %v", err)
	}
	if got := gen(t); got != g+1 {
		t.Errorf("generation %d -> %d, want +1", g, got)
	}
}

// TestBusyWaits: a lock released before the timeout is waited for, not
// reported.
func TestBusyWaits(t *testing.T) {
	tv := newTestVault(t)
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(100 * time.Millisecond)
		db.Close()
	})
	// tv waits up to 5s.
	tv.update(t, func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km"))
	})
	wg.Wait()
}
