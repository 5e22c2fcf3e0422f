package vault

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"
)

// Usage counters.
//
// The usage bucket holds one sealed [UsageCount] per credential and period,
// under the credential's id and a period key such as "2026-11" (a month) or
// "2026-11-22" (a day). Period keys are opaque here; package quota makes
// them. Keys of one length are kept together and in order, so that the
// counters of one kind of period (every day, say) can be read as a range
// ([Tx.UsageHistory]) and the stale ones dropped in one seek
// ([Tx.PruneUsage]). The layout of a bucket key is
//
//	credential id, 0x00, len(period key) as one byte, period key
//
// and the credential's last use is at its id, 0x00, 0x00. All of one
// credential's usage is in one shard (tree.go), so a range of it is checked
// by re-hashing that shard alone. Removing a credential removes all of it.
//
// Writing a counter does not advance the vault's generation ([Tx.Generation]):
// the generation tells a process that holds records in memory, such as
// keymint serve, that they changed, and counters are never held that way;
// they are read in the transaction that counts. A server reserving uses
// many times a second would otherwise reload its records as often.

// maxPeriodKey bounds a period key: quota's longest is 19 bytes.
const maxPeriodKey = 64

// UsageCount is what is counted for one credential in one period.
type UsageCount struct {
	// Used is the uses counted in the period, including any reserved ahead
	// of time by a lease and not yet given back.
	Used int64 `json:"used"`
	// Extra is the uses added to the period's limit by top-ups.
	Extra int64 `json:"extra,omitempty"`
}

// PeriodCount is a [UsageCount] with the period key it was counted under.
type PeriodCount struct {
	PeriodKey string `json:"period"`
	UsageCount
}

// lastUsedKey is the usage bucket's key for a credential's last use. A
// period key is never empty, so it cannot collide with a counter's.
func lastUsedKey(id string) []byte { return append(usagePrefix(id), 0) }

// fillLastUsed sets c.LastUsedAt from the usage data.
func (tx *Tx) fillLastUsed(c *Credential) error {
	var t time.Time
	ok, err := tx.getJSON(bucketUsage, lastUsedKey(c.ID), &t)
	if err != nil {
		return fmt.Errorf("read last use: %w", err)
	}
	c.LastUsedAt = nil
	if ok {
		c.LastUsedAt = &t
	}
	return nil
}

// fillLastUsedAll sets LastUsedAt on many credentials.
func (tx *Tx) fillLastUsedAll(creds []*Credential) error {
	ids := make([]string, len(creds))
	for i, c := range creds {
		ids[i] = c.ID
	}
	last, err := tx.lastUses(ids)
	if err != nil {
		return err
	}
	for _, c := range creds {
		c.LastUsedAt = nil
		if t, ok := last[c.ID]; ok {
			c.LastUsedAt = &t
		}
	}
	return nil
}

// lastUses reads the last use of each of ids (credentials or grants) that
// has one. Past a few, one pass over the usage bucket costs less than a
// checked point read each.
func (tx *Tx) lastUses(ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	if len(ids) <= 64 {
		for _, id := range ids {
			var t time.Time
			ok, err := tx.getJSON(bucketUsage, lastUsedKey(id), &t)
			if err != nil {
				return nil, fmt.Errorf("read last use: %w", err)
			}
			if ok {
				out[id] = t
			}
		}
		return out, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	err := forEachJSON(tx, bucketUsage, func(key []byte, t *lastUse) error {
		id, rest, ok := bytes.Cut(key, []byte{0})
		if !ok || len(rest) != 1 || rest[0] != 0 {
			return nil // a counter
		}
		if want[string(id)] && t.set {
			out[string(id)] = t.at
		}
		return nil
	})
	return out, err
}

// lastUse decodes a last-use record, and skips the counters a pass over the
// usage bucket meets.
type lastUse struct {
	at  time.Time
	set bool
}

func (l *lastUse) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		return nil // a counter's object
	}
	l.set = true
	return l.at.UnmarshalJSON(b)
}

func usagePrefix(id string) []byte {
	return []byte(id + "\x00")
}

// usageKey is the usage bucket's key for a credential's count in a period.
func usageKey(id, periodKey string) []byte {
	k := usagePrefix(id)
	k = append(k, byte(len(periodKey)))
	return append(k, periodKey...)
}

// checkUsageArgs rejects ids and period keys that would make ambiguous
// bucket keys: a NUL in either, an empty or overlong period key.
func checkUsageArgs(id, periodKey string) error {
	if id == "" || bytes.IndexByte([]byte(id), 0) >= 0 {
		return fmt.Errorf("usage counter: invalid credential id %q", id)
	}
	if periodKey == "" || len(periodKey) > maxPeriodKey || bytes.IndexByte([]byte(periodKey), 0) >= 0 {
		return fmt.Errorf("usage counter: invalid period key %q", periodKey)
	}
	return nil
}

// Usage returns the count of credential id in the period named periodKey,
// or a zero count if nothing was counted there.
func (tx *Tx) Usage(id, periodKey string) (UsageCount, error) {
	if err := checkUsageArgs(id, periodKey); err != nil {
		return UsageCount{}, err
	}
	var c UsageCount
	if _, err := tx.getJSON(bucketUsage, usageKey(id, periodKey), &c); err != nil {
		return UsageCount{}, fmt.Errorf("read usage: %w", err)
	}
	return c, nil
}

// AddUsage adds n uses to the count of credential id in every period of
// periodKeys, inside the transaction: either all of them change or, if the
// transaction fails, none. It does not check any limit; package quota does
// that first, in the same transaction.
//
// A negative n gives uses back, as a lease does with uses it reserved and
// did not hand out. A count never goes below zero, and giving back to a
// period with no counter (pruned, or its credential removed) does nothing.
func (tx *Tx) AddUsage(id string, periodKeys []string, n int64) error {
	for _, pk := range periodKeys {
		if err := tx.addCount(id, pk, n, 0); err != nil {
			return err
		}
	}
	return nil
}

// AddExtra adds n top-up uses (n > 0) to the limit of credential id in the
// period named periodKey. They lapse with the period.
func (tx *Tx) AddExtra(id, periodKey string, n int64) error {
	if n <= 0 {
		return fmt.Errorf("usage top-up of %d: give a positive number of uses", n)
	}
	return tx.addCount(id, periodKey, 0, n)
}

func (tx *Tx) addCount(id, periodKey string, used, extra int64) error {
	if err := checkUsageArgs(id, periodKey); err != nil {
		return err
	}
	key := usageKey(id, periodKey)
	var c UsageCount
	found, err := tx.getJSON(bucketUsage, key, &c)
	if err != nil {
		return fmt.Errorf("read usage: %w", err)
	}
	if !found && used <= 0 && extra <= 0 {
		return nil // nothing to give back to
	}
	if c.Used, err = addCount(c.Used, used); err != nil {
		return fmt.Errorf("usage of %s in %s: %w", id, periodKey, err)
	}
	if c.Extra, err = addCount(c.Extra, extra); err != nil {
		return fmt.Errorf("top-up of %s in %s: %w", id, periodKey, err)
	}
	return tx.putJSON(bucketUsage, key, c)
}

// deleteCounters removes counters (which does not advance the generation).
func (tx *Tx) deleteCounters(keys [][]byte) error {
	for _, k := range keys {
		if err := tx.delete(bucketUsage, k); err != nil {
			return err
		}
	}
	return nil
}

// addCount adds n to a count, flooring at zero and refusing to overflow.
func addCount(count, n int64) (int64, error) {
	if n > 0 && count > math.MaxInt64-n {
		return 0, ErrUsageOverflow
	}
	return max(count+n, 0), nil
}

// UsageHistory returns the counts of credential id in the periods whose
// keys lie between from and to, both included, in order. from and to must
// be keys of the same kind of period (the same length), such as the days
// "2026-11-01" and "2026-11-30", which gives the per-day history of a
// month. Periods where nothing was counted are left out.
func (tx *Tx) UsageHistory(id, from, to string) ([]PeriodCount, error) {
	if err := checkUsageArgs(id, from); err != nil {
		return nil, err
	}
	if err := checkUsageArgs(id, to); err != nil {
		return nil, err
	}
	if len(from) != len(to) {
		return nil, fmt.Errorf("usage history from %q to %q: both ends must be keys of the same kind of period", from, to)
	}
	var out []PeriodCount
	first, last := usageKey(id, from), usageKey(id, to)
	// The key right after last: ranges are half-open.
	err := tx.rangeShard(bucketUsage, first, append(last, 0), func(k, sealed []byte) error {
		var pc PeriodCount
		if err := tx.openJSON(bucketUsage, k, sealed, &pc.UsageCount); err != nil {
			return fmt.Errorf("read usage history: %w", err)
		}
		pc.PeriodKey = string(k[len(usagePrefix(id))+1:])
		out = append(out, pc)
		return nil
	})
	return out, err
}

// PruneUsage drops the counters of credential id whose period keys are of
// the same kind (length) as before and sort before it: with quota's keys,
// the counts of every earlier period of that length. Called with the key
// of the current second, it drops the seconds gone by; with the key of a
// day a year ago, the day history older than that.
func (tx *Tx) PruneUsage(id, before string) error {
	if err := checkUsageArgs(id, before); err != nil {
		return err
	}
	start := append(usagePrefix(id), byte(len(before)))
	return tx.deleteUsageRange(start, usageKey(id, before))
}

// deleteUsage drops every counter of a removed credential.
func (tx *Tx) deleteUsage(id string) error {
	prefix := usagePrefix(id)
	return tx.deleteUsageRange(prefix, prefixEnd(prefix))
}

// deleteUsageRange deletes the usage records of one credential in [from, to).
func (tx *Tx) deleteUsageRange(from, to []byte) error {
	var doomed [][]byte
	if err := tx.rangeShard(bucketUsage, from, to, func(k, _ []byte) error {
		doomed = append(doomed, k)
		return nil
	}); err != nil {
		return err
	}
	return tx.deleteCounters(doomed)
}

// Credential returns the key or client whose id (not name) is id, as a
// [Credential]. It serves callers that hold only an id, such as the quota
// leases of a server, and want the record as it is now.
func (tx *Tx) Credential(id string) (*Credential, error) {
	for _, kind := range []Kind{KindKey, KindClient} {
		if kind == KindClient && !isClientID(id) || kind == KindKey && (!strings.HasPrefix(id, kind.idPrefix()) || !idPattern().MatchString(id)) {
			continue
		}
		var r struct {
			Credential
		}
		ok, err := tx.getJSON(kind.bucket(), []byte(id), &r)
		if err != nil {
			return nil, err
		}
		if ok {
			return &r.Credential, nil
		}
	}
	return nil, fmt.Errorf("credential %q: %w", id, ErrNotFound)
}
