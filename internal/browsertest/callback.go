package browsertest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Callback is a client's redirect URI for the authorization-code flow: an
// HTTP server on 127.0.0.1 (a loopback redirect URI, as RFC 8252 §7.3 has
// native apps use) that records each request to its path and answers with
// a small page, so the browser's redirect to it ends on a loaded page and
// the test reads code and state from it. Register URL as the client's
// redirect_uri.
type Callback struct {
	// URL is http://127.0.0.1:PORT/callback.
	URL string

	t   testing.TB
	mu  sync.Mutex
	got []*url.URL
}

// NewCallback starts a Callback server, closed by the test's cleanup.
func NewCallback(t testing.TB) *Callback {
	t.Helper()
	c := &Callback{t: t}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/callback"
	return c
}

func (c *Callback) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" {
		http.NotFound(w, r) // such as the browser's /favicon.ico
		return
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	c.mu.Lock()
	c.got = append(c.got, &u)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("<!doctype html><title>Callback</title><h1 id=callback>Callback received</h1>\n"))
}

// Received returns the URLs the browser requested at the callback, in
// order, each absolute, with its query.
func (c *Callback) Received() []*url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*url.URL(nil), c.got...)
}

// Query returns the query of the one request the callback received (code
// and state, or error and error_description), failing the test if it
// received none or more than one. The browser's Click returns only once
// the callback's page has loaded, so there is nothing to wait for.
func (c *Callback) Query() url.Values {
	c.t.Helper()
	got := c.Received()
	if len(got) != 1 {
		c.t.Fatalf("browsertest: the callback %s received %d requests, want 1: %v", c.URL, len(got), got)
	}
	return got[0].Query()
}
