package server

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkRequestMetrics is what metrics add to a /verify request: the
// route's children looked up, its latency observed and its status code
// counted, the outcome counted, and the count step timed.
func BenchmarkRequestMetrics(b *testing.B) {
	m := newMetrics(&Server{clock: time.Now, reloadInterval: time.Second})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			m.verify[verifyAccepted].Inc()
			if time.Since(start) > leaseWaitThreshold {
				m.leaseWaits[1].Inc()
			}
			m.route("GET /verify").observe(http.StatusOK, 5*time.Microsecond)
		}
	})
}
