package quota

import (
	"net/http"
	"strconv"
	"time"
)

// WriteHeaders sets the rate limit fields of a response from s, the status
// chosen by [Tightest] (or, for a 429, the blocking status from [Allow]):
//
//	RateLimit-Limit       the effective limit of the period
//	RateLimit-Remaining   uses left in it
//	RateLimit-Reset       seconds until it resets
//
// as draft-ietf-httpapi-ratelimit-headers (up to -06) defines them, where
// RateLimit-Reset is delta-seconds, a non-negative integer. The
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset twins carry
// the same values for clients that only know the older names. Note that
// X-RateLimit-Reset is delta-seconds here too: some services send a Unix
// time in it, but keymint keeps both families identical so a client reading
// either gets the same answer, and a delta is immune to clock skew.
//
// It is on the path of every counted request of a server, so it allocates
// little: the keys are set already canonical, and each pair of twins shares
// one value slice, which net/http only reads.
func WriteHeaders(h http.Header, s Status, now time.Time) {
	v := [3]string{
		strconv.FormatInt(s.Limit, 10),
		strconv.FormatInt(max(s.Remaining, 0), 10),
		strconv.FormatInt(ResetSeconds(s, now), 10),
	}
	values := v[:] // one allocation for the three value slices
	limit, remaining, reset := values[0:1:1], values[1:2:2], values[2:3:3]
	h[fieldLimit], h[fieldXLimit] = limit, limit
	h[fieldRemaining], h[fieldXRemaining] = remaining, remaining
	h[fieldReset], h[fieldXReset] = reset, reset
}

// The fields WriteHeaders sets, canonical as http.Header keys them.
var (
	fieldLimit      = http.CanonicalHeaderKey("RateLimit-Limit")
	fieldRemaining  = http.CanonicalHeaderKey("RateLimit-Remaining")
	fieldReset      = http.CanonicalHeaderKey("RateLimit-Reset")
	fieldXLimit     = http.CanonicalHeaderKey("X-RateLimit-Limit")
	fieldXRemaining = http.CanonicalHeaderKey("X-RateLimit-Remaining")
	fieldXReset     = http.CanonicalHeaderKey("X-RateLimit-Reset")
)

// ResetSeconds is what RateLimit-Reset says of s at now: the whole seconds
// until its period ends (see secondsUntil). Other fields that state the
// same moment use it, so that they agree.
func ResetSeconds(s Status, now time.Time) int64 { return secondsUntil(s.ResetsAt, now) }

// RetryAfter returns the delay in seconds to send in the Retry-After field
// of a 429 response, given the blocking status from [Allow]. It is at least
// 1: the response says "not now", and 0 would invite a client to retry in a
// tight loop even when the period turned over while the request was handled.
func RetryAfter(s Status, now time.Time) int {
	return int(max(secondsUntil(s.ResetsAt, now), 1))
}

// secondsUntil returns the whole seconds from now until t, rounded up so a
// client that waits that long finds the period over (0.2 s left is 1, not
// 0), and 0 if t has passed.
func secondsUntil(t, now time.Time) int64 {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	seconds := int64(d / time.Second)
	if d%time.Second != 0 {
		seconds++
	}
	return seconds
}
