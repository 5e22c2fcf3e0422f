package quota

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// limitExample ends every message about a malformed limit, so a person
// always sees the form that works.
const limitExample = "8000/month"

// Limit allows Count uses per calendar Period, as in 8000/month.
// A valid Limit has Count > 0 and a valid Period; see [Limit.Validate].
type Limit struct {
	Count  int64
	Period Period
}

// String returns the canonical form of l, "<count>/<period>", such as
// "8000/month". [ParseLimit] reads it back to the same Limit.
func (l Limit) String() string {
	return strconv.FormatInt(l.Count, 10) + "/" + l.Period.String()
}

// Validate reports why l cannot be enforced, or nil if it can. Limits that
// did not come from [ParseLimit], such as ones decoded from storage, should
// pass through it before use.
func (l Limit) Validate() error {
	if l.Count <= 0 {
		return newDetailError(fmt.Sprintf("limit %s: count must be a positive whole number", l), ErrInvalidLimit)
	}
	if !l.Period.Valid() {
		return newDetailError(fmt.Sprintf("limit %s: period is not one of %s", l, validPeriodNames), ErrInvalidLimit, ErrInvalidPeriod)
	}
	return nil
}

// MarshalText encodes l in its canonical form, so a printed or encoded
// limit reads "8000/month" rather than a pair of numbers.
func (l Limit) MarshalText() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("cannot encode: %w", err)
	}
	return []byte(l.String()), nil
}

// UnmarshalText decodes any form that [ParseLimit] accepts.
func (l *Limit) UnmarshalText(text []byte) error {
	parsed, err := ParseLimit(string(text))
	if err != nil {
		return err
	}
	*l = parsed
	return nil
}

// IsNone reports whether s is the word "none" (in any letter case, with
// surrounding space ignored), which a person writes to lift every limit of a
// credential, as in "keymint usage limit ci none". It is not a [Limit], so
// callers check IsNone before calling [ParseLimit].
func IsNone(s string) bool {
	return strings.EqualFold(strings.TrimSpace(s), "none")
}

// ParseLimit reads a limit written as "<count>/<period>", such as
// "8000/month" or "10/s". Space around the whole and around either part is
// ignored. The count is a positive decimal integer that fits in an int64,
// with no sign, separators or exponent; the period is anything
// [ParsePeriod] accepts. Errors wrap [ErrInvalidLimit] (and
// [ErrInvalidPeriod] when the period is at fault) and name the input.
func ParseLimit(s string) (Limit, error) {
	trimmed := strings.TrimSpace(s)
	if IsNone(trimmed) {
		return Limit{}, limitError(s, `"none" lifts every limit and can't stand for one; give a count per period`)
	}
	countText, periodText, found := strings.Cut(trimmed, "/")
	if !found {
		return Limit{}, limitError(s, "expected a count per period")
	}
	count, err := parseCount(strings.TrimSpace(countText))
	if err != nil {
		return Limit{}, limitError(s, err.Error())
	}
	periodText = strings.TrimSpace(periodText)
	if periodText == "" {
		return Limit{}, limitError(s, "period is missing; write one of "+validPeriodNames)
	}
	period, err := ParsePeriod(periodText)
	if err != nil {
		return Limit{}, limitError(s, err.Error(), err)
	}
	return Limit{Count: count, Period: period}, nil
}

// parseCount reads the count of a limit. It returns a bare problem
// description; the caller adds which limit it was about.
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("count is missing")
	}
	// strconv.ParseInt alone would accept "+5" and "-5"; a count is written
	// with digits only, so signs are refused here with the same message as
	// any other non-number.
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("count must be a positive whole number")
		}
	}
	count, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Only digits remain, so the one possible failure is overflow.
		return 0, fmt.Errorf("count must be at most %d", int64(math.MaxInt64))
	}
	if count == 0 {
		return 0, fmt.Errorf("count must be a positive whole number")
	}
	return count, nil
}

// limitError describes what is wrong with the limit a person wrote, ending
// with the form that works. It wraps ErrInvalidLimit and any extra causes.
func limitError(input, problem string, causes ...error) error {
	msg := fmt.Sprintf("limit %q: %s, as in %s", input, problem, limitExample)
	return newDetailError(msg, append([]error{ErrInvalidLimit}, causes...)...)
}

// ParseLimits reads every limit in ss with [ParseLimit], as given by a
// repeated --limit flag, and returns them ordered from shortest period to
// longest. Two limits of the same period are an error wrapping
// [ErrDuplicatePeriod]: counts are kept per period, so "10/day" and
// "500/day" could not both hold. No input yields no limits and no error.
func ParseLimits(ss []string) ([]Limit, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	limits := make([]Limit, 0, len(ss))
	for _, s := range ss {
		l, err := ParseLimit(s)
		if err != nil {
			return nil, err
		}
		limits = append(limits, l)
	}
	slices.SortStableFunc(limits, byPeriod)
	if err := checkOnePerPeriod(limits); err != nil {
		return nil, err
	}
	return limits, nil
}

// checkLimits reports the first limit that cannot be enforced, or a period
// carrying two limits, in limits of any order.
func checkLimits(limits []Limit) error {
	sorted := slices.Clone(limits)
	slices.SortStableFunc(sorted, byPeriod)
	return checkSortedLimits(sorted)
}

// checkSortedLimits is checkLimits for limits sorted by period.
func checkSortedLimits(sorted []Limit) error {
	for _, l := range sorted {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	return checkOnePerPeriod(sorted)
}

// byPeriod orders limits shortest period first, the order in which they are
// stored and shown.
func byPeriod(a, b Limit) int { return cmp.Compare(a.Period, b.Period) }

// checkOnePerPeriod reports two limits sharing a period in limits sorted by
// period, where such limits are neighbours.
func checkOnePerPeriod(sorted []Limit) error {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Period == sorted[i-1].Period {
			msg := fmt.Sprintf("limits %s and %s are both per %s; keep one limit per period",
				sorted[i-1], sorted[i], sorted[i].Period)
			return newDetailError(msg, ErrDuplicatePeriod)
		}
	}
	return nil
}

// LimitChange is what [MergeLimits] did to the limit of one period: From is
// the limit before (nil when the period had none), To the limit after (nil
// when it was removed).
type LimitChange struct {
	Period Period
	From   *Limit
	To     *Limit
}

// MergeLimits returns current with each limit of set in place of current's
// limit of the same period, or added beside them, and without the limits of
// the periods in remove: setting one period's limit keeps the others. The
// limits returned are ordered shortest period first, as stored, and the
// changes, one per period whose limit changed, in the same order; a limit set
// to what it was is no change, nor is removing a period that had no limit.
// Two limits of set sharing a period, or a period both set and removed, are
// an error wrapping [ErrDuplicatePeriod]; an invalid limit in set, one
// wrapping [ErrInvalidLimit].
func MergeLimits(current, set []Limit, remove []Period) ([]Limit, []LimitChange, error) {
	if err := checkLimits(set); err != nil {
		return nil, nil, err
	}
	for _, l := range set {
		if slices.Contains(remove, l.Period) {
			msg := fmt.Sprintf("limit %s sets the %s limit that is also to be removed; either set it or remove it", l, l.Period)
			return nil, nil, newDetailError(msg, ErrDuplicatePeriod)
		}
	}
	byP := map[Period]Limit{}
	for _, l := range current {
		byP[l.Period] = l
	}
	var changes []LimitChange
	for p := Second; p <= Month; p++ {
		old, had := byP[p]
		var next *Limit
		if i := slices.IndexFunc(set, func(l Limit) bool { return l.Period == p }); i >= 0 {
			next = &set[i]
		} else if had && !slices.Contains(remove, p) {
			next = &old
		}
		switch {
		case next == nil && had:
			changes = append(changes, LimitChange{Period: p, From: &old})
			delete(byP, p)
		case next != nil && (!had || *next != old):
			c := LimitChange{Period: p, To: &Limit{Count: next.Count, Period: p}}
			if had {
				c.From = &old
			}
			changes = append(changes, c)
			byP[p] = *next
		}
	}
	merged := make([]Limit, 0, len(byP))
	for _, l := range byP {
		merged = append(merged, l)
	}
	slices.SortFunc(merged, byPeriod)
	if len(merged) == 0 {
		merged = nil
	}
	return merged, changes, nil
}
