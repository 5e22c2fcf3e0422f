package quota_test

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// t0 is where every test clock starts: late on the last day of a month, so
// that tests can cross a second, a day and a month within minutes.
var t0 = time.Date(2026, 11, 30, 23, 58, 0, 0, time.UTC)

// clock is an injectable clock that moves only when a test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testVault is a vault in t.TempDir() and what it takes to open it again,
// as another process would.
type testVault struct {
	*vault.Vault
	path  string
	id    age.Identity
	clock *clock
}

func newTestVault(t testing.TB) *testVault {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	path := filepath.Join(t.TempDir(), "vault.db")
	err = vault.Create(path, vault.CreateOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Settings:   vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    vault.Options{Now: clk.Now},
	})
	if err != nil {
		t.Fatal(err)
	}
	tv := &testVault{path: path, id: id, clock: clk}
	tv.Vault = tv.open(t)
	return tv
}

// open opens the vault again: a handle of its own, as another process has.
func (tv *testVault) open(t testing.TB) *vault.Vault {
	t.Helper()
	v, err := vault.Open(tv.path, vault.Options{
		Identities:  []age.Identity{tv.id},
		Now:         tv.clock.Now,
		LockTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newKey creates an API key with the given limits and returns it.
func (tv *testVault) newKey(t testing.TB, name string, limits ...string) *vault.Credential {
	t.Helper()
	parsed, err := quota.ParseLimits(limits)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := apikey.Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	k := &vault.Key{Credential: vault.Credential{Name: name, Limits: quota.StoredLimits(parsed)}}
	if err := tv.Update(func(tx *vault.Tx) error { return tx.CreateKey(k, secret) }); err != nil {
		t.Fatal(err)
	}
	return &k.Credential
}

// consume runs quota.Consume in a transaction of its own at the clock's time.
func (tv *testVault) consume(t testing.TB, c *vault.Credential) quota.Decision {
	t.Helper()
	var d quota.Decision
	err := tv.Update(func(tx *vault.Tx) (err error) {
		d, err = quota.Consume(tx, c, tv.clock.Now())
		return err
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	return d
}

// used reads the count of c in the period of length p at the clock's time.
func (tv *testVault) used(t testing.TB, c *vault.Credential, p quota.Period) int64 {
	t.Helper()
	var n vault.UsageCount
	err := tv.View(func(tx *vault.Tx) (err error) {
		n, err = tx.Usage(c.ID, p.Key(tv.clock.Now()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.Used
}

// step is one use asked for in TestConsume, after moving the clock.
type step struct {
	advance   time.Duration
	topUp     int64 // top up before asking, when > 0
	allowed   bool
	period    quota.Period // of the status reported
	remaining int64
}

func TestConsume(t *testing.T) {
	ok := func(p quota.Period, remaining int64) step {
		return step{allowed: true, period: p, remaining: remaining}
	}
	no := func(p quota.Period) step { return step{period: p} }
	tests := []struct {
		name   string
		limits []string
		steps  []step
	}{
		{
			name:   "one limit runs out",
			limits: []string{"3/day"},
			steps:  []step{ok(quota.Day, 2), ok(quota.Day, 1), ok(quota.Day, 0), no(quota.Day), no(quota.Day)},
		},
		{
			name:   "a new period starts afresh",
			limits: []string{"2/minute"},
			steps: []step{ok(quota.Minute, 1), ok(quota.Minute, 0), no(quota.Minute),
				{advance: time.Minute, allowed: true, period: quota.Minute, remaining: 1}},
		},
		{
			name:   "the tightest limit is reported and the longest blocks",
			limits: []string{"2/second", "3/minute"},
			steps: []step{ok(quota.Second, 1), ok(quota.Second, 0), no(quota.Second),
				{advance: time.Second, allowed: true, period: quota.Minute, remaining: 0},
				no(quota.Minute),
				{advance: time.Second, period: quota.Minute}},
		},
		{
			name:   "a top-up adds to the current period only",
			limits: []string{"1/second", "2/day"},
			// With both at 0 remaining, the second is reported: it
			// resets first. A denial names the day: it resets last.
			steps: []step{ok(quota.Second, 0), {advance: time.Second, allowed: true, period: quota.Second, remaining: 0},
				{advance: time.Second, period: quota.Day},
				{topUp: 2, allowed: true, period: quota.Second, remaining: 0},
				{advance: time.Second, allowed: true, period: quota.Second, remaining: 0},
				{advance: time.Second, period: quota.Day},
				// Past midnight the top-up has lapsed with its day.
				{advance: 2 * time.Minute, allowed: true, period: quota.Second, remaining: 0},
				{advance: time.Second, allowed: true, period: quota.Second, remaining: 0},
				{advance: time.Second, period: quota.Day}},
		},
		{
			name:   "no limit: always allowed, nothing to report",
			limits: nil,
			steps:  []step{{allowed: true}, {allowed: true}, {advance: time.Hour, allowed: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tv := newTestVault(t)
			c := tv.newKey(t, "k", tc.limits...)
			for i, s := range tc.steps {
				tv.clock.Advance(s.advance)
				if s.topUp > 0 {
					if err := tv.Update(func(tx *vault.Tx) error {
						_, err := quota.TopUp(tx, c, s.topUp, tv.clock.Now())
						return err
					}); err != nil {
						t.Fatalf("step %d: TopUp: %v", i, err)
					}
				}
				monthBefore := tv.used(t, c, quota.Month)
				d := tv.consume(t, c)
				if d.Allowed != s.allowed {
					t.Fatalf("step %d: allowed = %v, want %v (%+v)", i, d.Allowed, s.allowed, d)
				}
				if d.Limited != (len(tc.limits) > 0) {
					t.Errorf("step %d: limited = %v with limits %q", i, d.Limited, tc.limits)
				}
				if d.Limited && (d.Status.Period != s.period || d.Status.Remaining != s.remaining) {
					t.Errorf("step %d: status %s remaining %d, want %s remaining %d", i, d.Status.Period, d.Status.Remaining, s.period, s.remaining)
				}
				if !d.Allowed && !d.Status.ResetsAt.After(tv.clock.Now()) {
					t.Errorf("step %d: denied, resets at %s, not after now", i, d.Status.ResetsAt)
				}
				wantMonth := monthBefore
				if d.Allowed {
					wantMonth++
				}
				if got := tv.used(t, c, quota.Month); got != wantMonth {
					t.Errorf("step %d: month count %d, want %d (a denied use must not count)", i, got, wantMonth)
				}
			}
		})
	}
}

// TestConsumeRollsBack: a use counted in a transaction that then fails (the
// token could not be minted) is not counted.
func TestConsumeRollsBack(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "1/day")
	boom := errors.New("mint failed")
	err := tv.Update(func(tx *vault.Tx) error {
		if d, err := quota.Consume(tx, c, tv.clock.Now()); err != nil || !d.Allowed {
			t.Fatalf("Consume = %+v, %v", d, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if d := tv.consume(t, c); !d.Allowed {
		t.Error("the rolled-back use was counted")
	}
}

func TestConsumeBadStoredLimits(t *testing.T) {
	tests := []struct {
		limits []vault.Limit
		want   error
	}{
		{[]vault.Limit{{Count: 0, Period: "month"}}, quota.ErrInvalidLimit},
		{[]vault.Limit{{Count: -5, Period: "day"}}, quota.ErrInvalidLimit},
		{[]vault.Limit{{Count: 10, Period: "fortnight"}}, quota.ErrInvalidPeriod},
		{[]vault.Limit{{Count: 10, Period: "day"}, {Count: 20, Period: "d"}}, quota.ErrDuplicatePeriod},
	}
	tv := newTestVault(t)
	for _, tc := range tests {
		c := &vault.Credential{ID: "key_0123456789abcdef", Name: "damaged", Limits: tc.limits}
		err := tv.Update(func(tx *vault.Tx) error {
			_, err := quota.Consume(tx, c, tv.clock.Now())
			return err
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("Consume with stored limits %+v = %v, want %v", tc.limits, err, tc.want)
		}
	}
}

func TestTopUpWithoutLimit(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "free")
	err := tv.Update(func(tx *vault.Tx) error {
		_, err := quota.TopUp(tx, c, 100, tv.clock.Now())
		return err
	})
	if !errors.Is(err, quota.ErrNoLimit) {
		t.Errorf("TopUp without a limit = %v, want ErrNoLimit", err)
	}
}

func TestTopUpAudited(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "erp", "10/second", "8000/month")
	var st quota.Status
	err := tv.Update(func(tx *vault.Tx) (err error) {
		st, err = quota.TopUp(tx, c, 8000, tv.clock.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Period != quota.Month || st.Limit != 16000 || st.Extra != 8000 || st.Remaining != 16000 {
		t.Errorf("status after top-up = %+v, want month limit 16000", st)
	}
	err = tv.View(func(tx *vault.Tx) error {
		log, err := tx.AuditLog()
		if err != nil {
			return err
		}
		last := log[len(log)-1]
		if last.Action != "usage.top-up" || last.ID != c.ID {
			t.Errorf("last audit entry = %+v, want a usage.top-up of %s", last, c.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPruning: counters of short periods are dropped as new periods start,
// so a busy credential keeps a handful of counters, not one per second.
func TestPruning(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k", "5/second", "100/minute")
	for range 30 {
		tv.consume(t, c)
		tv.clock.Advance(5 * time.Second)
	}
	now := tv.clock.Now()
	err := tv.View(func(tx *vault.Tx) error {
		seconds, err := tx.UsageHistory(c.ID, quota.Second.Key(now.Add(-time.Hour)), quota.Second.Key(now))
		if err != nil {
			return err
		}
		if len(seconds) != 1 {
			t.Errorf("%d second counters kept after 30 seconds of use, want 1: %+v", len(seconds), seconds)
		}
		minutes, err := tx.UsageHistory(c.ID, quota.Minute.Key(now.Add(-time.Hour)), quota.Minute.Key(now))
		if err != nil {
			return err
		}
		if len(minutes) != 1 {
			t.Errorf("%d minute counters kept, want 1: %+v", len(minutes), minutes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// t0 is two minutes before a new month: the month and the day changed
	// on the way, and their past counts are kept for history.
	err = tv.View(func(tx *vault.Tx) error {
		days, err := quota.History(tx, c.ID, t0, now)
		if err != nil {
			return err
		}
		if len(days) != 2 || days[0].Used+days[1].Used != 30 {
			t.Errorf("history = %+v, want 30 uses over 2 days", days)
		}
		months, err := tx.UsageHistory(c.ID, "2026-01", "2026-12")
		if err != nil {
			return err
		}
		if len(months) != 2 {
			t.Errorf("month counters = %+v, want November and December", months)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHistoryKeepsAboutAYear: day counts older than about 400 days are
// dropped when a new day is counted.
func TestHistoryKeepsAboutAYear(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k")
	start := tv.clock.Now()
	tv.consume(t, c)
	tv.clock.Advance(399 * 24 * time.Hour)
	tv.consume(t, c)
	count := func() int {
		var n int
		err := tv.View(func(tx *vault.Tx) error {
			h, err := tx.UsageHistory(c.ID, quota.Day.Key(start), quota.Day.Key(tv.clock.Now()))
			n = len(h)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("after 399 days %d days of history, want 2", n)
	}
	tv.clock.Advance(2 * 24 * time.Hour)
	tv.consume(t, c)
	if n := count(); n != 2 {
		t.Errorf("after 401 days %d days of history, want the first dropped (2 left)", n)
	}
}

func TestHistory(t *testing.T) {
	tv := newTestVault(t)
	c := tv.newKey(t, "k")
	for _, d := range []int{0, 0, 0, 2, 2} {
		tv.clock.Set(t0.AddDate(0, 0, d))
		tv.consume(t, c)
	}
	var got []quota.DayUse
	err := tv.View(func(tx *vault.Tx) (err error) {
		got, err = quota.History(tx, c.ID, t0.AddDate(0, 0, -1), t0.AddDate(0, 0, 3))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var used []int64
	for i, d := range got {
		used = append(used, d.Used)
		if want := quota.Day.Start(t0).AddDate(0, 0, i-1); !d.Day.Equal(want) {
			t.Errorf("day %d is %s, want %s", i, d.Day, want)
		}
	}
	if want := []int64{0, 3, 0, 2, 0}; !slices.Equal(used, want) {
		t.Errorf("history = %v, want %v", used, want)
	}
}

func TestStoredLimitsRoundTrip(t *testing.T) {
	limits, err := quota.ParseLimits([]string{"8000/month", "10/s"})
	if err != nil {
		t.Fatal(err)
	}
	stored := quota.StoredLimits(limits)
	want := []vault.Limit{{Count: 10, Period: "second"}, {Count: 8000, Period: "month"}}
	if !slices.Equal(stored, want) {
		t.Errorf("StoredLimits = %+v, want %+v", stored, want)
	}
	back, err := quota.LimitsOf(&vault.Credential{Limits: stored})
	if err != nil || !slices.Equal(back, limits) {
		t.Errorf("LimitsOf(StoredLimits) = %v, %v; want %v", back, err, limits)
	}
	if quota.StoredLimits(nil) != nil {
		t.Error("StoredLimits(nil) is not nil")
	}
}

func TestParsePeriodKey(t *testing.T) {
	tests := []struct {
		in     string
		period quota.Period
		start  time.Time
	}{
		{"2026-11", quota.Month, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{" 2026-11-22 ", quota.Day, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{"2026-11-22T21", quota.Hour, time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC)},
		{"2026-11-22T21:05", quota.Minute, time.Date(2026, 11, 22, 21, 5, 0, 0, time.UTC)},
		{"2026-11-22T21:05:07", quota.Second, time.Date(2026, 11, 22, 21, 5, 7, 0, time.UTC)},
		{"2024-02-29", quota.Day, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		p, start, err := quota.ParsePeriodKey(tc.in)
		if err != nil || p != tc.period || !start.Equal(tc.start) {
			t.Errorf("ParsePeriodKey(%q) = %s, %s, %v; want %s, %s", tc.in, p, start, err, tc.period, tc.start)
		}
	}
	for _, bad := range []string{"", "2026", "2026-13", "2026-11-31", "2025-02-29", "26-11", "2026/11", "2026-11-22 21", "2026-1", "november", "2026-11-22T24"} {
		if _, _, err := quota.ParsePeriodKey(bad); !errors.Is(err, quota.ErrInvalidPeriodKey) {
			t.Errorf("ParsePeriodKey(%q) = %v, want ErrInvalidPeriodKey", bad, err)
		}
	}
}
