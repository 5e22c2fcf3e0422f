package quota

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestParseLimitAccepts(t *testing.T) {
	tests := []struct {
		in        string
		want      Limit
		canonical string
	}{
		{"8000/month", Limit{8000, Month}, "8000/month"},
		{"10/second", Limit{10, Second}, "10/second"},
		{"10/s", Limit{10, Second}, "10/second"},
		{"10/sec", Limit{10, Second}, "10/second"},
		{"60/min", Limit{60, Minute}, "60/minute"},
		{"60/minutes", Limit{60, Minute}, "60/minute"},
		{"1000/h", Limit{1000, Hour}, "1000/hour"},
		{"1000/hours", Limit{1000, Hour}, "1000/hour"},
		{"500/d", Limit{500, Day}, "500/day"},
		{"500/days", Limit{500, Day}, "500/day"},
		{"8000/mo", Limit{8000, Month}, "8000/month"},
		{"8000/months", Limit{8000, Month}, "8000/month"},
		{"8000/Month", Limit{8000, Month}, "8000/month"},
		{"1/day", Limit{1, Day}, "1/day"},
		{"  8000/month\n", Limit{8000, Month}, "8000/month"},
		{"8000 / month", Limit{8000, Month}, "8000/month"},
		{"08000/month", Limit{8000, Month}, "8000/month"},
		{"9223372036854775807/second", Limit{math.MaxInt64, Second}, "9223372036854775807/second"},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if err != nil {
			t.Errorf("ParseLimit(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.canonical {
			t.Errorf("ParseLimit(%q).String() = %q, want %q", tt.in, s, tt.canonical)
		}
	}
}

func TestParseLimitRejects(t *testing.T) {
	const periods = "second, minute, hour, day, month"
	tests := []struct {
		in        string
		message   string
		badPeriod bool // the error should also wrap ErrInvalidPeriod
	}{
		{"0/month", `limit "0/month": count must be a positive whole number, as in 8000/month`, false},
		{"000/month", `limit "000/month": count must be a positive whole number, as in 8000/month`, false},
		{"-5/day", `limit "-5/day": count must be a positive whole number, as in 8000/month`, false},
		{"+5/day", `limit "+5/day": count must be a positive whole number, as in 8000/month`, false},
		{"abc/day", `limit "abc/day": count must be a positive whole number, as in 8000/month`, false},
		{"1.5/day", `limit "1.5/day": count must be a positive whole number, as in 8000/month`, false},
		{"1e3/day", `limit "1e3/day": count must be a positive whole number, as in 8000/month`, false},
		{"8_000/month", `limit "8_000/month": count must be a positive whole number, as in 8000/month`, false},
		{"8,000/month", `limit "8,000/month": count must be a positive whole number, as in 8000/month`, false},
		{"0x10/day", `limit "0x10/day": count must be a positive whole number, as in 8000/month`, false},
		{"8 000/month", `limit "8 000/month": count must be a positive whole number, as in 8000/month`, false},
		{"٣/day", `limit "٣/day": count must be a positive whole number, as in 8000/month`, false},
		{"9223372036854775808/day", `limit "9223372036854775808/day": count must be at most 9223372036854775807, as in 8000/month`, false},
		{"99999999999999999999999/day", `limit "99999999999999999999999/day": count must be at most 9223372036854775807, as in 8000/month`, false},
		{"/day", `limit "/day": count is missing, as in 8000/month`, false},
		{"10", `limit "10": expected a count per period, as in 8000/month`, false},
		{"", `limit "": expected a count per period, as in 8000/month`, false},
		{"   ", `limit "   ": expected a count per period, as in 8000/month`, false},
		{"month", `limit "month": expected a count per period, as in 8000/month`, false},
		{"none", `limit "none": "none" lifts every limit and can't stand for one; give a count per period, as in 8000/month`, false},
		{" None ", `limit " None ": "none" lifts every limit and can't stand for one; give a count per period, as in 8000/month`, false},
		{"10/", `limit "10/": period is missing; write one of ` + periods + `, as in 8000/month`, false},
		{"10/fortnight", `limit "10/fortnight": period "fortnight" is not one of ` + periods + `, as in 8000/month`, true},
		{"10/week", `limit "10/week": period "week" is not one of ` + periods + `, as in 8000/month`, true},
		{"10/m", `limit "10/m": period "m" is ambiguous: write min for minute or mo for month, as in 8000/month`, true},
		{"10/day/extra", `limit "10/day/extra": period "day/extra" is not one of ` + periods + `, as in 8000/month`, true},
		{"10/5min", `limit "10/5min": period "5min" is not one of ` + periods + `, as in 8000/month`, true},
		{"10 per day", `limit "10 per day": expected a count per period, as in 8000/month`, false},
		{"10/day\nX-Injected: 1", `limit "10/day\nX-Injected: 1": period "day\nX-Injected: 1" is not one of ` + periods + `, as in 8000/month`, true},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if err == nil {
			t.Errorf("ParseLimit(%q) = %+v, want an error", tt.in, got)
			continue
		}
		if got != (Limit{}) {
			t.Errorf("ParseLimit(%q) returned %+v alongside its error, want the zero Limit", tt.in, got)
		}
		if err.Error() != tt.message {
			t.Errorf("ParseLimit(%q) error:\n got  %s\n want %s", tt.in, err, tt.message)
		}
		if !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("ParseLimit(%q) error does not wrap ErrInvalidLimit", tt.in)
		}
		if got := errors.Is(err, ErrInvalidPeriod); got != tt.badPeriod {
			t.Errorf("ParseLimit(%q) error wraps ErrInvalidPeriod = %v, want %v", tt.in, got, tt.badPeriod)
		}
		checkOneLineMessage(t, err)
	}
}

// checkOneLineMessage holds err to the project's error voice: one line,
// starting lowercase, no final period.
func checkOneLineMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error %q is not one non-empty line", msg)
		return
	}
	if first := []rune(msg)[0]; unicode.IsUpper(first) {
		t.Errorf("error %q starts with a capital", msg)
	}
	if strings.HasSuffix(msg, ".") {
		t.Errorf("error %q ends with a period", msg)
	}
}

func TestIsNone(t *testing.T) {
	for _, s := range []string{"none", "NONE", "None", " none ", "\tnone\n"} {
		if !IsNone(s) {
			t.Errorf("IsNone(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "no", "nothing", "nones", "n one", "0/month", "unlimited", "-"} {
		if IsNone(s) {
			t.Errorf("IsNone(%q) = true, want false", s)
		}
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []Limit
	}{
		{"nothing", nil, nil},
		{"empty", []string{}, nil},
		{"one", []string{"8000/month"}, []Limit{{8000, Month}}},
		{"sorted shortest period first", []string{"8000/month", "10/s", "500/day"}, []Limit{{10, Second}, {500, Day}, {8000, Month}}},
		{"every period", []string{"5/d", "4/h", "3/min", "2/s", "6/mo"}, []Limit{{2, Second}, {3, Minute}, {4, Hour}, {5, Day}, {6, Month}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLimits(tt.in)
			if err != nil {
				t.Fatalf("ParseLimits(%q) error: %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseLimits(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}

	bad := []struct {
		name    string
		in      []string
		is      error
		message string
	}{
		{"same period twice", []string{"10/day", "500/day"}, ErrDuplicatePeriod,
			"limits 10/day and 500/day are both per day; keep one limit per period"},
		{"same period, different spellings", []string{"8000/month", "10/s", "9000/mo"}, ErrDuplicatePeriod,
			"limits 8000/month and 9000/month are both per month; keep one limit per period"},
		{"same limit twice", []string{"10/s", "10/second"}, ErrDuplicatePeriod,
			"limits 10/second and 10/second are both per second; keep one limit per period"},
		{"one bad among good", []string{"10/s", "0/day"}, ErrInvalidLimit,
			`limit "0/day": count must be a positive whole number, as in 8000/month`},
		{"none among limits", []string{"10/s", "none"}, ErrInvalidLimit,
			`limit "none": "none" lifts every limit and can't stand for one; give a count per period, as in 8000/month`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLimits(tt.in)
			if err == nil {
				t.Fatalf("ParseLimits(%q) = %v, want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("ParseLimits(%q) returned %v alongside its error", tt.in, got)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("ParseLimits(%q) error %v does not wrap %v", tt.in, err, tt.is)
			}
			if err.Error() != tt.message {
				t.Errorf("ParseLimits(%q) error:\n got  %s\n want %s", tt.in, err, tt.message)
			}
			checkOneLineMessage(t, err)
		})
	}
}

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		limit   Limit
		is      []error
		message string
	}{
		{Limit{8000, Month}, nil, ""},
		{Limit{0, Month}, []error{ErrInvalidLimit}, "limit 0/month: count must be a positive whole number"},
		{Limit{-1, Day}, []error{ErrInvalidLimit}, "limit -1/day: count must be a positive whole number"},
		{Limit{5, 0}, []error{ErrInvalidLimit, ErrInvalidPeriod}, "limit 5/Period(0): period is not one of second, minute, hour, day, month"},
		{Limit{}, []error{ErrInvalidLimit}, "limit 0/Period(0): count must be a positive whole number"},
	}
	for _, tt := range tests {
		err := tt.limit.Validate()
		if tt.is == nil {
			if err != nil {
				t.Errorf("%+v.Validate() = %v, want nil", tt.limit, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.message {
			t.Errorf("%+v.Validate() = %v, want %q", tt.limit, err, tt.message)
			continue
		}
		for _, target := range tt.is {
			if !errors.Is(err, target) {
				t.Errorf("%+v.Validate() error does not wrap %v", tt.limit, target)
			}
		}
	}
}

func TestLimitText(t *testing.T) {
	type credential struct {
		Limits []Limit `json:"limits"`
	}
	data, err := json.Marshal(credential{Limits: []Limit{{10, Second}, {8000, Month}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"limits":["10/second","8000/month"]}`; string(data) != want {
		t.Errorf("json.Marshal = %s, want %s", data, want)
	}

	var back credential
	if err := json.Unmarshal([]byte(`{"limits":["10/s"," 8000/mo "]}`), &back); err != nil {
		t.Fatal(err)
	}
	if want := []Limit{{10, Second}, {8000, Month}}; !slices.Equal(back.Limits, want) {
		t.Errorf("json.Unmarshal = %v, want %v", back.Limits, want)
	}

	if _, err := json.Marshal(Limit{0, Month}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("json.Marshal(0/month) error = %v, want ErrInvalidLimit", err)
	}
	var l Limit
	if err := json.Unmarshal([]byte(`"10/fortnight"`), &l); !errors.Is(err, ErrInvalidPeriod) {
		t.Errorf("json.Unmarshal(10/fortnight) error = %v, want ErrInvalidPeriod", err)
	}
}

// FuzzParseLimit checks that ParseLimit never panics, that whatever it
// accepts is a valid limit whose canonical form reads back to the same
// Limit, and that whatever it rejects gets a one-line, typed error.
func FuzzParseLimit(f *testing.F) {
	for _, seed := range []string{
		"8000/month", "10/s", "1/day", " 60 / min ", "08000/mo", "9223372036854775807/h",
		"0/month", "-5/day", "+5/day", "10/fortnight", "abc/day", "10", "/day", "10/",
		"none", "9223372036854775808/day", "10/m", "10/day/day", "٣/day", "10/DAY", "\x00/\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidLimit) {
				t.Fatalf("ParseLimit(%q) error %v does not wrap ErrInvalidLimit", s, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("ParseLimit(%q) error is not one line: %q", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) accepted an invalid limit %+v: %v", s, l, err)
		}
		canonical := l.String()
		again, err := ParseLimit(canonical)
		if err != nil {
			t.Fatalf("ParseLimit(%q) = %+v, but its String %q does not parse: %v", s, l, canonical, err)
		}
		if again != l {
			t.Fatalf("ParseLimit(%q) = %+v, but ParseLimit(%q) = %+v", s, l, canonical, again)
		}
		if again.String() != canonical {
			t.Fatalf("String is not canonical: %q then %q", canonical, again.String())
		}
	})
}

func TestMergeLimits(t *testing.T) {
	l := func(count int64, p Period) Limit { return Limit{count, p} }
	show := func(ls []Limit) string {
		var s []string
		for _, x := range ls {
			s = append(s, x.String())
		}
		return strings.Join(s, " ")
	}
	showChanges := func(cs []LimitChange) string {
		var s []string
		for _, c := range cs {
			from, to := "-", "-"
			if c.From != nil {
				from = c.From.String()
			}
			if c.To != nil {
				to = c.To.String()
			}
			s = append(s, c.Period.String()+":"+from+">"+to)
		}
		return strings.Join(s, " ")
	}
	current := []Limit{l(10, Second), l(8000, Month)}
	tests := []struct {
		name        string
		current     []Limit
		set         []Limit
		remove      []Period
		want        string
		wantChanges string
	}{
		{"replace one period, keep the others", current, []Limit{l(9000, Month)}, nil,
			"10/second 9000/month", "month:8000/month>9000/month"},
		{"add a period", current, []Limit{l(500, Day)}, nil,
			"10/second 500/day 8000/month", "day:->500/day"},
		{"several at once", current, []Limit{l(9000, Month), l(5, Second), l(1, Hour)}, nil,
			"5/second 1/hour 9000/month", "second:10/second>5/second hour:->1/hour month:8000/month>9000/month"},
		{"same value is no change", current, []Limit{l(10, Second)}, nil,
			"10/second 8000/month", ""},
		{"remove one period", current, nil, []Period{Second},
			"8000/month", "second:10/second>-"},
		{"remove every period", current, nil, []Period{Month, Second},
			"", "second:10/second>- month:8000/month>-"},
		{"remove an absent period", current, nil, []Period{Day},
			"10/second 8000/month", ""},
		{"set and remove others", current, []Limit{l(20, Minute)}, []Period{Month},
			"10/second 20/minute", "minute:->20/minute month:8000/month>-"},
		{"from none", nil, []Limit{l(3, Month)}, nil,
			"3/month", "month:->3/month"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.current)
			got, changes, err := MergeLimits(tt.current, tt.set, tt.remove)
			if err != nil {
				t.Fatal(err)
			}
			if show(got) != tt.want {
				t.Errorf("limits %q, want %q", show(got), tt.want)
			}
			if showChanges(changes) != tt.wantChanges {
				t.Errorf("changes %q, want %q", showChanges(changes), tt.wantChanges)
			}
			if !slices.Equal(before, tt.current) {
				t.Errorf("current changed to %v", tt.current)
			}
			if tt.want == "" && got != nil {
				t.Errorf("no limits as %#v, want nil", got)
			}
		})
	}
}

func TestMergeLimitsRejects(t *testing.T) {
	current := []Limit{{10, Second}}
	if _, _, err := MergeLimits(current, []Limit{{1, Day}, {2, Day}}, nil); !errors.Is(err, ErrDuplicatePeriod) {
		t.Errorf("two limits per day: %v, want ErrDuplicatePeriod", err)
	}
	_, _, err := MergeLimits(current, []Limit{{5, Second}}, []Period{Second})
	if !errors.Is(err, ErrDuplicatePeriod) || !strings.Contains(err.Error(), "either set it or remove it") {
		t.Errorf("set and remove the second: %v, want ErrDuplicatePeriod", err)
	}
	if _, _, err := MergeLimits(current, []Limit{{0, Day}}, nil); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("0/day: %v, want ErrInvalidLimit", err)
	}
}
