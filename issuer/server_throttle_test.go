package issuer

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
// refill, and a wait is reported rather than slept.
func TestThrottleBuckets(t *testing.T) {
	th := newThrottle(throttleConfig{burst: 3, interval: 2 * time.Second, trustFor: time.Minute, maxEntries: 100})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, ok := th.allow("a", "cl", true, now); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		th.failed("a", "cl", true, now)
	}
	wait, ok := th.allow("a", "cl", true, now)
	if ok || wait != 2*time.Second {
		t.Fatalf("after the burst: wait %s, ok %v", wait, ok)
	}
	// Another address is refused too, because of the client's bucket...
	if _, ok := th.allow("b", "cl", true, now); ok {
		t.Error("client bucket empty, but another address was let through")
	}
	// ...but not for an unknown client, which has no bucket...
	if _, ok := th.allow("b", "cl_other", false, now); !ok {
		t.Error("unknown client from a fresh address refused")
	}
	// ...nor from an address the client authenticated from before.
	th.succeeded("c", "cl", now)
	if _, ok := th.allow("c", "cl", true, now); !ok {
		t.Error("trusted address refused")
	}
	if th.trustedLocked("cl", "c", now.Add(2*time.Minute)) {
		t.Error("trust did not lapse")
	}
	// One interval later, one more attempt.
	now = now.Add(2 * time.Second)
	if _, ok := th.allow("a", "cl", true, now); !ok {
		t.Error("refused after a refill")
	}
	th.failed("a", "cl", true, now)
	if _, ok := th.allow("a", "cl", true, now); ok {
		t.Error("allowed two after one refill")
	}
	// Refilled buckets fill up to the burst, no more.
	now = now.Add(time.Hour)
	for i := range 3 {
		if _, ok := th.allow("a", "cl", true, now); !ok {
			t.Fatalf("after an hour, attempt %d refused", i)
		}
		th.failed("a", "cl", true, now)
	}
	if _, ok := th.allow("a", "cl", true, now); ok {
		t.Error("the burst grew beyond its size")
	}
}

// TestThrottleBounded: a flood of addresses does not grow the tables
// beyond their bound.
func TestThrottleBounded(t *testing.T) {
	th := newThrottle(throttleConfig{burst: 2, interval: time.Second, trustFor: time.Hour, maxEntries: 50})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		addr := fmt.Sprintf("198.51.100.%d", i)
		th.failed(addr, "cl", false, now)
		th.succeeded(addr, "cl", now)
		now = now.Add(time.Millisecond)
	}
	if len(th.byAddr) > 50 || len(th.trusted) > 50 {
		t.Errorf("tables grew to %d and %d entries", len(th.byAddr), len(th.trusted))
	}
}
