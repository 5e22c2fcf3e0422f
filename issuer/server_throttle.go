package issuer

import (
	"net/netip"
	"sync"
	"time"
)

// throttleConfig tunes the slowdown of failed client authentication and
// failed API key checks.
type throttleConfig struct {
	// burst failures are allowed at once from one address, or against one
	// client; after that, one more every interval.
	burst    int
	interval time.Duration
	// trustFor is how long a client's successful authentication from an
	// address exempts that client and address from the client's own
	// throttle, so that someone who knows a client_id (which is public)
	// cannot lock the real client out by failing on purpose.
	trustFor time.Duration
	// maxEntries bounds each table; a full table forgets entries.
	maxEntries int
}

var defaultThrottle = throttleConfig{burst: 10, interval: time.Second, trustFor: time.Hour, maxEntries: 100_000}

// throttle slows down repeated failed client authentication (per remote
// address and per client) and failed API key checks (per address), with token buckets of failures: it never sleeps,
// it tells the caller to refuse with 429 and how long to wait. Only
// failures drain a bucket; a success costs nothing.
type throttle struct {
	cfg      throttleConfig
	mu       sync.Mutex
	byAddr   map[string]bucket
	byClient map[string]bucket
	trusted  map[trustKey]time.Time // until when
}

type trustKey struct{ clientID, addr string }

// bucket holds failures still allowed, as of at; it refills continuously.
type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(cfg throttleConfig) *throttle {
	return &throttle{
		cfg:      cfg,
		byAddr:   map[string]bucket{},
		byClient: map[string]bucket{},
		trusted:  map[trustKey]time.Time{},
	}
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

// allow reports whether an authentication attempt as clientID from addr
// may go ahead at now, and if not, how long to wait. known says whether
// the client exists: only existing clients have a bucket of their own.
func (t *throttle) allow(addr, clientID string, known bool, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.byAddr[addr]
	wait := t.wait(b, ok, now)
	if known && !t.trustedLocked(clientID, addr, now) {
		b, ok := t.byClient[clientID]
		wait = max(wait, t.wait(b, ok, now))
	}
	return wait, wait == 0
}

func (t *throttle) trustedLocked(clientID, addr string, now time.Time) bool {
	until, ok := t.trusted[trustKey{clientID, addr}]
	return ok && now.Before(until)
}

// failed records a failed authentication.
func (t *throttle) failed(addr, clientID string, known bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.take(t.byAddr, addr, now)
	if known {
		t.take(t.byClient, clientID, now)
	}
}

func (t *throttle) take(m map[string]bucket, key string, now time.Time) {
	b, ok := m[key]
	if !ok && len(m) >= t.cfg.maxEntries {
		t.pruneBuckets(m, now)
	}
	m[key] = bucket{tokens: max(t.level(b, ok, now)-1, 0), at: now}
}

// succeeded records a successful authentication, which makes the pair
// trusted for a while.
func (t *throttle) succeeded(addr, clientID string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := trustKey{clientID, addr}
	if _, ok := t.trusted[k]; !ok && len(t.trusted) >= t.cfg.maxEntries {
		for k, until := range t.trusted {
			if !now.Before(until) {
				delete(t.trusted, k)
			}
		}
		if len(t.trusted) >= t.cfg.maxEntries {
			for k := range t.trusted { // forget one at random
				delete(t.trusted, k)
				break
			}
		}
	}
	t.trusted[k] = now.Add(t.cfg.trustFor)
}

// pruneBuckets forgets buckets that have refilled, which are the same as no
// bucket; if the table is still full, it forgets one at random.
func (t *throttle) pruneBuckets(m map[string]bucket, now time.Time) {
	for k, b := range m {
		if t.level(b, true, now) >= float64(t.cfg.burst) {
			delete(m, k)
		}
	}
	if len(m) >= t.cfg.maxEntries {
		for k := range m {
			delete(m, k)
			break
		}
	}
}
