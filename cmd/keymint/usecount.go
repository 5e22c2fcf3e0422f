package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// useDenied is the error of a use refused because a limit is exhausted:
// what ran out, and when it comes back.
func useDenied(c *vault.Credential, blocking quota.Status, now time.Time) error {
	return fmt.Errorf("over quota: %s has used %d of %s %s; resets %s (%s)",
		c.Name, blocking.Used, plural(blocking.Limit, "use"), thisPeriod(blocking.Period), relTime(&blocking.ResetsAt, now, ""),
		blocking.ResetsAt.UTC().Format(time.RFC3339))
}

// consumeUse counts one use of c inside the caller's write transaction, and
// fails with useDenied when a limit is exhausted, which rolls the
// transaction back.
func consumeUse(tx *vault.Tx, c *vault.Credential) (quota.Decision, error) {
	d, err := quota.Consume(tx, c, tx.Now())
	if err != nil {
		return d, err
	}
	if !d.Allowed {
		return d, useDenied(c, d.Status, tx.Now())
	}
	return d, nil
}

// thisPeriod names the current period of length p: "today", "this month".
func thisPeriod(p quota.Period) string {
	if p == quota.Day {
		return "today"
	}
	return "this " + p.String()
}

// usageSummary is a credential's use for `key show` and `client show`:
// "52 of 100 this month, 3 of 10 this second", or the month's count.
func usageSummary(tx *vault.Tx, c *vault.Credential, now time.Time) (string, error) {
	statuses, err := quota.Current(tx, c, now)
	if err != nil {
		return "", err
	}
	if len(statuses) == 0 {
		n, err := tx.Usage(c.ID, quota.Month.Key(now))
		if err != nil {
			return "", err
		}
		return plural(n.Used, "use") + " this month, no limit", nil
	}
	var parts []string
	for i := len(statuses) - 1; i >= 0; i-- {
		st := statuses[i]
		parts = append(parts, fmt.Sprintf("%d of %s %s", st.Used, plural(st.Limit, "use"), thisPeriod(st.Period)))
	}
	return strings.Join(parts, ", "), nil
}
