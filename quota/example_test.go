package quota_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keymint/keymint/quota"
)

func ExampleParseLimit() {
	for _, s := range []string{"8000/month", "10/s", "0/month", "10/fortnight"} {
		l, err := quota.ParseLimit(s)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(l)
	}
	// Output:
	// 8000/month
	// 10/second
	// error: limit "0/month": count must be a positive whole number, as in 8000/month
	// error: limit "10/fortnight": period "fortnight" is not one of second, minute, hour, day, month, as in 8000/month
}

func ExamplePeriod_Key() {
	t := time.Date(2026, 11, 22, 21, 5, 7, 0, time.UTC)
	for _, p := range []quota.Period{quota.Second, quota.Minute, quota.Hour, quota.Day, quota.Month} {
		fmt.Printf("%-6s %-19s resets %s\n", p, p.Key(t), p.End(t).Format(time.RFC3339))
	}
	// Output:
	// second 2026-11-22T21:05:07 resets 2026-11-22T21:05:08Z
	// minute 2026-11-22T21:05    resets 2026-11-22T21:06:00Z
	// hour   2026-11-22T21       resets 2026-11-22T22:00:00Z
	// day    2026-11-22          resets 2026-11-23T00:00:00Z
	// month  2026-11             resets 2026-12-01T00:00:00Z
}

// The decision the token endpoint makes for each use, with counts that
// would come from the vault.
func ExampleAllow() {
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	limits, err := quota.ParseLimits([]string{"8000/month", "10/second"})
	if err != nil {
		panic(err)
	}
	usage := quota.Usage{Used: map[quota.Period]int64{quota.Second: 4, quota.Month: 8000}}
	statuses, err := quota.Statuses(limits, usage, now)
	if err != nil {
		panic(err)
	}

	h := http.Header{}
	if ok, blocking := quota.Allow(statuses); !ok {
		quota.WriteHeaders(h, blocking, now)
		fmt.Println("429, Retry-After:", quota.RetryAfter(blocking, now))
	} else if tightest, limited := quota.Tightest(statuses); limited {
		quota.WriteHeaders(h, tightest, now)
		fmt.Println("200")
	}
	fmt.Println("RateLimit-Limit:", h.Get("RateLimit-Limit"))
	fmt.Println("RateLimit-Remaining:", h.Get("RateLimit-Remaining"))
	fmt.Println("RateLimit-Reset:", h.Get("RateLimit-Reset"))
	// Output:
	// 429, Retry-After: 3600
	// RateLimit-Limit: 8000
	// RateLimit-Remaining: 0
	// RateLimit-Reset: 3600
}
