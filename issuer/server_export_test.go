package issuer

import "time"

// SetAuthThrottle replaces s's failed-authentication throttle, for tests
// that need another burst (the fuzz test turns it off with a huge one).
// Call it before s serves.
func SetAuthThrottle(s *Server, burst int, interval time.Duration) {
	s.throttle = newThrottle(throttleConfig{burst: burst, interval: interval, trustFor: time.Hour, maxEntries: 1000})
}
