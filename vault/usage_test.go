package vault_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// usageOf reads one counter through a View.
func usageOf(t *testing.T, tv *testVault, id, periodKey string) vault.UsageCount {
	t.Helper()
	var c vault.UsageCount
	tv.view(t, func(tx *vault.Tx) (err error) {
		c, err = tx.Usage(id, periodKey)
		return err
	})
	return c
}

// newKeyID creates a key named name and returns its id.
func newKeyID(t *testing.T, tv *testVault, name string) string {
	t.Helper()
	var id string
	tv.update(t, func(tx *vault.Tx) error {
		k := &vault.Key{Credential: vault.Credential{Name: name}}
		err := tx.CreateKey(k, newSecret(t, "km"))
		id = k.ID
		return err
	})
	return id
}

func TestUsageCounts(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	month, day := "2026-03", "2026-03-01"

	if got := usageOf(t, tv, id, month); got != (vault.UsageCount{}) {
		t.Fatalf("fresh counter = %+v, want zero", got)
	}
	steps := []struct {
		name  string
		do    func(tx *vault.Tx) error
		month vault.UsageCount
		day   vault.UsageCount
	}{
		{"add 3 to both", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{month, day}, 3) },
			vault.UsageCount{Used: 3}, vault.UsageCount{Used: 3}},
		{"add 1 to the month", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{month}, 1) },
			vault.UsageCount{Used: 4}, vault.UsageCount{Used: 3}},
		{"top up the month", func(tx *vault.Tx) error { return tx.AddExtra(id, month, 100) },
			vault.UsageCount{Used: 4, Extra: 100}, vault.UsageCount{Used: 3}},
		{"give back 2", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{month, day}, -2) },
			vault.UsageCount{Used: 2, Extra: 100}, vault.UsageCount{Used: 1}},
		{"give back more than counted floors at zero", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{month, day}, -5) },
			vault.UsageCount{Used: 0, Extra: 100}, vault.UsageCount{}},
		{"no keys is a no-op", func(tx *vault.Tx) error { return tx.AddUsage(id, nil, 7) },
			vault.UsageCount{Used: 0, Extra: 100}, vault.UsageCount{}},
	}
	for _, s := range steps {
		tv.update(t, s.do)
		if got := usageOf(t, tv, id, month); got != s.month {
			t.Errorf("%s: month = %+v, want %+v", s.name, got, s.month)
		}
		if got := usageOf(t, tv, id, day); got != s.day {
			t.Errorf("%s: day = %+v, want %+v", s.name, got, s.day)
		}
	}
}

// TestUsageGiveBackToNothing: giving uses back to a period with no counter
// (pruned, or never counted) creates none and changes nothing.
func TestUsageGiveBackToNothing(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03"}, -4) })
	if got := tv.generation(t); got != gen {
		t.Errorf("generation %d -> %d after giving back to a missing counter", gen, got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		h, err := tx.UsageHistory(id, "2026-01", "2026-12")
		if len(h) != 0 {
			t.Errorf("history after a give-back to nothing = %+v", h)
		}
		return err
	})
}

func TestUsageBadInput(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	tests := []struct {
		name string
		do   func(tx *vault.Tx) error
	}{
		{"empty period key", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{""}, 1) }},
		{"NUL in period key", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026\x0003"}, 1) }},
		{"overlong period key", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{strings.Repeat("9", 65)}, 1) }},
		{"empty id", func(tx *vault.Tx) error { return tx.AddUsage("", []string{"2026-03"}, 1) }},
		{"NUL in id", func(tx *vault.Tx) error { return tx.AddUsage(id+"\x00x", []string{"2026-03"}, 1) }},
		{"zero top-up", func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", 0) }},
		{"negative top-up", func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", -1) }},
		{"history ends of different kinds", func(tx *vault.Tx) error { _, err := tx.UsageHistory(id, "2026-03", "2026-03-31"); return err }},
		{"prune with empty key", func(tx *vault.Tx) error { return tx.PruneUsage(id, "") }},
		{"read with empty key", func(tx *vault.Tx) error { _, err := tx.Usage(id, ""); return err }},
		// The second key is bad: the first one's count must roll back too.
		{"one bad key of two", func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03", ""}, 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fileSum(t, tv.Path)
			if err := tv.Update(tc.do); err == nil {
				t.Fatal("no error")
			}
			if fileSum(t, tv.Path) != before {
				t.Error("a failed call changed the file")
			}
		})
	}
}

func TestUsageOverflow(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	tv.update(t, func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", math.MaxInt64-1) })
	tv.update(t, func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", 1) })
	err := tv.Update(func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", 1) })
	if !errors.Is(err, vault.ErrUsageOverflow) {
		t.Errorf("top-up past MaxInt64 = %v, want ErrUsageOverflow", err)
	}
	tv.update(t, func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03"}, math.MaxInt64) })
	err = tv.Update(func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03"}, 1) })
	if !errors.Is(err, vault.ErrUsageOverflow) {
		t.Errorf("use past MaxInt64 = %v, want ErrUsageOverflow", err)
	}
	if got := usageOf(t, tv, id, "2026-03"); got != (vault.UsageCount{Used: math.MaxInt64, Extra: math.MaxInt64}) {
		t.Errorf("counter after refused overflows = %+v", got)
	}
}

// TestUsageHistory reads a range of one kind of period: keys of other
// lengths (months, hours) and other credentials never leak into it.
func TestUsageHistory(t *testing.T) {
	tv := newTestVault(t)
	a, b := newKeyID(t, tv, "a"), newKeyID(t, tv, "b")
	tv.update(t, func(tx *vault.Tx) error {
		for i, day := range []string{"2026-02-28", "2026-03-01", "2026-03-02", "2026-03-31", "2026-04-01"} {
			if err := tx.AddUsage(a, []string{day, day[:7], day + "T12"}, int64(i+1)); err != nil {
				return err
			}
		}
		return tx.AddUsage(b, []string{"2026-03-01", "2026-03-15"}, 50)
	})
	var got []vault.PeriodCount
	tv.view(t, func(tx *vault.Tx) (err error) {
		got, err = tx.UsageHistory(a, "2026-03-01", "2026-03-31")
		return err
	})
	want := []vault.PeriodCount{
		{PeriodKey: "2026-03-01", UsageCount: vault.UsageCount{Used: 2}},
		{PeriodKey: "2026-03-02", UsageCount: vault.UsageCount{Used: 3}},
		{PeriodKey: "2026-03-31", UsageCount: vault.UsageCount{Used: 4}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("history of a in March = %+v, want %+v", got, want)
	}
	tv.view(t, func(tx *vault.Tx) (err error) {
		got, err = tx.UsageHistory(a, "2026-01", "2026-12")
		return err
	})
	want = []vault.PeriodCount{
		{PeriodKey: "2026-02", UsageCount: vault.UsageCount{Used: 1}},
		{PeriodKey: "2026-03", UsageCount: vault.UsageCount{Used: 2 + 3 + 4}},
		{PeriodKey: "2026-04", UsageCount: vault.UsageCount{Used: 5}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("months of a in 2026 = %+v, want %+v", got, want)
	}
}

func TestPruneUsage(t *testing.T) {
	tv := newTestVault(t)
	a, b := newKeyID(t, tv, "a"), newKeyID(t, tv, "b")
	seconds := []string{"2026-03-01T12:00:00", "2026-03-01T12:00:01", "2026-03-01T12:00:02", "2026-03-01T12:00:03"}
	tv.update(t, func(tx *vault.Tx) error {
		for _, id := range []string{a, b} {
			for _, s := range seconds {
				if err := tx.AddUsage(id, []string{s, s[:10], s[:7]}, 1); err != nil {
					return err
				}
			}
		}
		return nil
	})
	tv.update(t, func(tx *vault.Tx) error { return tx.PruneUsage(a, seconds[2]) })
	tv.view(t, func(tx *vault.Tx) error {
		got, err := tx.UsageHistory(a, seconds[0], seconds[3])
		if err != nil {
			return err
		}
		var keys []string
		for _, pc := range got {
			keys = append(keys, pc.PeriodKey)
		}
		if want := seconds[2:]; !slices.Equal(keys, want) {
			t.Errorf("seconds of a after pruning before %s = %q, want %q", seconds[2], keys, want)
		}
		for _, k := range []struct{ id, key string }{{a, "2026-03-01"}, {a, "2026-03"}, {b, seconds[0]}} {
			if c, err := tx.Usage(k.id, k.key); err != nil || c.Used == 0 {
				t.Errorf("counter %s of %s = %+v, %v after pruning a's seconds; want it kept", k.key, k.id, c, err)
			}
		}
		return nil
	})
}

// TestUsageDroppedWithCredential: removing a credential removes every
// counter of it, and its last use, and only of it.
func TestUsageDroppedWithCredential(t *testing.T) {
	tv := newTestVault(t)
	a, b := newKeyID(t, tv, "a"), newKeyID(t, tv, "b")
	keys := []string{"2026-03", "2026-03-01", "2026-03-01T12:00:00"}
	tv.update(t, func(tx *vault.Tx) error {
		if err := tx.AddUsage(a, keys, 5); err != nil {
			return err
		}
		if err := tx.AddExtra(a, "2026-03", 10); err != nil {
			return err
		}
		if err := tx.AddUsage(b, keys, 7); err != nil {
			return err
		}
		// Last use is kept with usage too.
		if err := tx.TouchKey(a); err != nil {
			return err
		}
		return tx.TouchKey(b)
	})
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteKeys("a"); return err })
	for _, k := range keys {
		if got := usageOf(t, tv, a, k); got != (vault.UsageCount{}) {
			t.Errorf("counter %s of removed a = %+v", k, got)
		}
		if got := usageOf(t, tv, b, k); got.Used != 7 {
			t.Errorf("counter %s of b = %+v, want 7 used", k, got)
		}
	}
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A store key is the record's 2-byte shard, then its key: id, 0x00, ...
	ofB := 0
	db.View(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte("usage")).ForEach(func(k, _ []byte) error {
			if len(k) < 2 {
				t.Errorf("usage store key %q has no shard", k)
				return nil
			}
			if bytes.HasPrefix(k[2:], []byte(a+"\x00")) {
				t.Errorf("usage key %q of removed a is still in the file", k)
			}
			if bytes.HasPrefix(k[2:], []byte(b+"\x00")) {
				ofB++
			}
			return nil
		})
	})
	// b's three counters and its last use: the search above finds keys.
	if ofB != len(keys)+1 {
		t.Errorf("found %d usage records of b in the file, want %d", ofB, len(keys)+1)
	}
}

// TestUsageSealed: counters are sealed like every record, and covered by the
// hash tree under the head, so one cannot be read, altered or moved to
// another period.
func TestUsageSealed(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	tv.update(t, func(tx *vault.Tx) error {
		if err := tx.AddUsage(id, []string{"2026-03"}, 12345); err != nil {
			return err
		}
		return tx.AddUsage(id, []string{"2026-04"}, 1)
	})
	var keys, values [][]byte
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte("usage")).ForEach(func(k, v []byte) error {
			keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
			return nil
		})
	})
	db.Close()
	if len(values) != 2 {
		t.Fatalf("usage bucket holds %d values, want 2", len(values))
	}
	// One credential's counters share a shard, so they sort by period key.
	if !bytes.HasSuffix(keys[0], []byte("2026-03")) || !bytes.HasSuffix(keys[1], []byte("2026-04")) {
		t.Fatalf("usage store keys %q, want March's then April's", keys)
	}
	for _, v := range values {
		if bytes.Contains(v, []byte("12345")) || bytes.Contains(v, []byte("used")) {
			t.Errorf("usage value is not sealed: %q", v)
		}
	}
	// Put April's sealed count under March's key: it must not be read,
	// counted on or listed.
	tv.boltUpdate(t, func(btx *bolt.Tx) error { return btx.Bucket([]byte("usage")).Put(keys[0], values[1]) })
	err = tv.View(func(tx *vault.Tx) error { _, err := tx.Usage(id, "2026-03"); return err })
	if !detected(err) {
		t.Errorf("moved counter read = %v, want ErrTampered or ErrCorrupt", err)
	}
	if b := tamperedBucket(err); b != "" && b != "usage" {
		t.Errorf("tampering reported in bucket %s, want usage", b)
	}
	before := fileSum(t, tv.Path)
	err = tv.Update(func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03"}, 1) })
	if !detected(err) {
		t.Errorf("adding to a moved counter = %v, want ErrTampered or ErrCorrupt", err)
	}
	if fileSum(t, tv.Path) != before {
		t.Error("a refused AddUsage changed the file")
	}
	err = tv.View(func(tx *vault.Tx) error { _, err := tx.UsageHistory(id, "2026-01", "2026-12"); return err })
	if !detected(err) {
		t.Errorf("history over a moved counter = %v, want ErrTampered or ErrCorrupt", err)
	}
}

// TestUsageRollsBack: counts written in a transaction that fails are not
// kept, which is what makes a use exactly as durable as its transaction.
func TestUsageRollsBack(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	boom := errors.New("minting failed")
	err := tv.Update(func(tx *vault.Tx) error {
		if err := tx.AddUsage(id, []string{"2026-03"}, 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if got := usageOf(t, tv, id, "2026-03"); got != (vault.UsageCount{}) {
		t.Errorf("counter after a rolled-back use = %+v", got)
	}
}

// TestUsageKeepsGeneration: counting changes no record a server holds in
// memory, so it does not advance the generation that tells it to reload.
func TestUsageKeepsGeneration(t *testing.T) {
	tv := newTestVault(t)
	id := newKeyID(t, tv, "k")
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03", "2026-03-01T12:00:00"}, 5) })
	tv.update(t, func(tx *vault.Tx) error { return tx.AddExtra(id, "2026-03", 5) })
	tv.update(t, func(tx *vault.Tx) error { return tx.AddUsage(id, []string{"2026-03"}, -2) })
	tv.update(t, func(tx *vault.Tx) error { return tx.PruneUsage(id, "2026-03-01T12:00:01") })
	if got := tv.generation(t); got != gen {
		t.Errorf("generation %d -> %d after counting only", gen, got)
	}
	if got := usageOf(t, tv, id, "2026-03"); got != (vault.UsageCount{Used: 3, Extra: 5}) {
		t.Errorf("counter = %+v, want the counts committed all the same", got)
	}
	if got := usageOf(t, tv, id, "2026-03-01T12:00:00"); got != (vault.UsageCount{}) {
		t.Errorf("pruned counter = %+v", got)
	}
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteKeys("k"); return err })
	if got := tv.generation(t); got != gen+1 {
		t.Errorf("generation %d -> %d after removing a key, want +1", gen, got)
	}
}

func TestCredentialByID(t *testing.T) {
	tv := newTestVault(t)
	keyID := newKeyID(t, tv, "same")
	var clientID string
	tv.update(t, func(tx *vault.Tx) error {
		c := &vault.Client{Credential: vault.Credential{Name: "same", Limits: []vault.Limit{{Count: 5, Period: "day"}}}}
		err := tx.CreateClient(c, newSecret(t, "kmcs"))
		clientID = c.ID
		return err
	})
	tv.view(t, func(tx *vault.Tx) error {
		for _, tc := range []struct {
			id     string
			limits int
		}{{keyID, 0}, {clientID, 1}} {
			c, err := tx.Credential(tc.id)
			if err != nil {
				t.Errorf("Credential(%s): %v", tc.id, err)
				continue
			}
			if c.ID != tc.id || c.Name != "same" || len(c.Limits) != tc.limits {
				t.Errorf("Credential(%s) = %+v", tc.id, c)
			}
		}
		for _, ref := range []string{"same", "key_0000000000000000", "cl_0000000000000000000000", "", "nonsense"} {
			if _, err := tx.Credential(ref); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("Credential(%q) = %v, want ErrNotFound", ref, err)
			}
		}
		return nil
	})
}
