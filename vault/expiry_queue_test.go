package vault_test

import (
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestPruneBounded: many codes expired at once are removed a batch per
// write that adds one, never more, without advancing the generation,
// until only live ones are left.
func TestPruneBounded(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	const n = 3 * vault.PruneBatch
	tv.update(t, func(tx *vault.Tx) error {
		for range n {
			if err := tx.CreateAuthCode(randomCode(t), f.authCode(tx, time.Minute)); err != nil {
				return err
			}
		}
		return nil
	})
	tv.Clock.Advance(2 * time.Minute)
	gen := tv.generation(t)
	live := 0
	for write := 1; ; write++ {
		before := tv.records(t)["codes"]
		f.newCode(t)
		live++
		after := tv.records(t)["codes"]
		removed := before + 1 - after
		if removed > vault.PruneBatch {
			t.Fatalf("write %d removed %d codes, more than %d", write, removed, vault.PruneBatch)
		}
		if write == 1 && removed != vault.PruneBatch {
			t.Errorf("the first write removed %d expired codes, want %d", removed, vault.PruneBatch)
		}
		if after == live {
			if write != n/vault.PruneBatch {
				t.Errorf("%d writes to remove %d codes, want %d", write, n, n/vault.PruneBatch)
			}
			break
		}
		if write > n {
			t.Fatalf("expired codes left after %d writes: %d", write, after-live)
		}
	}
	if got := tv.generation(t); got != gen {
		t.Errorf("pruning codes: generation %d -> %d", gen, got)
	}
}

// TestPruneRevocations: expired revocations are dropped a batch per
// revocation, as a revocation of an expired token used to drop every one
// by reading the whole bucket; those in force are kept.
func TestPruneRevocations(t *testing.T) {
	tv := newTestVault(t)
	const n = 2*vault.PruneBatch + 3
	tv.update(t, func(tx *vault.Tx) error {
		for i := range n {
			if err := tx.Revoke(vault.Revocation{JTI: "old-" + itoa(i), ClientID: "cl_x", ExpiresAt: tx.Now().Add(time.Minute)}); err != nil {
				return err
			}
		}
		return tx.Revoke(vault.Revocation{JTI: "lasting", ClientID: "cl_x", ExpiresAt: tx.Now().Add(time.Hour)})
	})
	tv.Clock.Advance(2 * time.Minute)
	left := n
	for i := 0; left > 0; i++ {
		tv.update(t, func(tx *vault.Tx) error {
			return tx.Revoke(vault.Revocation{JTI: "new-" + itoa(i), ClientID: "cl_x", ExpiresAt: tx.Now().Add(time.Hour)})
		})
		want := max(left-vault.PruneBatch, 0)
		if got := tv.records(t)["revoked"] - (i + 2); got != want {
			t.Fatalf("after revocation %d: %d expired revocations left, want %d", i, got, want)
		}
		left = want
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, jti := range []string{"lasting", "new-0"} {
			if ok, err := tx.Revoked(jti); err != nil || !ok {
				t.Errorf("%s: %v, %v", jti, ok, err)
			}
		}
		if ok, _ := tx.Revoked("old-0"); ok {
			t.Error("an expired revocation is left")
		}
		revs, err := tx.Revocations()
		if err != nil || len(revs) != 1+3 {
			t.Errorf("Revocations: %d, %v", len(revs), err)
		}
		return nil
	})
}

// TestPruneAfterIdle: after a long idle time (codes and refresh tokens
// expired weeks ago, at times far apart), a few writes remove them all,
// each removing at most a batch: the cursor skips unmarked hours and days
// at a step each.
func TestPruneAfterIdle(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	for _, d := range []time.Duration{0, 3 * time.Hour, 50 * time.Hour, 9 * 24 * time.Hour} {
		tv.Clock.Advance(d)
		f.newCode(t)
		f.newRefresh(t)
	}
	tv.Clock.Advance(40 * 24 * time.Hour)
	for write := 1; ; write++ {
		before := tv.records(t)
		f.newCode(t)
		after := tv.records(t)
		if removed := before["codes"] + before["refresh"] + 1 - after["codes"] - after["refresh"]; removed > vault.PruneBatch {
			t.Fatalf("write %d removed %d records", write, removed)
		}
		if after["codes"] == write && after["refresh"] == 0 && after["families"] == 0 {
			if write > 6 {
				t.Errorf("%d writes to catch up after 40 days idle", write)
			}
			break
		}
		if write > 100 {
			t.Fatalf("after %d writes: %v", write, after)
		}
	}
	// The cursor may still be walking the last hour it found marked; a
	// few writes more and the queue holds the cursor, the live codes'
	// entries and their hour's marker.
	for write := 0; ; write++ {
		r := tv.records(t)
		if r["expiry"] == r["codes"]+2 {
			break
		}
		if write == 3 {
			t.Fatalf("%d records in the expiry queue for %d codes", r["expiry"], r["codes"])
		}
		f.newCode(t)
	}
}

// TestPruneClockBack: a code written under a clock that went back, with an
// expiry before the queue's cursor, is still removed once it is due.
func TestPruneClockBack(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	f.newCode(t)
	tv.Clock.Advance(10 * time.Minute)
	f.newCode(t) // removes the first, and moves the cursor on
	tv.Clock.Advance(-10 * time.Minute)
	f.newCode(t) // due before the cursor's slot
	tv.Clock.Advance(20 * time.Minute)
	for range 3 {
		f.newCode(t)
	}
	if got := tv.records(t)["codes"]; got != 3 {
		t.Errorf("%d codes left, want the 3 live ones", got)
	}
}

// TestPruneOncePerWrite: a write that adds many codes still removes at
// most a batch of expired ones.
func TestPruneOncePerWrite(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	const n = 3 * vault.PruneBatch
	add := func(k int) {
		tv.update(t, func(tx *vault.Tx) error {
			for range k {
				if err := tx.CreateAuthCode(randomCode(t), f.authCode(tx, time.Minute)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	add(n)
	tv.Clock.Advance(2 * time.Minute)
	add(n)
	if got, want := tv.records(t)["codes"], 2*n-vault.PruneBatch; got != want {
		t.Errorf("%d codes after a write that added %d, want %d: one batch removed", got, n, want)
	}
}
