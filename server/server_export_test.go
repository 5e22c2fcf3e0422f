package server

import "time"

// SetAuthThrottle replaces s's failed-authentication throttle, for tests
// that need another burst (the fuzz test turns it off with a huge one).
// Call it before s serves.
func SetAuthThrottle(s *Server, burst int, interval time.Duration) {
	s.throttle = newThrottle(throttleConfig{burst: burst, interval: interval, maxEntries: 1000})
}

// ReloadCounts returns how many partial and full reloads s has made since
// it started (the load of [New] is not counted).
func ReloadCounts(s *Server) (partial, full int64) {
	return s.reloads.partial.Load(), s.reloads.full.Load()
}

// Poll runs one poll of the vault, as Run does every ReloadInterval. Call
// it only while Run is not running.
func Poll(s *Server) { s.poll() }

// FullLoad reads the whole vault into a snapshot, as [New] does, and
// throws it away: for comparison in benchmarks.
func FullLoad(s *Server) error {
	_, err := s.load()
	return err
}

// ServedClient returns the name of the client with this id in s's
// snapshot, and whether it is there.
func ServedClient(s *Server, id string) (name string, ok bool) {
	c, ok := s.current().clients.get(id)
	if !ok {
		return "", false
	}
	return c.Name, true
}

// ServedKey returns the name of the API key with this id in s's snapshot,
// and whether it is there.
func ServedKey(s *Server, id string) (name string, ok bool) {
	k, ok := s.current().keysByID.get(id)
	if !ok {
		return "", false
	}
	return k.key.Name, true
}
