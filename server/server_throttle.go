package server

import (
	"net/netip"
	"sync"
	"time"
)

// throttleConfig tunes the slowdown of failed client authentication and
// failed API key checks.
type throttleConfig struct {
	// burst failures are allowed at once from one address; after that,
	// one more every interval.
	burst    int
	interval time.Duration
	// maxEntries bounds the table; a full table forgets entries.
	maxEntries int
}

var defaultThrottle = throttleConfig{burst: 10, interval: time.Second, maxEntries: 100_000}

// throttle slows down repeated failed client authentication and failed API
// key checks, per remote address (as resolved with
// Options.TrustedProxies), with token buckets of failures: it never
// sleeps, it tells the caller to refuse with 429 and how long to wait.
//
// It is consulted only after a credential was checked, and only when the
// check failed: a correct client secret or API key is never refused by it,
// from any address, so that no one who knows a client_id (which is public)
// can lock the real client out, nor learn from a 429 that a client_id
// exists. Only failures drain a bucket; a success costs nothing.
//
// There is no bucket per key, and none per client whose secrets keymint
// issued: those carry 256 bits (package apikey), which no online guessing
// can find, so a per-client throttle would protect nothing and would hand
// anyone a way to lock a client out. A client whose secret was imported
// and is not in keymint's format (vault.SecretHash.Legacy) may have a
// low-entropy one: its failures also drain a bucket of its own
// (legacyClientKey), so guesses from many addresses are slowed too; its
// right secret still always passes.
type throttle struct {
	cfg    throttleConfig
	mu     sync.Mutex
	byAddr map[string]bucket
}

// bucket holds failures still allowed, as of at; it refills continuously.
type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(cfg throttleConfig) *throttle {
	return &throttle{cfg: cfg, byAddr: map[string]bucket{}}
}

// addrKey is the throttled unit of a remote address (IP:port) taken as
// it is: see ipKey. Anything else is its own unit.
func addrKey(remoteAddr string) string {
	ip, _ := clientAddr(remoteAddr, nil, nil)
	if !ip.IsValid() {
		return remoteAddr
	}
	return ipKey(ip)
}

// ipKey is the throttled unit of a client's address: the IP, or for IPv6
// the /64, which one host can easily hop around in.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// legacyClientKey is the throttle's key for the failures against a client
// with a legacy secret; no address key starts with a NUL byte.
func legacyClientKey(clientID string) string { return "\x00client:" + clientID }

// level returns b's tokens at now.
func (t *throttle) level(b bucket, ok bool, now time.Time) float64 {
	burst := float64(t.cfg.burst)
	if !ok {
		return burst
	}
	tokens := b.tokens + float64(now.Sub(b.at))/float64(t.cfg.interval)
	return min(tokens, burst)
}

// wait returns how long until b allows one more failure; zero if it does.
func (t *throttle) wait(b bucket, ok bool, now time.Time) time.Duration {
	tokens := t.level(b, ok, now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(t.cfg.interval))
}

// blocked reports how long addr must wait before a failure of its is
// answered as a failure again rather than with 429; zero if it need not.
// It records nothing: for a failure that is no guess at a credential (a
// mistyped API key), which must not drain the bucket.
func (t *throttle) blocked(addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.byAddr[addr]
	return t.wait(b, ok, now)
}

// fail records a failed check of a credential from addr at now, and
// reports how long addr must wait: zero means the failure is within the
// allowance and is answered as such (401); otherwise it is answered with
// 429 and Retry-After, and does not drain the bucket further.
func (t *throttle) fail(addr string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.byAddr[addr]
	if wait := t.wait(b, ok, now); wait > 0 {
		return wait
	}
	if !ok && len(t.byAddr) >= t.cfg.maxEntries {
		t.pruneLocked(now)
	}
	t.byAddr[addr] = bucket{tokens: max(t.level(b, ok, now)-1, 0), at: now}
	return 0
}

// pruneLocked forgets buckets that have refilled, which are the same as no
// bucket; if the table is still full, it forgets one at random.
func (t *throttle) pruneLocked(now time.Time) {
	for k, b := range t.byAddr {
		if t.level(b, true, now) >= float64(t.cfg.burst) {
			delete(t.byAddr, k)
		}
	}
	if len(t.byAddr) >= t.cfg.maxEntries {
		for k := range t.byAddr {
			delete(t.byAddr, k)
			break
		}
	}
}
