package main

import (
	"testing"
	"time"
)

func TestRelTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{500 * time.Millisecond, "now"},
		{-5 * time.Second, "5 seconds ago"},
		{time.Second, "in 1 second"},
		{90 * time.Second, "in 2 minutes"},
		{-119 * time.Minute, "2 hours ago"},
		{47 * time.Hour, "in 47 hours"},
		{90 * 24 * time.Hour, "in 3 months"},
		{-3 * 365 * 24 * time.Hour, "3 years ago"},
	}
	for _, tt := range tests {
		at := now.Add(tt.d)
		if got := relTime(&at, now, "never"); got != tt.want {
			t.Errorf("relTime(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := relTime(nil, now, "never"); got != "never" {
		t.Errorf("relTime(nil) = %q", got)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:             "24h",
		time.Hour + 30*time.Minute: "1h30m",
		10 * time.Minute:           "10m",
		90 * time.Second:           "1m30s",
		0:                          "0s",
		time.Hour + 5*time.Second:  "1h0m5s",
		500 * time.Millisecond:     "500ms",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
