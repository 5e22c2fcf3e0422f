package quota

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keymint/keymint/vault"
)

// LimitsOf returns the limits a credential carries, ordered from shortest
// period to longest, as [ParseLimits] would. A stored limit that cannot be
// enforced (a damaged or hand-edited record) is an error wrapping
// [ErrInvalidLimit] or [ErrDuplicatePeriod] that names the credential:
// enforcing part of a credential's limits would be worse than refusing.
func LimitsOf(c *vault.Credential) ([]Limit, error) {
	if len(c.Limits) == 0 {
		return nil, nil
	}
	limits := make([]Limit, 0, len(c.Limits))
	for _, sl := range c.Limits {
		p, err := ParsePeriod(sl.Period)
		if err != nil {
			return nil, fmt.Errorf("credential %s: stored limit %d/%s: %w", c.Name, sl.Count, sl.Period, err)
		}
		limits = append(limits, Limit{Count: sl.Count, Period: p})
	}
	slices.SortFunc(limits, byPeriod)
	if err := checkSortedLimits(limits); err != nil {
		return nil, fmt.Errorf("credential %s: %w", c.Name, err)
	}
	return limits, nil
}

// StoredLimits converts limits to the form a [vault.Credential] keeps,
// shortest period first. Set c.Limits to it to give a credential limits;
// nil lifts them all.
func StoredLimits(limits []Limit) []vault.Limit {
	if len(limits) == 0 {
		return nil
	}
	sorted := slices.Clone(limits)
	slices.SortFunc(sorted, byPeriod)
	out := make([]vault.Limit, 0, len(sorted))
	for _, l := range sorted {
		out = append(out, vault.Limit{Count: l.Count, Period: l.Period.String()})
	}
	return out
}

// ParsePeriodKey reads a period key as [Period.Key] writes it, such as
// "2026-11" (a month) or "2026-11-22" (a day), and returns the length of
// the period and its first instant in UTC. It is how a person names a past
// period: "keymint usage show --period 2026-11". Errors wrap
// [ErrInvalidPeriodKey].
func ParsePeriodKey(s string) (Period, time.Time, error) {
	key := strings.TrimSpace(s)
	for p := Second; p <= Month; p++ {
		layout := p.keyLayout()
		if len(key) != len(layout) {
			continue
		}
		t, err := time.Parse(layout, key)
		if err != nil || p.Key(t) != key {
			break
		}
		return p, t, nil
	}
	msg := fmt.Sprintf("period %q: write a month as 2026-11, a day as 2026-11-22, an hour as 2026-11-22T21, a minute as 2026-11-22T21:05 or a second as 2026-11-22T21:05:07", s)
	return 0, time.Time{}, newDetailError(msg, ErrInvalidPeriodKey)
}
