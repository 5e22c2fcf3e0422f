package quota_test

import (
	"testing"
	"time"

	"github.com/keymint/keymint/quota"
)

// TestLeaserRefillsAhead: a busy credential's next block is reserved in the
// background before the current one runs out, and the counts stay exact:
// after Close the vault holds exactly the uses handed out, and every
// decision's remaining count goes down by one per use.
func TestLeaserRefillsAhead(t *testing.T) {
	tv := newTestVault(t)
	tv.clock.Set(t0.Add(-12 * time.Hour)) // midday: the day's lease has hours to run
	const limit = 1_000_000
	c := tv.newKey(t, "busy", "1000000/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	l.MaxAge = time.Hour // the fake clock stands still; leases must not lapse
	l.MaxBlock = 1024    // reached within the uses below
	const uses = 3000
	prev := int64(limit)
	reservedAhead := false
	for i := 1; i <= uses; i++ {
		d := take(t, l, c)
		if !d.Allowed || d.Status.Remaining != prev-1 {
			t.Fatalf("use %d: %+v, want allowed with %d remaining", i, d, prev-1)
		}
		prev = d.Status.Remaining
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let a background refill commit
		}
		if counted := tv.used(t, c, quota.Month); counted > int64(i)+2*l.MaxBlock {
			t.Fatalf("use %d: the vault counts %d, more than two blocks ahead", i, counted)
		} else if counted > int64(i)+l.MaxBlock {
			// A lease alone never holds more than one block: more means
			// the next was reserved while the current one had uses left.
			reservedAhead = true
		}
	}
	if !reservedAhead {
		t.Error("the vault never counted more than one block ahead: no block was reserved before the last ran out")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != uses {
		t.Errorf("after Close the vault counts %d, want %d", got, uses)
	}
}

// TestLeaserNoRefillNearLimit: near a limit nothing is held ahead, so the
// last uses stay available to other processes.
func TestLeaserNoRefillNearLimit(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "tight", "300/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	l.MaxAge = time.Hour
	for i := 1; i <= 290; i++ {
		take(t, l, c)
	}
	time.Sleep(20 * time.Millisecond) // any refill would have committed by now
	if counted := tv.used(t, c, quota.Month); counted > 296 {
		t.Errorf("after 290 uses of 300 the vault counts %d: the leaser held too many ahead", counted)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
