package quota

import (
	"cmp"
	"fmt"
	"math"
	"time"
)

// Usage is what has been counted for one credential in the periods that
// contain a given moment: its current second, minute, hour, day and month.
// A period missing from a map counts as zero.
type Usage struct {
	// Used holds the uses counted so far in the current period of each
	// length, as stored under that period's [Period.Key].
	Used map[Period]int64

	// Extra holds the top-up uses added to the current period of each
	// length ("keymint usage top-up"). They raise that period's limit and
	// lapse with it.
	Extra map[Period]int64
}

// Status is where one limit stands in the period that contains a moment.
type Status struct {
	Period    Period    // the period of the limit this status is about
	Used      int64     // uses counted in the current period
	Extra     int64     // top-up uses added to the current period
	Limit     int64     // the effective limit: the limit's Count plus Extra
	Remaining int64     // uses left in the current period: Limit - Used, never below 0
	ResetsAt  time.Time // when the current period ends and counting restarts, in UTC
}

// exhausted reports whether no use is left under s.
func (s Status) exhausted() bool {
	return s.Remaining <= 0
}

// Statuses returns the status of each limit, in the order given, for the
// periods that contain now, from the counts in usage. It fails, wrapping
// [ErrInvalidLimit] or [ErrDuplicatePeriod], if a limit cannot be enforced,
// and wrapping [ErrNegativeCount] if a count is below zero.
//
// Used may exceed the limit (the limit may have been lowered during the
// period); Remaining is then 0, never negative, because clients read it as
// a count of uses they may still make.
func Statuses(limits []Limit, usage Usage, now time.Time) ([]Status, error) {
	if err := checkLimits(limits); err != nil {
		return nil, fmt.Errorf("checking quota: %w", err)
	}
	statuses := make([]Status, 0, len(limits))
	for _, l := range limits {
		used, extra := usage.Used[l.Period], usage.Extra[l.Period]
		if used < 0 || extra < 0 {
			msg := fmt.Sprintf("checking quota: the current %s has %d used and %d extra uses; counts never go below zero",
				l.Period, used, extra)
			return nil, newDetailError(msg, ErrNegativeCount)
		}
		effective := addSaturating(l.Count, extra)
		statuses = append(statuses, Status{
			Period:    l.Period,
			Used:      used,
			Extra:     extra,
			Limit:     effective,
			Remaining: max(effective-used, 0),
			ResetsAt:  l.Period.End(now),
		})
	}
	return statuses, nil
}

// addSaturating returns a+b for non-negative a and b, or the largest int64
// if the sum would overflow: a top-up that large means "no practical limit",
// and wrapping around to a negative limit would block every use instead.
func addSaturating(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// Tightest returns the status a client should be told about: the one with
// the fewest uses remaining, and among equals the one that resets soonest
// (then the shortest period, so the choice never depends on input order).
// It returns false when statuses is empty, that is when no limit applies and
// no RateLimit fields should be sent.
func Tightest(statuses []Status) (Status, bool) {
	if len(statuses) == 0 {
		return Status{}, false
	}
	tightest := statuses[0]
	for _, s := range statuses[1:] {
		if compareTightness(s, tightest) < 0 {
			tightest = s
		}
	}
	return tightest, true
}

// compareTightness orders a before b (negative) if a constrains a client
// sooner than b.
func compareTightness(a, b Status) int {
	if c := cmp.Compare(a.Remaining, b.Remaining); c != 0 {
		return c
	}
	if c := a.ResetsAt.Compare(b.ResetsAt); c != 0 {
		return c
	}
	return cmp.Compare(a.Period, b.Period)
}

// Allow reports whether one more use fits: only if every limit has a use
// remaining. With no statuses (no limits) every use is allowed.
//
// When the use does not fit, blocking is the exhausted status that resets
// last, because that is the earliest moment all exhausted limits have use
// again: with both 10/second and 8000/month spent, retrying after a second
// would only fail again. Give blocking to [RetryAfter] and [WriteHeaders] in
// the 429 response, so Retry-After and RateLimit-Reset agree. When ok is
// true, blocking is the zero Status.
func Allow(statuses []Status) (ok bool, blocking Status) {
	found := false
	for _, s := range statuses {
		if !s.exhausted() {
			continue
		}
		if !found || resetsLater(s, blocking) {
			blocking, found = s, true
		}
	}
	return !found, blocking
}

// resetsLater reports whether a frees up later than b, preferring the
// longer period when both reset at once, so the choice never depends on
// input order.
func resetsLater(a, b Status) bool {
	if c := a.ResetsAt.Compare(b.ResetsAt); c != 0 {
		return c > 0
	}
	return a.Period > b.Period
}
