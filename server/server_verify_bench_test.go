package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// The /verify benchmarks: one gateway check through the whole handler, for
// a key without limits and for one with a limit it never reaches, beside a
// bare handler that does only the work that cannot be avoided (one HMAC
// and one map lookup). All three run the same requests and recorders, in
// parallel, without the network; bench/run measures the same over
// loopback with wrk.

// verifyRequests runs GET /verify with key through h on every
// benchmark goroutine.
func verifyRequests(b *testing.B, h http.Handler, key string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/verify", nil)
			r.Header.Set("Authorization", "Bearer "+key)
			r.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// newVerifyBenchEnv is an env logging as keymint serve does (text, info
// level), to nowhere, with one API key, on the real clock.
func newVerifyBenchEnv(b *testing.B, limits []vault.Limit) (*env, testKey) {
	e := newEnv(b, func(o *server.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	k := e.addKey(b, nil, vault.Key{Credential: vault.Credential{Name: "bench", Scopes: []string{"api:read"}, Limits: limits}})
	e.reload(b)
	e.clock.UseRealTime()
	return e, k
}

// BenchmarkVerifyEndpoint is GET /verify through the whole handler
// (header parsing, throttle, checksum, HMAC, snapshot lookup, quota lease,
// headers, log line), for a key without a limit and for one with a monthly
// limit it never reaches. Both count every use in the vault through
// leased blocks; the limited key also gets RateLimit fields.
func BenchmarkVerifyEndpoint(b *testing.B) {
	for _, c := range []struct {
		name   string
		limits []vault.Limit
	}{
		{"unlimited", nil},
		{"limit=1e9/month", []vault.Limit{{Count: 1_000_000_000, Period: "month"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, k := newVerifyBenchEnv(b, c.limits)
			verifyRequests(b, e.srv, k.secret)
		})
	}
}

// BenchmarkVerifyBareHMAC is the yardstick of BenchmarkVerifyEndpoint: a
// handler that takes the Bearer key, computes its HMAC under the vault's
// key (as the server does) and looks it up in a map of MAC to key id, and
// answers 200 with the key id. No checksum, throttle, expiry, counting,
// or log.
func BenchmarkVerifyBareHMAC(b *testing.B) {
	e, k := newVerifyBenchEnv(b, nil)
	ids := map[string]string{string(e.vault.MAC(k.secret)): k.id}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		id, known := ids[string(e.vault.MAC(key))]
		if !ok || !known {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Keymint-Key-Id", id)
		w.WriteHeader(http.StatusOK)
	})
	verifyRequests(b, bare, k.secret)
}
