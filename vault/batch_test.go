package vault_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestBatchSharesCommits: concurrent Batch calls all take effect, in fewer
// commits than calls.
func TestBatchSharesCommits(t *testing.T) {
	f := newFlow(t)
	commits := vault.CountCommits(f.tv.Vault)
	const n = 64
	codes := make([]string, n)
	for i := range codes {
		codes[i] = randomCode(t)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f.tv.Batch(func(tx *vault.Tx) error { return tx.CreateAuthCode(codes[i], f.authCode(tx, time.Minute)) })
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	f.tv.update(t, func(tx *vault.Tx) error {
		for _, code := range codes {
			if _, err := tx.RedeemAuthCode(code); err != nil {
				return err
			}
		}
		return nil
	})
	if got := commits(); got >= n+1 {
		t.Errorf("%d commits for %d calls and one redemption: no batching", got, n)
	} else {
		t.Logf("%d calls in %d commits", n, got-1)
	}
}

// TestBatchFailureIsItsOwn: a call that fails gets its error, and the
// others in its batch still commit; a reuse detected in a batch commits
// its revocation with the calls before it.
func TestBatchFailureIsItsOwn(t *testing.T) {
	f := newFlow(t)
	used := f.newCode(t)
	f.tv.update(t, func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(used); return err })
	boom := errors.New("boom")
	const n = 32
	codes := make([]string, n)
	for i := range codes {
		codes[i] = randomCode(t)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f.tv.Batch(func(tx *vault.Tx) error {
				switch i {
				case 5:
					if err := tx.CreateAuthCode(codes[i], f.authCode(tx, time.Minute)); err != nil {
						return err
					}
					return boom // written, then failed: must not stay
				case 9:
					_, err := tx.RedeemAuthCode(used) // a reuse: revokes, and commits
					return err
				}
				return tx.CreateAuthCode(codes[i], f.authCode(tx, time.Minute))
			})
		})
	}
	close(start)
	wg.Wait()
	var reused *vault.CodeReusedError
	for i, err := range errs {
		switch {
		case i == 5 && !errors.Is(err, boom):
			t.Errorf("call 5: %v, want boom", err)
		case i == 9 && !errors.As(err, &reused):
			t.Errorf("call 9: %v, want a reuse", err)
		case i != 5 && i != 9 && err != nil:
			t.Errorf("call %d: %v", i, err)
		}
	}
	f.tv.view(t, func(tx *vault.Tx) error {
		for i, code := range codes {
			_, err := tx.RedeemAuthCode(code) // a read transaction: only looks
			if i == 9 {
				continue
			}
			if exists := !errors.Is(err, vault.ErrCodeInvalid); exists != (i != 5) {
				t.Errorf("code %d: %v", i, err)
			}
		}
		return nil
	})
}
