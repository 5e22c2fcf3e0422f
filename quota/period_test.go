package quota

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // real zones with daylight saving, whatever the host has installed
)

// utc builds a UTC time; nanoseconds let a test sit just before a boundary.
func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

func TestPeriodBounds(t *testing.T) {
	// Times in other zones, to check they are placed by their UTC instant.
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kiritimati := time.FixedZone("UTC+14", 14*60*60)
	bakerIsland := time.FixedZone("UTC-12", -12*60*60)

	tests := []struct {
		name   string
		period Period
		t      time.Time
		start  time.Time
		end    time.Time
		key    string
	}{
		// Month.
		{"month mid", Month, utc(2026, 11, 22, 21, 5, 7, 123), utc(2026, 11, 1, 0, 0, 0, 0), utc(2026, 12, 1, 0, 0, 0, 0), "2026-11"},
		{"month first instant", Month, utc(2026, 11, 1, 0, 0, 0, 0), utc(2026, 11, 1, 0, 0, 0, 0), utc(2026, 12, 1, 0, 0, 0, 0), "2026-11"},
		{"month last instant", Month, utc(2026, 11, 30, 23, 59, 59, 999999999), utc(2026, 11, 1, 0, 0, 0, 0), utc(2026, 12, 1, 0, 0, 0, 0), "2026-11"},
		{"month 31st ends on 1st of next, not later", Month, utc(2027, 1, 31, 12, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), utc(2027, 2, 1, 0, 0, 0, 0), "2027-01"},
		{"month year end", Month, utc(2026, 12, 31, 23, 59, 59, 999999999), utc(2026, 12, 1, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12"},
		{"month new year", Month, utc(2027, 1, 1, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), utc(2027, 2, 1, 0, 0, 0, 0), "2027-01"},
		{"month leap february", Month, utc(2028, 2, 29, 12, 0, 0, 0), utc(2028, 2, 1, 0, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0), "2028-02"},
		{"month plain february", Month, utc(2027, 2, 28, 23, 0, 0, 0), utc(2027, 2, 1, 0, 0, 0, 0), utc(2027, 3, 1, 0, 0, 0, 0), "2027-02"},

		// Day.
		{"day mid", Day, utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 0, 0, 0, 0), utc(2026, 11, 23, 0, 0, 0, 0), "2026-11-22"},
		{"day month end", Day, utc(2026, 11, 30, 23, 59, 59, 999999999), utc(2026, 11, 30, 0, 0, 0, 0), utc(2026, 12, 1, 0, 0, 0, 0), "2026-11-30"},
		{"day year end", Day, utc(2026, 12, 31, 18, 0, 0, 0), utc(2026, 12, 31, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12-31"},
		{"day leap day", Day, utc(2028, 2, 29, 23, 59, 59, 0), utc(2028, 2, 29, 0, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0), "2028-02-29"},
		{"day before leap day", Day, utc(2028, 2, 28, 12, 0, 0, 0), utc(2028, 2, 28, 0, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0, 0), "2028-02-28"},
		{"day 28 feb of non-leap year", Day, utc(2027, 2, 28, 12, 0, 0, 0), utc(2027, 2, 28, 0, 0, 0, 0), utc(2027, 3, 1, 0, 0, 0, 0), "2027-02-28"},
		{"day century non-leap 2100", Day, utc(2100, 2, 28, 1, 0, 0, 0), utc(2100, 2, 28, 0, 0, 0, 0), utc(2100, 3, 1, 0, 0, 0, 0), "2100-02-28"},
		{"day 400-year leap 2000", Day, utc(2000, 2, 28, 1, 0, 0, 0), utc(2000, 2, 28, 0, 0, 0, 0), utc(2000, 2, 29, 0, 0, 0, 0), "2000-02-28"},

		// Hour.
		{"hour mid", Hour, utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 21, 0, 0, 0), utc(2026, 11, 22, 22, 0, 0, 0), "2026-11-22T21"},
		{"hour day end", Hour, utc(2026, 11, 22, 23, 59, 0, 0), utc(2026, 11, 22, 23, 0, 0, 0), utc(2026, 11, 23, 0, 0, 0, 0), "2026-11-22T23"},
		{"hour year end", Hour, utc(2026, 12, 31, 23, 30, 0, 0), utc(2026, 12, 31, 23, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12-31T23"},
		{"hour leap day end", Hour, utc(2028, 2, 29, 23, 0, 0, 1), utc(2028, 2, 29, 23, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0), "2028-02-29T23"},

		// Minute.
		{"minute mid", Minute, utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 21, 5, 0, 0), utc(2026, 11, 22, 21, 6, 0, 0), "2026-11-22T21:05"},
		{"minute hour end", Minute, utc(2026, 11, 22, 21, 59, 30, 0), utc(2026, 11, 22, 21, 59, 0, 0), utc(2026, 11, 22, 22, 0, 0, 0), "2026-11-22T21:59"},
		{"minute year end", Minute, utc(2026, 12, 31, 23, 59, 59, 999999999), utc(2026, 12, 31, 23, 59, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12-31T23:59"},

		// Second.
		{"second mid", Second, utc(2026, 11, 22, 21, 5, 7, 500000000), utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 21, 5, 8, 0), "2026-11-22T21:05:07"},
		{"second exact", Second, utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 21, 5, 7, 0), utc(2026, 11, 22, 21, 5, 8, 0), "2026-11-22T21:05:07"},
		{"second year end", Second, utc(2026, 12, 31, 23, 59, 59, 1), utc(2026, 12, 31, 23, 59, 59, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12-31T23:59:59"},
		{"second leap day end", Second, utc(2028, 2, 29, 23, 59, 59, 0), utc(2028, 2, 29, 23, 59, 59, 0), utc(2028, 3, 1, 0, 0, 0, 0), "2028-02-29T23:59:59"},

		// Other zones: the local date differs from the UTC date.
		{"new york evening is next utc month", Month, time.Date(2026, 11, 30, 20, 0, 0, 0, newYork), utc(2026, 12, 1, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12"},
		{"new york evening is next utc day", Day, time.Date(2026, 11, 30, 20, 0, 0, 0, newYork), utc(2026, 12, 1, 0, 0, 0, 0), utc(2026, 12, 2, 0, 0, 0, 0), "2026-12-01"},
		{"utc+14 new year is still old utc year", Month, time.Date(2027, 1, 1, 5, 0, 0, 0, kiritimati), utc(2026, 12, 1, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0), "2026-12"},
		{"utc-12 leap day evening is 1 march utc", Day, time.Date(2028, 2, 29, 13, 0, 0, 0, bakerIsland), utc(2028, 3, 1, 0, 0, 0, 0), utc(2028, 3, 2, 0, 0, 0, 0), "2028-03-01"},
		{"utc+14 hour", Hour, time.Date(2026, 11, 23, 11, 5, 7, 0, kiritimati), utc(2026, 11, 22, 21, 0, 0, 0), utc(2026, 11, 22, 22, 0, 0, 0), "2026-11-22T21"},
		{"half-hour zone minute", Minute, time.Date(2026, 11, 23, 2, 35, 7, 0, time.FixedZone("UTC+5:30", 5*60*60+30*60)), utc(2026, 11, 22, 21, 5, 0, 0), utc(2026, 11, 22, 21, 6, 0, 0), "2026-11-22T21:05"},

		// Daylight saving: New York springs forward on 2026-03-08 and falls
		// back on 2026-11-01, yet UTC days and hours keep their length.
		{"dst spring day is 24h", Day, time.Date(2026, 3, 8, 12, 0, 0, 0, newYork), utc(2026, 3, 8, 0, 0, 0, 0), utc(2026, 3, 9, 0, 0, 0, 0), "2026-03-08"},
		{"dst autumn day is 24h", Day, time.Date(2026, 11, 1, 12, 0, 0, 0, newYork), utc(2026, 11, 1, 0, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0, 0), "2026-11-01"},
		{"dst repeated local hour, first pass", Hour, utc(2026, 11, 1, 5, 30, 0, 0).In(newYork), utc(2026, 11, 1, 5, 0, 0, 0), utc(2026, 11, 1, 6, 0, 0, 0), "2026-11-01T05"},
		{"dst repeated local hour, second pass", Hour, utc(2026, 11, 1, 6, 30, 0, 0).In(newYork), utc(2026, 11, 1, 6, 0, 0, 0), utc(2026, 11, 1, 7, 0, 0, 0), "2026-11-01T06"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, key := tt.period.Start(tt.t), tt.period.End(tt.t), tt.period.Key(tt.t)
			if !start.Equal(tt.start) || start.Location() != time.UTC {
				t.Errorf("%s.Start(%s) = %s, want %s", tt.period, tt.t, start, tt.start)
			}
			if !end.Equal(tt.end) || end.Location() != time.UTC {
				t.Errorf("%s.End(%s) = %s, want %s", tt.period, tt.t, end, tt.end)
			}
			if key != tt.key {
				t.Errorf("%s.Key(%s) = %q, want %q", tt.period, tt.t, key, tt.key)
			}
		})
	}
}

// TestPeriodInvariants checks, for every period and many pseudo-random
// times over several years, the properties the counters will rely on.
func TestPeriodInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: failures must reproduce
	from := utc(2025, 1, 1, 0, 0, 0, 0)
	span := utc(2031, 1, 1, 0, 0, 0, 0).Sub(from)
	for _, p := range []Period{Second, Minute, Hour, Day, Month} {
		for range 2000 {
			tm := from.Add(time.Duration(rng.Int64N(int64(span))))
			start, end := p.Start(tm), p.End(tm)
			if tm.Before(start) || !tm.Before(end) {
				t.Fatalf("%s: %s is not in [%s, %s)", p, tm, start, end)
			}
			if !p.Start(start).Equal(start) || !p.Start(end).Equal(end) {
				t.Fatalf("%s: Start is not idempotent around %s", p, tm)
			}
			if last := end.Add(-time.Nanosecond); !p.Start(last).Equal(start) {
				t.Fatalf("%s: last instant %s of the period starting %s starts at %s", p, last, start, p.Start(last))
			}
			if p.Key(tm) != p.Key(start) || p.Key(end.Add(-time.Nanosecond)) != p.Key(start) {
				t.Fatalf("%s: key changes within the period containing %s", p, tm)
			}
			if next := p.Key(end); next <= p.Key(tm) {
				t.Fatalf("%s: key %q of the next period does not sort after %q", p, next, p.Key(tm))
			}
			if p != Month {
				if got, want := end.Sub(start), fixedLength(p); got != want {
					t.Fatalf("%s: period containing %s lasts %s, want %s", p, tm, got, want)
				}
			}
		}
	}
}

// fixedLength is the length of the periods that do not vary in UTC.
func fixedLength(p Period) time.Duration {
	switch p {
	case Second:
		return time.Second
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	panic("no fixed length for " + p.String())
}

func TestMonthLengths(t *testing.T) {
	tests := []struct {
		month time.Time
		days  int
	}{
		{utc(2026, 1, 15, 0, 0, 0, 0), 31},
		{utc(2026, 2, 15, 0, 0, 0, 0), 28},
		{utc(2028, 2, 15, 0, 0, 0, 0), 29},
		{utc(2100, 2, 15, 0, 0, 0, 0), 28},
		{utc(2000, 2, 15, 0, 0, 0, 0), 29},
		{utc(2026, 4, 15, 0, 0, 0, 0), 30},
		{utc(2026, 12, 15, 0, 0, 0, 0), 31},
	}
	for _, tt := range tests {
		got := Month.End(tt.month).Sub(Month.Start(tt.month))
		if want := time.Duration(tt.days) * 24 * time.Hour; got != want {
			t.Errorf("month of %s lasts %s, want %d days", tt.month.Format("2006-01"), got, tt.days)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	good := map[Period][]string{
		Second: {"s", "sec", "secs", "second", "seconds", "S", "Second", " seconds "},
		Minute: {"min", "mins", "minute", "minutes", "MIN", "Minute"},
		Hour:   {"h", "hr", "hrs", "hour", "hours", "H", "HOUR"},
		Day:    {"d", "day", "days", "D", "Day", "\tday\n"},
		Month:  {"mo", "month", "months", "MO", "Month"},
	}
	for want, spellings := range good {
		for _, s := range spellings {
			got, err := ParsePeriod(s)
			if err != nil || got != want {
				t.Errorf("ParsePeriod(%q) = %v, %v; want %v, nil", s, got, err, want)
			}
		}
	}

	bad := []struct {
		in      string
		message string
	}{
		{"fortnight", `period "fortnight" is not one of second, minute, hour, day, month`},
		{"week", `period "week" is not one of second, minute, hour, day, month`},
		{"", `period "" is not one of second, minute, hour, day, month`},
		{"m", `period "m" is ambiguous: write min for minute or mo for month`},
		{"M", `period "M" is ambiguous: write min for minute or mo for month`},
		{"ms", `period "ms" is not one of second, minute, hour, day, month`},
		{"mon", `period "mon" is not one of second, minute, hour, day, month`},
		{"year", `period "year" is not one of second, minute, hour, day, month`},
		{"5min", `period "5min" is not one of second, minute, hour, day, month`},
		{"month s", `period "month s" is not one of second, minute, hour, day, month`},
		{"dayz", `period "dayz" is not one of second, minute, hour, day, month`},
		{"1", `period "1" is not one of second, minute, hour, day, month`},
	}
	for _, tt := range bad {
		got, err := ParsePeriod(tt.in)
		if err == nil {
			t.Errorf("ParsePeriod(%q) = %v, want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, ErrInvalidPeriod) {
			t.Errorf("ParsePeriod(%q) error %v does not wrap ErrInvalidPeriod", tt.in, err)
		}
		if err.Error() != tt.message {
			t.Errorf("ParsePeriod(%q) error = %q, want %q", tt.in, err, tt.message)
		}
	}
}

func TestPeriodStringAndValid(t *testing.T) {
	tests := []struct {
		p     Period
		str   string
		valid bool
	}{
		{0, "Period(0)", false},
		{Second, "second", true},
		{Minute, "minute", true},
		{Hour, "hour", true},
		{Day, "day", true},
		{Month, "month", true},
		{Month + 1, "Period(6)", false},
		{255, "Period(255)", false},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.str {
			t.Errorf("Period(%d).String() = %q, want %q", uint8(tt.p), got, tt.str)
		}
		if got := tt.p.Valid(); got != tt.valid {
			t.Errorf("Period(%d).Valid() = %v, want %v", uint8(tt.p), got, tt.valid)
		}
		if tt.valid {
			if back, err := ParsePeriod(tt.str); err != nil || back != tt.p {
				t.Errorf("ParsePeriod(%q) = %v, %v; want %v", tt.str, back, err, tt.p)
			}
		}
	}
}

func TestPeriodText(t *testing.T) {
	type record struct {
		Periods []Period `json:"periods"`
	}
	in := record{Periods: []Period{Second, Minute, Hour, Day, Month}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"periods":["second","minute","hour","day","month"]}`; string(data) != want {
		t.Errorf("json.Marshal = %s, want %s", data, want)
	}
	var out record
	if err := json.Unmarshal([]byte(`{"periods":["s","min","hours","d","mo"]}`), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Periods) != 5 || out.Periods[0] != Second || out.Periods[4] != Month {
		t.Errorf("json.Unmarshal = %v, want %v", out.Periods, in.Periods)
	}

	if _, err := json.Marshal(Period(0)); !errors.Is(err, ErrInvalidPeriod) {
		t.Errorf("json.Marshal(Period(0)) error = %v, want ErrInvalidPeriod", err)
	}
	var p Period
	if err := json.Unmarshal([]byte(`"week"`), &p); !errors.Is(err, ErrInvalidPeriod) {
		t.Errorf("json.Unmarshal(week) error = %v, want ErrInvalidPeriod", err)
	}
}

func TestInvalidPeriodPanics(t *testing.T) {
	now := utc(2026, 11, 22, 21, 5, 7, 0)
	calls := map[string]func(Period){
		"Start": func(p Period) { p.Start(now) },
		"End":   func(p Period) { p.End(now) },
		"Key":   func(p Period) { p.Key(now) },
	}
	for name, call := range calls {
		for _, p := range []Period{0, Month + 1} {
			func() {
				defer func() {
					r := recover()
					msg, _ := r.(string)
					if !strings.Contains(msg, "invalid "+p.String()) {
						t.Errorf("%s on %s: recovered %v, want a panic naming the period", name, p, r)
					}
				}()
				call(p)
			}()
		}
	}
}
