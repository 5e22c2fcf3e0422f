package quota

import (
	"net/http"
	"testing"
	"time"
)

func TestWriteHeaders(t *testing.T) {
	tests := []struct {
		name      string
		status    Status
		now       time.Time
		limit     string
		remaining string
		reset     string
	}{
		{"month, partial second rounds up", monthOne, testNow, "8000", "1", "701693"},
		{"second, 0.75 s left is 1", secondOpen, testNow, "10", "7", "1"},
		{"exactly on a whole second", monthOne, utc(2026, 11, 30, 23, 59, 0, 0), "8000", "1", "60"},
		{"a nanosecond left is 1", monthOne, utc(2026, 11, 30, 23, 59, 59, 999999999), "8000", "1", "1"},
		{"reset already passed is 0", monthOne, utc(2026, 12, 1, 0, 0, 1, 0), "8000", "1", "0"},
		{"reset exactly now is 0", monthOne, utc(2026, 12, 1, 0, 0, 0, 0), "8000", "1", "0"},
		{"exhausted", monthFull, testNow, "8000", "0", "701693"},
		{"negative remaining from a hand-built status shows 0", Status{Limit: 5, Remaining: -2, ResetsAt: testNow.Add(time.Hour)}, testNow, "5", "0", "3600"},
		{"now in another zone", secondOpen, testNow.In(time.FixedZone("UTC+14", 14*60*60)), "10", "7", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("RateLimit-Remaining", "stale") // a value left from before must be replaced
			WriteHeaders(h, tt.status, tt.now)
			want := map[string]string{
				"RateLimit-Limit":       tt.limit,
				"RateLimit-Remaining":   tt.remaining,
				"RateLimit-Reset":       tt.reset,
				"X-RateLimit-Limit":     tt.limit,
				"X-RateLimit-Remaining": tt.remaining,
				"X-RateLimit-Reset":     tt.reset,
			}
			if len(h) != len(want) {
				t.Errorf("WriteHeaders set %d fields, want %d: %v", len(h), len(want), h)
			}
			for name, value := range want {
				if got := h.Values(name); len(got) != 1 || got[0] != value {
					t.Errorf("%s = %q, want [%q]", name, got, value)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		now    time.Time
		want   int
	}{
		{"second limit, 0.75 s left", secondFull, testNow, 1},
		{"minute limit, 52.75 s left", minuteFull, testNow, 53},
		{"month limit", monthFull, testNow, 701693},
		{"exactly 60 s", monthFull, utc(2026, 11, 30, 23, 59, 0, 0), 60},
		{"reset passed while handling: still 1", monthFull, utc(2026, 12, 1, 0, 0, 3, 0), 1},
		{"reset exactly now: 1", monthFull, utc(2026, 12, 1, 0, 0, 0, 0), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RetryAfter(tt.status, tt.now); got != tt.want {
				t.Errorf("RetryAfter = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestTooManyRequests checks that a 429 built as Allow's comment advises
// gives a Retry-After that agrees with RateLimit-Reset.
func TestTooManyRequests(t *testing.T) {
	ok, blocking := Allow([]Status{secondFull, monthFull})
	if ok {
		t.Fatal("Allow = true with every limit spent")
	}
	h := http.Header{}
	WriteHeaders(h, blocking, testNow)
	retry := RetryAfter(blocking, testNow)
	if got := h.Get("RateLimit-Reset"); got != "701693" || retry != 701693 {
		t.Errorf("RateLimit-Reset = %s and Retry-After = %d, want both 701693 (the month)", got, retry)
	}
}
