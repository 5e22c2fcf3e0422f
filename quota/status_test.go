package quota

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// testNow is the moment most status tests are pinned to: a Sunday evening in
// November 2026, seven and a quarter seconds past 21:05 UTC.
var testNow = utc(2026, 11, 22, 21, 5, 7, 250000000)

func TestStatuses(t *testing.T) {
	tests := []struct {
		name   string
		limits []Limit
		usage  Usage
		want   []Status
	}{
		{
			name:   "no limits",
			limits: nil,
			want:   []Status{},
		},
		{
			name:   "nothing used yet, nil maps",
			limits: []Limit{{8000, Month}},
			want:   []Status{{Period: Month, Limit: 8000, Remaining: 8000, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "some used",
			limits: []Limit{{8000, Month}},
			usage:  Usage{Used: map[Period]int64{Month: 7999}},
			want:   []Status{{Period: Month, Used: 7999, Limit: 8000, Remaining: 1, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "exactly used up",
			limits: []Limit{{8000, Month}},
			usage:  Usage{Used: map[Period]int64{Month: 8000}},
			want:   []Status{{Period: Month, Used: 8000, Limit: 8000, Remaining: 0, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "over the limit after it was lowered: remaining stays 0",
			limits: []Limit{{100, Day}},
			usage:  Usage{Used: map[Period]int64{Day: 250}},
			want:   []Status{{Period: Day, Used: 250, Limit: 100, Remaining: 0, ResetsAt: utc(2026, 11, 23, 0, 0, 0, 0)}},
		},
		{
			name:   "top-up raises the limit",
			limits: []Limit{{8000, Month}},
			usage:  Usage{Used: map[Period]int64{Month: 8500}, Extra: map[Period]int64{Month: 8000}},
			want:   []Status{{Period: Month, Used: 8500, Extra: 8000, Limit: 16000, Remaining: 7500, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "top-up of another period does not count",
			limits: []Limit{{8000, Month}},
			usage:  Usage{Used: map[Period]int64{Month: 10}, Extra: map[Period]int64{Day: 500}},
			want:   []Status{{Period: Month, Used: 10, Limit: 8000, Remaining: 7990, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "top-up that would overflow saturates",
			limits: []Limit{{8000, Month}},
			usage:  Usage{Used: map[Period]int64{Month: 3}, Extra: map[Period]int64{Month: math.MaxInt64}},
			want:   []Status{{Period: Month, Used: 3, Extra: math.MaxInt64, Limit: math.MaxInt64, Remaining: math.MaxInt64 - 3, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}},
		},
		{
			name:   "largest count, largest use",
			limits: []Limit{{math.MaxInt64, Second}},
			usage:  Usage{Used: map[Period]int64{Second: math.MaxInt64}},
			want:   []Status{{Period: Second, Used: math.MaxInt64, Limit: math.MaxInt64, Remaining: 0, ResetsAt: utc(2026, 11, 22, 21, 5, 8, 0)}},
		},
		{
			name:   "every period, in the order given",
			limits: []Limit{{8000, Month}, {10, Second}, {600, Minute}, {5000, Hour}, {7000, Day}},
			usage:  Usage{Used: map[Period]int64{Second: 3, Minute: 30, Hour: 300, Day: 3000, Month: 7999}},
			want: []Status{
				{Period: Month, Used: 7999, Limit: 8000, Remaining: 1, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)},
				{Period: Second, Used: 3, Limit: 10, Remaining: 7, ResetsAt: utc(2026, 11, 22, 21, 5, 8, 0)},
				{Period: Minute, Used: 30, Limit: 600, Remaining: 570, ResetsAt: utc(2026, 11, 22, 21, 6, 0, 0)},
				{Period: Hour, Used: 300, Limit: 5000, Remaining: 4700, ResetsAt: utc(2026, 11, 22, 22, 0, 0, 0)},
				{Period: Day, Used: 3000, Limit: 7000, Remaining: 4000, ResetsAt: utc(2026, 11, 23, 0, 0, 0, 0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Statuses(tt.limits, tt.usage, testNow)
			if err != nil {
				t.Fatalf("Statuses error: %v", err)
			}
			if !slices.EqualFunc(got, tt.want, equalStatus) {
				t.Errorf("Statuses =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// equalStatus compares statuses with time.Time.Equal, as == on times also
// compares locations and monotonic readings.
func equalStatus(a, b Status) bool {
	return a.Period == b.Period && a.Used == b.Used && a.Extra == b.Extra && a.Limit == b.Limit &&
		a.Remaining == b.Remaining && a.ResetsAt.Equal(b.ResetsAt)
}

func TestStatusesRejects(t *testing.T) {
	tests := []struct {
		name    string
		limits  []Limit
		usage   Usage
		is      error
		message string
	}{
		{"zero count", []Limit{{0, Day}}, Usage{}, ErrInvalidLimit,
			"checking quota: limit 0/day: count must be a positive whole number"},
		{"invalid period", []Limit{{5, 0}}, Usage{}, ErrInvalidPeriod,
			"checking quota: limit 5/Period(0): period is not one of second, minute, hour, day, month"},
		{"two limits per day, apart", []Limit{{10, Day}, {8000, Month}, {500, Day}}, Usage{}, ErrDuplicatePeriod,
			"checking quota: limits 10/day and 500/day are both per day; keep one limit per period"},
		{"negative used", []Limit{{10, Day}}, Usage{Used: map[Period]int64{Day: -3}}, ErrNegativeCount,
			"checking quota: the current day has -3 used and 0 extra uses; counts never go below zero"},
		{"negative extra", []Limit{{10, Day}}, Usage{Extra: map[Period]int64{Day: -1}}, ErrNegativeCount,
			"checking quota: the current day has 0 used and -1 extra uses; counts never go below zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Statuses(tt.limits, tt.usage, testNow)
			if err == nil {
				t.Fatalf("Statuses = %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("Statuses returned %+v alongside its error", got)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if err.Error() != tt.message {
				t.Errorf("error:\n got  %s\n want %s", err, tt.message)
			}
			checkOneLineMessage(t, err)
		})
	}
}

func TestStatusesDoesNotReorderCallersLimits(t *testing.T) {
	limits := []Limit{{8000, Month}, {10, Second}}
	if _, err := Statuses(limits, Usage{}, testNow); err != nil {
		t.Fatal(err)
	}
	if want := []Limit{{8000, Month}, {10, Second}}; !slices.Equal(limits, want) {
		t.Errorf("Statuses changed its argument to %v", limits)
	}
}

// Statuses built by hand for Tightest and Allow; only the fields they read
// matter.
var (
	secondFull   = Status{Period: Second, Limit: 10, Used: 10, Remaining: 0, ResetsAt: utc(2026, 11, 22, 21, 5, 8, 0)}
	secondOpen   = Status{Period: Second, Limit: 10, Used: 3, Remaining: 7, ResetsAt: utc(2026, 11, 22, 21, 5, 8, 0)}
	minuteFull   = Status{Period: Minute, Limit: 600, Used: 600, Remaining: 0, ResetsAt: utc(2026, 11, 22, 21, 6, 0, 0)}
	hourSeven    = Status{Period: Hour, Limit: 5000, Used: 4993, Remaining: 7, ResetsAt: utc(2026, 11, 22, 22, 0, 0, 0)}
	dayOpen      = Status{Period: Day, Limit: 7000, Used: 3000, Remaining: 4000, ResetsAt: utc(2026, 11, 23, 0, 0, 0, 0)}
	monthOne     = Status{Period: Month, Limit: 8000, Used: 7999, Remaining: 1, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}
	monthFull    = Status{Period: Month, Limit: 8000, Used: 8000, Remaining: 0, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}
	monthOver    = Status{Period: Month, Limit: 8000, Used: 9000, Remaining: 0, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}
	monthOpen    = Status{Period: Month, Limit: 8000, Used: 10, Remaining: 7990, ResetsAt: utc(2026, 12, 1, 0, 0, 0, 0)}
	hourSameTime = Status{Period: Hour, Limit: 50, Used: 43, Remaining: 7, ResetsAt: utc(2026, 11, 22, 21, 5, 8, 0)} // contrived: resets with secondOpen
)

func TestTightest(t *testing.T) {
	tests := []struct {
		name     string
		statuses []Status
		want     Status
	}{
		{"one", []Status{monthOpen}, monthOpen},
		{"fewest remaining wins", []Status{secondOpen, dayOpen, monthOne}, monthOne},
		{"fewest remaining wins even if it resets last", []Status{monthFull, secondOpen}, monthFull},
		{"tie on remaining: soonest reset wins", []Status{hourSeven, secondOpen}, secondOpen},
		{"tie on remaining and reset: shorter period wins", []Status{hourSameTime, secondOpen}, secondOpen},
		{"all exhausted: soonest reset", []Status{monthFull, minuteFull, secondFull}, secondFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The answer must not depend on the order statuses come in.
			for _, order := range permutations(tt.statuses) {
				got, ok := Tightest(order)
				if !ok || !equalStatus(got, tt.want) {
					t.Errorf("Tightest(%v) = %+v, %v; want %+v", periodsOf(order), got, ok, tt.want)
				}
			}
		})
	}

	if got, ok := Tightest(nil); ok || got != (Status{}) {
		t.Errorf("Tightest(nil) = %+v, %v; want the zero Status, false", got, ok)
	}
}

func TestAllow(t *testing.T) {
	tests := []struct {
		name     string
		statuses []Status
		ok       bool
		blocking Status
	}{
		{"no limits", nil, true, Status{}},
		{"room everywhere", []Status{secondOpen, dayOpen, monthOne}, true, Status{}},
		{"last use left still fits", []Status{monthOne}, true, Status{}},
		{"one exhausted", []Status{secondOpen, monthFull}, false, monthFull},
		{"over the limit", []Status{monthOver}, false, monthOver},
		{"short period exhausted", []Status{secondFull, monthOpen}, false, secondFull},
		{"several exhausted: the one that resets last", []Status{secondFull, minuteFull, monthFull, dayOpen}, false, monthFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range permutations(tt.statuses) {
				ok, blocking := Allow(order)
				if ok != tt.ok || !equalStatus(blocking, tt.blocking) {
					t.Errorf("Allow(%v) = %v, %+v; want %v, %+v", periodsOf(order), ok, blocking, tt.ok, tt.blocking)
				}
			}
		})
	}
}

// TestAllowAndTightestFromStatuses runs the whole decision on computed
// statuses, as the endpoint will.
func TestAllowAndTightestFromStatuses(t *testing.T) {
	limits, err := ParseLimits([]string{"10/second", "8000/month"})
	if err != nil {
		t.Fatal(err)
	}
	usage := Usage{Used: map[Period]int64{Second: 2, Month: 7999}}
	statuses, err := Statuses(limits, usage, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Allow(statuses); !ok {
		t.Errorf("Allow = false with one use left this month")
	}
	if got, _ := Tightest(statuses); got.Period != Month || got.Remaining != 1 {
		t.Errorf("Tightest = %+v, want the month with 1 remaining", got)
	}

	usage.Used[Month] = 8000
	statuses, err = Statuses(limits, usage, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ok, blocking := Allow(statuses); ok || blocking.Period != Month {
		t.Errorf("Allow = %v, %+v; want false, blocked by the month", ok, blocking)
	}

	usage.Extra = map[Period]int64{Month: 8000} // an add-on pack
	statuses, err = Statuses(limits, usage, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Allow(statuses); !ok {
		t.Errorf("Allow = false after a top-up")
	}
}

// permutations returns every ordering of s; tests use it on a handful of
// statuses, so the factorial cost stays small.
func permutations(s []Status) [][]Status {
	if len(s) <= 1 {
		return [][]Status{slices.Clone(s)}
	}
	var all [][]Status
	for i := range s {
		rest := slices.Concat(s[:i:i], s[i+1:])
		for _, p := range permutations(rest) {
			all = append(all, append([]Status{s[i]}, p...))
		}
	}
	return all
}

// periodsOf names statuses by period, for readable failure messages.
func periodsOf(statuses []Status) []Period {
	periods := make([]Period, len(statuses))
	for i, s := range statuses {
		periods[i] = s.Period
	}
	return periods
}

func TestPermutations(t *testing.T) {
	if got := len(permutations([]Status{secondFull, minuteFull, monthFull, dayOpen})); got != 24 {
		t.Errorf("4 statuses gave %d orderings, want 24", got)
	}
	if got := len(permutations(nil)); got != 1 {
		t.Errorf("no statuses gave %d orderings, want 1", got)
	}
}

// Guard against the hand-built fixtures drifting from what Statuses computes.
func TestFixturesAreConsistent(t *testing.T) {
	for _, s := range []Status{secondFull, secondOpen, minuteFull, hourSeven, dayOpen, monthOne, monthFull, monthOver, monthOpen} {
		if want := max(s.Limit-s.Used, 0); s.Remaining != want {
			t.Errorf("fixture %+v: Remaining should be %d", s, want)
		}
		if !s.ResetsAt.Equal(s.Period.End(testNow)) {
			t.Errorf("fixture %+v: ResetsAt should be %s", s, s.Period.End(testNow))
		}
	}
}
