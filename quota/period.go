package quota

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is the length of a calendar period over which uses are counted.
// Periods are calendar periods in UTC: a day runs from midnight to midnight
// UTC and a month from the first of the month to the first of the next, so
// months differ in length and every period is the same for every process
// that counts, wherever it runs.
//
// The zero Period is not valid; use the constants or [ParsePeriod]. Periods
// are ordered from shortest to longest.
type Period uint8

// The periods a limit may use, shortest first.
const (
	Second Period = iota + 1
	Minute
	Hour
	Day
	Month
)

// validPeriodNames lists the canonical names in order, for messages that
// tell a person what they may write.
const validPeriodNames = "second, minute, hour, day, month"

// periodNamed returns the period that name spells, if any. Plurals are
// accepted because people write "10/seconds" as readily as "10/second".
// "m" is deliberately missing: it could mean minute or month.
func periodNamed(name string) (Period, bool) {
	switch name {
	case "s", "sec", "secs", "second", "seconds":
		return Second, true
	case "min", "mins", "minute", "minutes":
		return Minute, true
	case "h", "hr", "hrs", "hour", "hours":
		return Hour, true
	case "d", "day", "days":
		return Day, true
	case "mo", "month", "months":
		return Month, true
	}
	return 0, false
}

// ParsePeriod returns the period named by s. It accepts the canonical names
// (second, minute, hour, day, month), their plurals and common short forms
// such as s, sec, min, h, hr, d and mo, in any letter case, with surrounding
// space ignored. Anything else, such as "week" or "m", is an error wrapping
// [ErrInvalidPeriod].
func ParsePeriod(s string) (Period, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if p, ok := periodNamed(name); ok {
		return p, nil
	}
	if name == "m" {
		return 0, newDetailError(fmt.Sprintf("period %q is ambiguous: write min for minute or mo for month", s), ErrInvalidPeriod)
	}
	return 0, newDetailError(fmt.Sprintf("period %q is not one of %s", s, validPeriodNames), ErrInvalidPeriod)
}

// String returns the canonical name of p, such as "month", or "Period(N)"
// for a value that is not a valid period.
func (p Period) String() string {
	switch p {
	case Second:
		return "second"
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Month:
		return "month"
	}
	return "Period(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is one of the defined periods.
func (p Period) Valid() bool {
	return p >= Second && p <= Month
}

// MarshalText encodes p as its canonical name, so printed and encoded
// periods stay readable and do not depend on the order of the constants.
func (p Period) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, newDetailError(fmt.Sprintf("cannot encode %s: not a valid period", p), ErrInvalidPeriod)
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes any spelling that [ParsePeriod] accepts.
func (p *Period) UnmarshalText(text []byte) error {
	parsed, err := ParsePeriod(string(text))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Start returns the first instant, in UTC, of the period of length p that
// contains t. t may be in any location; it is converted to UTC first.
// Start panics if p is not valid, which only a programming error can cause.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	switch p {
	case Second:
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	case Minute:
		return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	case Hour:
		return time.Date(y, mo, d, h, 0, 0, 0, time.UTC)
	case Day:
		return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	}
	panic("quota: Start called on invalid " + p.String())
}

// End returns the first instant after the period of length p that contains
// t, which is when its count resets and the next period starts. The period
// is the half-open interval [Start, End). End panics if p is not valid.
func (p Period) End(t time.Time) time.Time {
	start := p.Start(t)
	// time.Date normalises an overflowing field (minute 60, month 13), so
	// adding one to the field that p names steps over hour, day, month and
	// year boundaries, including February in leap years.
	y, mo, d := start.Date()
	h, mi, s := start.Clock()
	switch p {
	case Second:
		s++
	case Minute:
		mi++
	case Hour:
		h++
	case Day:
		d++
	case Month:
		mo++
	}
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// Key returns a name for the period of length p that contains t, in UTC:
// "2026-11" for a month, "2026-11-22" for a day, "2026-11-22T21" for an
// hour, "2026-11-22T21:05" for a minute, "2026-11-22T21:05:07" for a second.
// Keys are stable, so counters can be stored under them, and keys of one
// period length sort in time order for years 0 to 9999. Key panics if p is
// not valid.
func (p Period) Key(t time.Time) string {
	return p.Start(t).Format(p.keyLayout())
}

// keyLayout is the time layout of p's keys: an RFC 3339 prefix cut after
// the field that p names, so a key reads like the date it stands for.
func (p Period) keyLayout() string {
	switch p {
	case Second:
		return "2006-01-02T15:04:05"
	case Minute:
		return "2006-01-02T15:04"
	case Hour:
		return "2006-01-02T15"
	case Day:
		return "2006-01-02"
	case Month:
		return "2006-01"
	}
	panic("quota: Key called on invalid " + p.String())
}
