package server

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// TestSFList: the List serialization of RFC 9651 §4.1.1, with the cases
// where its algorithm fails.
func TestSFList(t *testing.T) {
	for _, tt := range []struct {
		name  string
		items []sfItem
		want  string // "" when serialization fails
	}{
		{"one item", []sfItem{{name: "month", params: []sfParam{{"q", 8000}, {"w", 2592000}}}}, `"month";q=8000;w=2592000`},
		{"two items", []sfItem{{name: "second", params: []sfParam{{"q", 10}, {"w", 1}}}, {name: "month", params: []sfParam{{"q", 8000}, {"w", 2592000}}}},
			`"second";q=10;w=1, "month";q=8000;w=2592000`},
		{"no parameters", []sfItem{{name: "day"}}, `"day"`},
		{"zero", []sfItem{{name: "day", params: []sfParam{{"r", 0}}}}, `"day";r=0`},
		{"negative", []sfItem{{name: "day", params: []sfParam{{"r", -5}}}}, `"day";r=-5`},
		{"largest integer", []sfItem{{name: "day", params: []sfParam{{"q", sfMaxInteger}}}}, `"day";q=999999999999999`},
		{"quote and backslash escaped", []sfItem{{name: `a"b\c`}}, `"a\"b\\c"`},
		{"space and tilde are printable", []sfItem{{name: " ~"}}, `" ~"`},
		{"empty string", []sfItem{{name: ""}}, `""`},
		{"key of every allowed character", []sfItem{{name: "x", params: []sfParam{{"*a-b_c.9", 1}}}}, `"x";*a-b_c.9=1`},

		{"empty list", nil, ""},
		{"integer too large", []sfItem{{name: "day", params: []sfParam{{"q", sfMaxInteger + 1}}}}, ""},
		{"integer too small", []sfItem{{name: "day", params: []sfParam{{"q", -sfMaxInteger - 1}}}}, ""},
		{"control character", []sfItem{{name: "a\nb"}}, ""},
		{"DEL", []sfItem{{name: "a\x7fb"}}, ""},
		{"non-ASCII", []sfItem{{name: "mö"}}, ""},
		{"uppercase key", []sfItem{{name: "x", params: []sfParam{{"Q", 1}}}}, ""},
		{"key starting with a digit", []sfItem{{name: "x", params: []sfParam{{"1q", 1}}}}, ""},
		{"empty key", []sfItem{{name: "x", params: []sfParam{{"", 1}}}}, ""},
		{"bad second item", []sfItem{{name: "ok"}, {name: "\x00"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sfList(tt.items)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("sfList = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestSFClamp(t *testing.T) {
	for in, want := range map[int64]int64{
		0: 0, 1: 1, -1: 0, math.MinInt64: 0, 8000: 8000,
		sfMaxInteger: sfMaxInteger, sfMaxInteger + 1: sfMaxInteger, math.MaxInt64: sfMaxInteger,
	} {
		if got := sfClamp(in); got != want {
			t.Errorf("sfClamp(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestRateLimitPolicy: one policy per limit, shortest period first, named
// for the period, with the limit's count and the period's length.
func TestRateLimitPolicy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		limits []vault.Limit
		want   string // "" for no field
	}{
		{"no limits", nil, ""},
		{"a monthly plan", []vault.Limit{{Count: 8000, Period: "month"}}, `"month";q=8000;w=2592000`},
		{"every period, stored out of order", []vault.Limit{
			{Count: 8000, Period: "month"}, {Count: 10, Period: "second"}, {Count: 1000, Period: "day"},
			{Count: 300, Period: "minute"}, {Count: 500, Period: "hour"},
		}, `"second";q=10;w=1, "minute";q=300;w=60, "hour";q=500;w=3600, "day";q=1000;w=86400, "month";q=8000;w=2592000`},
		{"a count beyond an Integer", []vault.Limit{{Count: math.MaxInt64, Period: "day"}}, `"day";q=999999999999999;w=86400`},
		{"a limit that cannot be enforced", []vault.Limit{{Count: 5, Period: "week"}}, ""},
		{"two limits of one period", []vault.Limit{{Count: 5, Period: "day"}, {Count: 6, Period: "day"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := rateLimitPolicy(&vault.Credential{Name: "c", Limits: tt.limits})
			if tt.want == "" {
				if got != nil {
					t.Errorf("RateLimit-Policy %q, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("RateLimit-Policy %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWriteRateLimit: the RateLimit field names the status's policy, with
// r the uses left and t the seconds to the period's end, rounded up as
// RateLimit-Reset is; the old fields are still sent, and agree.
func TestWriteRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)
	endOfMonth := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	policy := []string{`"second";q=10;w=1, "month";q=8000;w=2592000`}
	for _, tt := range []struct {
		name     string
		status   quota.Status
		now      time.Time
		want     string
		oldReset string
	}{
		{"month", quota.Status{Period: quota.Month, Limit: 8000, Used: 1, Remaining: 7999, ResetsAt: endOfMonth}, now,
			`"month";r=7999;t=2210400`, "2210400"},
		{"second, part of it gone", quota.Status{Period: quota.Second, Limit: 10, Used: 10, Remaining: 0, ResetsAt: now.Add(time.Second)}, now.Add(200 * time.Millisecond),
			`"second";r=0;t=1`, "1"},
		{"period over", quota.Status{Period: quota.Day, Limit: 5, Remaining: 5, ResetsAt: now}, now.Add(time.Second),
			`"day";r=5;t=0`, "0"},
		{"topped up past an Integer", quota.Status{Period: quota.Month, Limit: math.MaxInt64, Remaining: math.MaxInt64 - 1, ResetsAt: endOfMonth}, now,
			`"month";r=999999999999999;t=2210400`, "2210400"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("RateLimit", "stale") // a value left from before is replaced
			writeRateLimit(h, quota.Decision{Allowed: true, Limited: true, Status: tt.status}, policy, tt.now)
			if got := h.Values("RateLimit"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("RateLimit %q, want %q", got, tt.want)
			}
			if got := h.Values("RateLimit-Policy"); len(got) != 1 || got[0] != policy[0] {
				t.Errorf("RateLimit-Policy %q, want %q", got, policy[0])
			}
			if got := h.Get("RateLimit-Reset"); got != tt.oldReset {
				t.Errorf("RateLimit-Reset %q, want %q", got, tt.oldReset)
			}
		})
	}

	// No policy (limits that cannot be rendered): RateLimit alone.
	h := http.Header{}
	writeRateLimit(h, quota.Decision{Limited: true, Status: quota.Status{Period: quota.Hour, Limit: 1, Used: 1, ResetsAt: now.Add(time.Hour)}}, nil, now)
	if _, ok := h["Ratelimit-Policy"]; ok || h.Get("RateLimit") != `"hour";r=0;t=3600` {
		t.Errorf("without a policy: %v", h)
	}
}

// TestRateLimitValueIsSFList: the RateLimit field written directly is what
// sfList makes of the same item, for every period and for counts at and
// beyond an Integer's range.
func TestRateLimitValueIsSFList(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 500_000_000, time.UTC)
	for _, p := range []quota.Period{quota.Second, quota.Minute, quota.Hour, quota.Day, quota.Month} {
		for _, remaining := range []int64{-3, 0, 1, 7999, sfMaxInteger, math.MaxInt64} {
			for _, resets := range []time.Time{now.Add(-time.Second), now, now.Add(time.Nanosecond), now.Add(40 * 24 * time.Hour)} {
				s := quota.Status{Period: p, Limit: 8000, Remaining: remaining, ResetsAt: resets}
				want, ok := sfList([]sfItem{{name: p.String(), params: []sfParam{
					{"r", sfClamp(remaining)}, {"t", sfClamp(quota.ResetSeconds(s, now))},
				}}})
				if got := rateLimitValue(s, now); !ok || got != want {
					t.Errorf("rateLimitValue(%s, r=%d, reset %v) = %q, want %q (%v)", p, remaining, resets.Sub(now), got, want, ok)
				}
			}
		}
	}
}
