package server

import (
	"fmt"
	"testing"
	"time"
)

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":             "192.0.2.1",
		"[::ffff:192.0.2.1]:1234":    "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":          "fe80::/64",
		"not an address":             "not an address",
		"[::1]:8080":                 "::/64",
		"127.0.0.1:8080":             "127.0.0.1",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestThrottleBuckets: burst failures pass, the next waits for the
// refill, and a wait is reported rather than slept; a refused failure does
// not drain the bucket further; addresses have separate buckets.
func TestThrottleBuckets(t *testing.T) {
	th := newThrottle(throttleConfig{burst: 3, interval: 2 * time.Second, maxEntries: 100})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if wait := th.blocked("a", now); wait != 0 {
			t.Fatalf("before failure %d: blocked for %s", i, wait)
		}
		if wait := th.fail("a", now); wait != 0 {
			t.Fatalf("failure %d refused, wait %s", i, wait)
		}
	}
	if wait := th.fail("a", now); wait != 2*time.Second {
		t.Fatalf("after the burst: wait %s, want 2s", wait)
	}
	if wait := th.blocked("a", now); wait != 2*time.Second {
		t.Fatalf("blocked after the burst: %s, want 2s", wait)
	}
	// Another address has its own bucket.
	if wait := th.fail("b", now); wait != 0 {
		t.Errorf("a fresh address refused, wait %s", wait)
	}
	// Refused failures do not push the refill back.
	for range 5 {
		th.fail("a", now)
	}
	if wait := th.blocked("a", now.Add(time.Second)); wait != time.Second {
		t.Errorf("half an interval later: wait %s, want 1s", wait)
	}
	// One interval later, one more failure.
	now = now.Add(2 * time.Second)
	if wait := th.fail("a", now); wait != 0 {
		t.Errorf("refused after a refill, wait %s", wait)
	}
	if wait := th.fail("a", now); wait == 0 {
		t.Error("allowed two after one refill")
	}
	// Refilled buckets fill up to the burst, no more.
	now = now.Add(time.Hour)
	for i := range 3 {
		if wait := th.fail("a", now); wait != 0 {
			t.Fatalf("after an hour, failure %d refused", i)
		}
	}
	if wait := th.fail("a", now); wait == 0 {
		t.Error("the burst grew beyond its size")
	}
}

// TestThrottleBounded: a flood of addresses does not grow the table beyond
// its bound.
func TestThrottleBounded(t *testing.T) {
	th := newThrottle(throttleConfig{burst: 2, interval: time.Second, maxEntries: 50})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		th.fail(fmt.Sprintf("198.51.100.%d", i), now)
		now = now.Add(time.Millisecond)
	}
	if len(th.byAddr) > 50 {
		t.Errorf("the table grew to %d entries", len(th.byAddr))
	}
}
