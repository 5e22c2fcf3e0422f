package quota_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// take calls l.Take and fails the test on error.
func take(t testing.TB, l *quota.Leaser, c *vault.Credential) quota.Decision {
	t.Helper()
	d, err := l.Take(c)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return d
}

// TestLeaserExact: one leaser alone reports exactly what Consume would,
// use by use, down to the last one, and counts near the limit one by one.
func TestLeaserExact(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "100/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	for i := int64(1); i <= 100; i++ {
		d := take(t, l, c)
		if !d.Allowed || !d.Limited || d.Status.Remaining != 100-i || d.Status.Used != i || d.Status.Limit != 100 {
			t.Fatalf("use %d: %+v, want allowed with %d remaining", i, d, 100-i)
		}
		// Reserved ahead, never more than the limit, and never more than
		// a block past what was handed out.
		counted := tv.used(t, c, quota.Month)
		if counted < i || counted > 100 || counted-i > quota.DefaultMaxBlock {
			t.Fatalf("use %d: the vault counts %d", i, counted)
		}
		if remaining := 100 - i; remaining < 4 && counted != i {
			t.Errorf("use %d: with %d remaining the vault counts %d; near the limit blocks should be single uses", i, remaining, counted)
		}
	}
	d := take(t, l, c)
	if d.Allowed || d.Status.Period != quota.Month || d.Status.Remaining != 0 {
		t.Errorf("use 101: %+v, want denied by the month", d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 100 {
		t.Errorf("after Close the vault counts %d, want 100", got)
	}
}

// TestLeaserBlocksGrow: a busy credential is served from memory, with one
// transaction per growing block rather than one per use.
func TestLeaserBlocksGrow(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "100000/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	var counted []int64
	for range 64 {
		take(t, l, c)
		counted = append(counted, tv.used(t, c, quota.Month))
	}
	reservations := 1
	for i := 1; i < len(counted); i++ {
		if counted[i] != counted[i-1] {
			reservations++
		}
	}
	// Blocks of 1, 2, 4, 8, 16, 32, 64: 7 transactions for 64 uses.
	if reservations > 8 {
		t.Errorf("%d reservations for 64 uses, want blocks that grow to %d: counts %v", reservations, quota.DefaultMaxBlock, counted)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 64 {
		t.Errorf("after Close the vault counts %d, want 64", got)
	}
}

// TestLeaserConcurrent is the exactness test: goroutines taking from one
// leaser while other vault handles (as other processes would) call Consume,
// all on one credential with a limit of 100, grant exactly 100 uses.
func TestLeaserConcurrent(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "100/month", "1000/day")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	var granted, leased atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 4 {
		wg.Go(func() {
			for {
				d, err := l.Take(c)
				if err != nil {
					errs <- err
					return
				}
				if !d.Allowed {
					return
				}
				granted.Add(1)
				leased.Add(1)
				// Pace the leaser, which needs the file once per block,
				// so the handles that need it once per use get a turn:
				// bbolt retries a taken lock only every 50ms.
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	for range 4 {
		other := tv.open(t)
		wg.Go(func() {
			for {
				var d quota.Decision
				err := other.Update(func(tx *vault.Tx) (err error) {
					d, err = quota.Consume(tx, c, tv.clock.Now())
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if !d.Allowed {
					return
				}
				granted.Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := granted.Load(); got != 100 {
		t.Errorf("granted %d uses (%d from the leaser), want exactly 100", got, leased.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 100 {
		t.Errorf("the vault counts %d, want 100", got)
	}
	t.Logf("%d of 100 uses came from the leaser", leased.Load())
}

// TestLeaserCrash abandons a leaser holding a block, as a killed server
// does: the uses it reserved and never granted are lost to the period, but
// nothing lets the credential past its limit.
func TestLeaserCrash(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "100/month")
	crashed := quota.NewLeaser(tv.open(t), tv.clock.Now)
	granted := int64(0)
	for range 20 {
		if take(t, crashed, c).Allowed {
			granted++
		}
	}
	outstanding := tv.used(t, c, quota.Month) - granted
	if outstanding <= 0 || outstanding > quota.DefaultMaxBlock {
		t.Fatalf("the crashed leaser holds %d unused uses; the test wants it to hold some, at most a block", outstanding)
	}
	// crashed is never closed. Another server and a CLI carry on.
	next := quota.NewLeaser(tv.open(t), tv.clock.Now)
	for i := 0; ; i++ {
		var d quota.Decision
		if i%2 == 0 {
			d = take(t, next, c)
		} else {
			d = tv.consume(t, c)
		}
		if !d.Allowed {
			if d2 := tv.consume(t, c); d2.Allowed {
				t.Fatal("the CLI was granted a use after the leaser was denied")
			}
			break
		}
		granted++
	}
	if granted > 100 {
		t.Fatalf("granted %d uses, over the limit of 100", granted)
	}
	if lost := 100 - granted; lost != outstanding {
		t.Errorf("%d uses lost, want exactly the crashed leaser's %d", lost, outstanding)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 100 {
		t.Errorf("the vault counts %d, want 100", got)
	}
}

// TestLeaserLapse: a lease lapses after MaxAge and at the end of its
// shortest period; its unused uses go back at the next reservation or at
// Flush, so the counts of an idle credential become exact.
func TestLeaserLapse(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "1000/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	for range 10 { // blocks of 1, 2, 4, 8: 15 reserved, 10 handed out
		take(t, l, c)
	}
	if got := tv.used(t, c, quota.Month); got != 15 {
		t.Fatalf("the vault counts %d after 10 uses, want 15 (blocks 1+2+4+8)", got)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 15 {
		t.Errorf("Flush gave back a lease in force: the vault counts %d, want 15", got)
	}
	tv.clock.Advance(quota.DefaultMaxAge)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 10 {
		t.Errorf("after the lease lapsed and Flush, the vault counts %d, want 10", got)
	}
	d := take(t, l, c)
	if !d.Allowed || d.Status.Remaining != 1000-11 {
		t.Errorf("use 11: %+v, want 989 remaining", d)
	}
	// Lapse without Flush: the next Take gives back and reserves at once.
	tv.clock.Advance(quota.DefaultMaxAge)
	reserved := tv.used(t, c, quota.Month)
	d = take(t, l, c)
	if got := tv.used(t, c, quota.Month); !d.Allowed || got > reserved || got < 12 {
		t.Errorf("use 12 after a lapse: %+v, vault counts %d (was %d)", d, got, reserved)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 12 {
		t.Errorf("after Close the vault counts %d, want 12", got)
	}
}

// TestLeaserPeriods: a denial lasts until the blocking limit resets; a
// block never outlives the period it was counted in.
func TestLeaserPeriods(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "10/second", "25/day")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	count := func() (n int) {
		for take(t, l, c).Allowed {
			n++
		}
		return n
	}
	// 23:58:00: the second allows 10, then the 11th is denied by it.
	if n := count(); n != 10 {
		t.Errorf("first second: %d granted, want 10", n)
	}
	tv.clock.Advance(500 * time.Millisecond)
	if d := take(t, l, c); d.Allowed || d.Status.Period != quota.Second {
		t.Errorf("same second: %+v, want denied by the second", d)
	}
	tv.clock.Advance(500 * time.Millisecond)
	if n := count(); n != 10 {
		t.Errorf("second second: %d granted, want 10", n)
	}
	tv.clock.Advance(time.Second)
	if n := count(); n != 5 {
		t.Errorf("third second: %d granted, want the day's last 5", n)
	}
	if d := take(t, l, c); d.Allowed || d.Status.Period != quota.Day {
		t.Errorf("after 25: %+v, want denied by the day", d)
	}
	tv.clock.Advance(2 * time.Minute) // a new day
	if n := count(); n != 10 {
		t.Errorf("new day: %d granted, want 10", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err := tv.View(func(tx *vault.Tx) error {
		h, err := quota.History(tx, c.ID, t0, tv.clock.Now())
		if err == nil && (len(h) != 2 || h[0].Used != 25 || h[1].Used != 10) {
			t.Errorf("history = %+v, want 25 then 10", h)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLeaserSeesChanges: a limit lifted, lowered or topped up by another
// process applies within MaxAge.
func TestLeaserSeesChanges(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "3/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	for range 3 {
		take(t, l, c)
	}
	if take(t, l, c).Allowed {
		t.Fatal("4th use of 3/month allowed")
	}
	other := tv.open(t)
	if err := other.Update(func(tx *vault.Tx) error {
		_, err := quota.TopUp(tx, c, 2, tv.clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tv.clock.Advance(quota.DefaultMaxAge)
	for i := range 2 {
		if d := take(t, l, c); !d.Allowed || d.Status.Limit != 5 {
			t.Errorf("use %d after a top-up of 2: %+v", 4+i, d)
		}
	}
	if take(t, l, c).Allowed {
		t.Error("6th use allowed after a top-up of 2")
	}
	// Lift the limit altogether.
	if err := other.Update(func(tx *vault.Tx) error {
		k, err := tx.Key(c.ID)
		if err != nil {
			return err
		}
		k.Limits = nil
		return tx.SaveKey(k)
	}); err != nil {
		t.Fatal(err)
	}
	tv.clock.Advance(quota.DefaultMaxAge)
	if d := take(t, l, c); !d.Allowed || d.Limited {
		t.Errorf("after lifting the limit: %+v, want allowed and not limited", d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tv.used(t, c, quota.Month); got != 6 {
		t.Errorf("the vault counts %d, want 6", got)
	}
}

func TestLeaserClosed(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	for range 5 {
		if d := take(t, l, c); !d.Allowed || d.Limited {
			t.Fatalf("use of an unlimited key: %+v", d)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Take(c); !errors.Is(err, quota.ErrLeaserClosed) {
		t.Errorf("Take after Close = %v, want ErrLeaserClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if got := tv.used(t, c, quota.Month); got != 5 {
		t.Errorf("the vault counts %d uses of the unlimited key, want 5", got)
	}
}

func TestLeaserRemovedCredential(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "100/day")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	for range 4 {
		take(t, l, c)
	}
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.DeleteKeys(c.ID); return err }); err != nil {
		t.Fatal(err)
	}
	tv.clock.Advance(quota.DefaultMaxAge)
	if _, err := l.Take(c); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("Take of a removed key = %v, want ErrNotFound", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after a removed key = %v", err)
	}
	if got := tv.used(t, c, quota.Day); got != 0 {
		t.Errorf("the removed key has %d uses counted", got)
	}
}

// TestLeaserBusyVault: when the vault cannot be written, Take fails and
// grants nothing, and the lease is as it was for the next try.
func TestLeaserBusyVault(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "2/day")
	impatient, err := vault.Open(tv.path, vault.Options{Identities: []age.Identity{tv.id}, Now: tv.clock.Now, LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := quota.NewLeaser(impatient, tv.clock.Now)
	take(t, l, c)

	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- tv.open(t).Update(func(*vault.Tx) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	if d, err := l.Take(c); !errors.Is(err, vault.ErrBusy) || d.Allowed {
		t.Errorf("Take while the vault is locked = %+v, %v; want ErrBusy", d, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := take(t, l, c); !d.Allowed || d.Status.Remaining != 0 {
		t.Errorf("use 2 once the lock is gone: %+v", d)
	}
	if take(t, l, c).Allowed {
		t.Error("use 3 of 2/day allowed")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaserFlushWhileTaking: Flush and lapsing leases, while goroutines
// take uses of several credentials, never lose or invent a use: after
// Close the vault counts exactly what was granted, within every limit.
func TestLeaserFlushWhileTaking(t *testing.T) {
	tv := newTestVault(t)
	creds := []*vault.Credential{
		tv.newKey(t, "a", "50/month"),
		tv.newKey(t, "b", "1000/month"),
		tv.newKey(t, "c"),
	}
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	granted := make([]atomic.Int64, len(creds))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range creds {
		for range 3 {
			wg.Go(func() {
				for n := 0; n < 100; n++ {
					d, err := l.Take(c)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						granted[i].Add(1)
					}
				}
			})
		}
	}
	var flusher sync.WaitGroup
	flusher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(time.Millisecond)
			tv.clock.Advance(300 * time.Millisecond)
			if err := l.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	flusher.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The clock may have crossed into a new month on the way: count the
	// uses over both.
	for i, c := range creds {
		var total int64
		err := tv.View(func(tx *vault.Tx) error {
			months, err := tx.UsageHistory(c.ID, "2026-11", "2026-12")
			for _, m := range months {
				total += m.Used
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := granted[i].Load(); total != got {
			t.Errorf("%s: granted %d, the vault counts %d", c.Name, got, total)
		}
	}
	if got := granted[0].Load(); got > 100 {
		t.Errorf("a (50/month) was granted %d over at most two months", got)
	}
}

// TestLeaserObserve: what Observe is told adds up to what the vault
// counts: after Close, uses reserved minus uses given back (on demand, in
// the background, at Flush and at Close) is what was handed out.
func TestLeaserObserve(t *testing.T) {
	tv := newTestVault(t)
	busy := tv.newKey(t, "busy", "100000/month")
	idle := tv.newKey(t, "idle", "50/month")
	l := quota.NewLeaser(tv.Vault, tv.clock.Now)
	var mu sync.Mutex
	var reserved, givenBack, refills int64
	l.Observe = func(e quota.LeaseEvent) {
		mu.Lock()
		defer mu.Unlock()
		reserved += e.Reserved
		givenBack += e.GivenBack
		if e.Refill {
			refills++
		}
	}
	held := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return reserved - givenBack
	}
	for i := range 3000 {
		take(t, l, busy)
		if i%100 == 0 {
			take(t, l, idle)
		}
		if i%1000 == 999 {
			tv.clock.Advance(2 * quota.DefaultMaxAge) // leases lapse
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil { // waits for refills in flight
		t.Fatal(err)
	}
	counted := tv.used(t, busy, quota.Month) + tv.used(t, idle, quota.Month)
	if got, want := held(), int64(3000+30); got != want || counted != want {
		t.Errorf("after Close: reserved minus given back = %d and the vault counts %d; want the %d uses handed out", got, counted, want)
	}
	t.Logf("reserved %d, gave back %d, %d refills in the background", reserved, givenBack, refills)
}
