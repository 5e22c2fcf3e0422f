package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// The rate limit fields of a response that counted a use (/token and
// /verify, the 429s of a limit reached included), for a credential with
// limits. Two generations are sent side by side:
//
//   - RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (and their
//     X-RateLimit- twins), of drafts -00 to -06 of
//     draft-ietf-httpapi-ratelimit-headers, written by [quota.WriteHeaders];
//
//   - RateLimit-Policy and RateLimit, of the current draft
//     (draft-ietf-httpapi-ratelimit-headers-11; -08 to -10 define them
//     alike), both Lists of Items of Structured Field Values (RFC 9651):
//
//     RateLimit-Policy: "second";q=10;w=1, "month";q=8000;w=2592000
//     RateLimit: "second";r=9;t=1
//
// RateLimit-Policy has one quota policy per limit of the credential,
// shortest period first, named for its period: q is the limit's count (the
// plan, without a top-up: the field is to stay the same from response to
// response) and w the period's nominal length in seconds (a month is 30
// days; keymint's periods are calendar periods in UTC, and t below says
// when the current one really ends). RateLimit has one service limit: the
// limit the old fields report, which is the tightest one after the use was
// counted, or on a 429 the exhausted one that frees up last, with r the
// uses left in its period (a top-up included) and t the seconds until the
// period ends, equal to RateLimit-Reset and, on a 429, to Retry-After. The
// draft lets a server name only the policy closest to exhaustion (its
// appendix B.1.2); a client of a single 8000/month limit reads its month in
// both fields.

// Canonical names of the fields, as http.Header keys them.
var (
	fieldRateLimit       = http.CanonicalHeaderKey("RateLimit")
	fieldRateLimitPolicy = http.CanonicalHeaderKey("RateLimit-Policy")
)

// periodWindow is the w of a period's policy: its length in seconds, a
// month taken as 30 days.
var periodWindow = map[quota.Period]int64{
	quota.Second: 1,
	quota.Minute: 60,
	quota.Hour:   3600,
	quota.Day:    86400,
	quota.Month:  30 * 86400,
}

// writeRateLimit sets every rate limit field of a response from d, the
// decision on a use of a credential with limits (d.Limited), and policy,
// the credential's RateLimit-Policy value (see rateLimitPolicy; nil sends
// none).
func writeRateLimit(h http.Header, d quota.Decision, policy []string, now time.Time) {
	quota.WriteHeaders(h, d.Status, now)
	if policy != nil {
		h[fieldRateLimitPolicy] = policy
	}
	h[fieldRateLimit] = []string{rateLimitValue(d.Status, now)}
}

// rateLimitValue renders the RateLimit field of status s at now: the List
// that sfList makes of one item named for the period, with r and t (see
// TestRateLimitValueIsSFList), written directly as it is sent with every
// counted use. A period's name is a valid String as it is.
func rateLimitValue(s quota.Status, now time.Time) string {
	var buf [64]byte
	b := append(buf[:0], '"')
	b = append(b, s.Period.String()...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, sfClamp(s.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, sfClamp(quota.ResetSeconds(s, now)), 10)
	return string(b)
}

// rateLimitPolicy renders the RateLimit-Policy field of credential c, as
// the one-element slice http.Header holds, or nil when c has no limits or
// limits that cannot be enforced (the use is then refused anyway).
func rateLimitPolicy(c *vault.Credential) []string {
	limits, err := quota.LimitsOf(c)
	if err != nil || len(limits) == 0 {
		return nil
	}
	items := make([]sfItem, 0, len(limits))
	for _, l := range limits {
		items = append(items, sfItem{
			name:   l.Period.String(),
			params: []sfParam{{"q", sfClamp(l.Count)}, {"w", periodWindow[l.Period]}},
		})
	}
	v, ok := sfList(items)
	if !ok {
		return nil
	}
	return []string{v}
}

// Structured Field Values (RFC 9651), the little of them these fields
// need: a List of Items whose bare item is a String, with Integer
// parameters.

// sfMaxInteger is the largest Integer a structured field carries (RFC 9651
// §3.3.1: at most 15 digits).
const sfMaxInteger = 999_999_999_999_999

type sfParam struct {
	key   string
	value int64
}

type sfItem struct {
	name   string // a String
	params []sfParam
}

// sfClamp brings a non-negative count into the range of an Integer: a
// count beyond it (a top-up of "no practical limit") is sent as the
// largest, and a negative one as 0.
func sfClamp(n int64) int64 {
	return min(max(n, 0), sfMaxInteger)
}

// sfList serializes items as a List (RFC 9651 §4.1.1). It reports false,
// as the RFC's algorithm fails, for an empty list, a name that is not a
// valid String, a key that is not a valid key or an Integer out of range.
func sfList(items []sfItem) (string, bool) {
	if len(items) == 0 {
		return "", false
	}
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		if !sfString(&b, it.name) {
			return "", false
		}
		for _, p := range it.params {
			if !sfKey(p.key) || p.value > sfMaxInteger || p.value < -sfMaxInteger {
				return "", false
			}
			b.WriteByte(';')
			b.WriteString(p.key)
			b.WriteByte('=')
			b.WriteString(strconv.FormatInt(p.value, 10))
		}
	}
	return b.String(), true
}

// sfString writes s as a String (RFC 9651 §4.1.6): in double quotes, with
// " and \ escaped; only printable ASCII may be in it.
func sfString(b *strings.Builder, s string) bool {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return true
}

// sfKey reports whether k is a valid key (RFC 9651 §4.1.1.3): a lowercase
// letter or *, then lowercase letters, digits, _, -, . and *.
func sfKey(k string) bool {
	if k == "" || !(k[0] >= 'a' && k[0] <= 'z' || k[0] == '*') {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}
