package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymint/keymint/server"
)

// BenchmarkTokenEndpoint is one client_credentials request through the whole
// handler (auth, throttle, quota lease, mint, JSON, log line), without the
// network. bench/run measures the same over loopback against a bare handler.
func BenchmarkTokenEndpoint(b *testing.B) {
	e := newEnv(b, func(o *server.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	c := e.clients["erp"]
	e.clock.UseRealTime()
	body := "grant_type=client_credentials"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(c.id, c.secret)
			r.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
