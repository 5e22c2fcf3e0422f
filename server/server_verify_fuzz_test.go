package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// lastWrite is a log sink that keeps only the last line written.
type lastWrite struct {
	mu   sync.Mutex
	last string
}

func (l *lastWrite) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = string(p)
	return len(p), nil
}

func (l *lastWrite) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// FuzzVerifyHeader sends /verify requests with arbitrary Authorization and
// X-API-Key fields, each present once, twice or not at all (mask: bits 0
// and 1 for the two Authorization values, 2 and 3 for the X-API-Key ones).
// The header parsing never panics and finds a key only in one of the
// fields, trimmed, or refuses with 400 or 401; the handler agrees with it,
// accepts exactly the real key, answers every request with a short,
// uncached JSON answer (and the Bearer challenge on 401), and never logs a
// key.
func FuzzVerifyHeader(f *testing.F) {
	var log lastWrite
	e := newEnv(f, func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	server.SetAuthThrottle(e.srv, 1<<30, time.Nanosecond) // every input gets checked
	// The fuzzing workers each build their own vault, but run inputs the
	// coordinator found: the key has the same id and secret everywhere.
	const keyID = "key_fuzzFUZZfuzzFUZZ"
	secret := fixedSecret(f, "km", "verify")
	err := e.vault.Update(func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{ID: keyID, Name: "fuzz", Scopes: []string{"a", "b"}}}, secret)
	})
	if err != nil {
		f.Fatal(err)
	}
	e.reload(f)
	other := fixedSecret(f, "km", "other")

	f.Add(uint8(1), "Bearer "+secret, "", "", "")
	f.Add(uint8(1), "bearer  "+secret+" \t", "", "", "")
	f.Add(uint8(4), "", "", secret, "")
	f.Add(uint8(4), "", "", " "+secret+"\t", "")
	f.Add(uint8(5), "Bearer "+secret, "", secret, "")
	f.Add(uint8(5), "Bearer "+secret, "", other, "")
	f.Add(uint8(5), "Basic dXNlcjpwYXNz", "", secret, "")
	f.Add(uint8(3), "Bearer "+secret, "Bearer "+secret, "", "")
	f.Add(uint8(12), "", "", secret, secret)
	f.Add(uint8(1), "Bearer "+typo(secret), "", "", "")
	f.Add(uint8(1), "Bearer "+other, "", "", "")
	f.Add(uint8(1), "Bearer", "", "", "")
	f.Add(uint8(1), "Bearer ", "", "", "")
	f.Add(uint8(1), " Bearer "+secret, "", "", "")
	f.Add(uint8(1), "Bearer\t"+secret, "", "", "")
	f.Add(uint8(1), secret, "", "", "")
	f.Add(uint8(0), "", "", "", "")
	f.Add(uint8(4), "", "", "", "")
	f.Add(uint8(4), "", "", secret+"\r\nX-Other: 1", "")

	f.Fuzz(func(t *testing.T, mask uint8, auth1, auth2, xkey1, xkey2 string) {
		h := http.Header{}
		for i, v := range []string{auth1, auth2, xkey1, xkey2} {
			if mask&(1<<i) == 0 {
				continue
			}
			name := "Authorization"
			if i >= 2 {
				name = "X-Api-Key"
			}
			h[name] = append(h[name], v)
		}

		// The parser.
		key, status := server.KeyFromHeaders(h)
		switch status {
		case 0:
			if key == "" || len(key) > 512 || strings.Trim(key, " \t") != key {
				t.Fatalf("key %q", key)
			}
			if len(h["Authorization"]) > 1 || len(h["X-Api-Key"]) > 1 {
				t.Fatalf("a key from repeated fields: %v", h)
			}
			inAuth := false
			if a := h["Authorization"]; len(a) == 1 {
				words := strings.Fields(a[0])
				inAuth = len(words) > 0 && strings.EqualFold(words[0], "Bearer") && strings.HasSuffix(strings.TrimRight(a[0], " \t"), key)
			}
			inX := len(h["X-Api-Key"]) == 1 && strings.Trim(h["X-Api-Key"][0], " \t") == key
			if !inAuth && !inX {
				t.Fatalf("key %q is in no field: %v", key, h)
			}
		case 400, 401:
			if key != "" {
				t.Fatalf("status %d with key %q", status, key)
			}
		default:
			t.Fatalf("parser status %d", status)
		}

		// The handler.
		r := httptest.NewRequest(http.MethodGet, "/verify", nil)
		r.Header = h
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		switch {
		case status != 0 && w.Code != status:
			t.Fatalf("parser says %d, handler %d", status, w.Code)
		case status == 0 && key == secret && w.Code != 200:
			t.Fatalf("the real key refused: %d %s", w.Code, w.Body)
		case status == 0 && key != secret && w.Code != 401:
			t.Fatalf("key %q: %d, want 401", key, w.Code)
		}
		if w.Code == 200 && w.Header().Get("X-Keymint-Key-Id") != keyID {
			t.Fatalf("200 for key id %q", w.Header().Get("X-Keymint-Key-Id"))
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d without Cache-Control: no-store", w.Code)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") != `Bearer realm="keymint"` {
			t.Fatalf("401 with WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Body.Len() > 100 {
			t.Fatalf("body %q", w.Body)
		}
		line := log.String()
		if !strings.Contains(line, `"path":"GET /verify"`) {
			t.Fatalf("no log line: %q", line)
		}
		if strings.Contains(line, secret) {
			t.Fatalf("the log carries the key: %s", line)
		}
		if _, err := apikey.Parse(key); err == nil && strings.Contains(line, key) {
			t.Fatalf("the log carries the key sent: %s", line)
		}
	})
}
