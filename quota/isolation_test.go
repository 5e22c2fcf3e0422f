package quota_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// TestExactOnOptimisticStore: quota exactness follows from the isolation
// of vault transactions alone, not from bbolt's single writer. On the
// in-memory store, whose commits are optimistic (a conflicting commit is
// refused and the vault runs the transaction again, as with etcd), many
// CLI-style consumers and several servers' leasers share one credential
// limited to 100 a day: exactly 100 uses are granted and counted.
func TestExactOnOptimisticStore(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	// Every third commit is refused as if it had lost to another one, on
	// top of the conflicts that really happen: whether goroutines overlap
	// depends on the machine's load, the retries must not.
	store := &conflictingStore{MemStore: vault.NewMemStore(), every: 3}
	v, err := vault.CreateIn(store, "memory", vault.CreateOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Settings:   vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    vault.Options{Now: clk.Now},
	})
	if err != nil {
		t.Fatal(err)
	}
	limits, err := quota.ParseLimits([]string{"100/day"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := apikey.Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	k := &vault.Key{Credential: vault.Credential{Name: "shared", Limits: quota.StoredLimits(limits)}}
	if err := v.Update(func(tx *vault.Tx) error { return tx.CreateKey(k, secret) }); err != nil {
		t.Fatal(err)
	}
	c := &k.Credential

	var granted atomic.Int64
	var wg sync.WaitGroup
	// Eight consumers as CLI commands would count, each in its own
	// transaction.
	for range 8 {
		wg.Go(func() {
			for range 40 {
				var d quota.Decision
				err := v.Update(func(tx *vault.Tx) error {
					var err error
					d, err = quota.Consume(tx, c, tx.Now())
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					granted.Add(1)
				}
			}
		})
	}
	// Three servers, each leasing blocks of uses.
	leasers := []*quota.Leaser{quota.NewLeaser(v, clk.Now), quota.NewLeaser(v, clk.Now), quota.NewLeaser(v, clk.Now)}
	for _, l := range leasers {
		for range 2 {
			wg.Go(func() {
				for range 60 {
					d, err := l.Take(c)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						granted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	for _, l := range leasers {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := granted.Load(); got != 100 {
		t.Errorf("granted %d uses of a 100/day credential", got)
	}
	var used int64
	if err := v.View(func(tx *vault.Tx) error {
		st, err := quota.Current(tx, c, clk.Now())
		if err == nil {
			used = st[0].Used
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if used != 100 {
		t.Errorf("counted %d uses, want 100", used)
	}
	if store.injected.Load() == 0 {
		t.Error("no commit was refused: the test did not exercise the retries")
	}
	t.Logf("%d commits refused and retried, %d of them on real conflicts", store.injected.Load()+store.Conflicts(), store.Conflicts())
}

// conflictingStore refuses every nth commit with vault.ErrConflict, after
// running the transaction's function, as an optimistic store does when
// another commit got in first.
type conflictingStore struct {
	*vault.MemStore
	every    int64
	calls    atomic.Int64
	injected atomic.Int64
}

var errRefuse = errors.New("refused by the test")

func (s *conflictingStore) Update(fn func(vault.WriteTx) error) error {
	if s.calls.Add(1)%s.every != 0 {
		return s.MemStore.Update(fn)
	}
	err := s.MemStore.Update(func(w vault.WriteTx) error {
		if err := fn(w); err != nil {
			return err
		}
		return errRefuse
	})
	if errors.Is(err, errRefuse) {
		s.injected.Add(1)
		return fmt.Errorf("test store: %w", vault.ErrConflict)
	}
	return err
}
