package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// testKey is an API key of the test vault and its secret.
type testKey struct {
	id, name, secret string
	scopes           string // as X-Keymint-Scopes says them
}

// newKeySecret makes an API key secret of the env's vault (prefix km) and
// keeps it for the log checks.
func (e *env) newKeySecret(t testing.TB) string {
	t.Helper()
	s, err := apikey.Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, s)
	return s
}

// addKey creates k through v (the server's own handle when nil) and
// returns it with its secret. The server sees it after a reload.
func (e *env) addKey(t testing.TB, v *vault.Vault, k vault.Key) testKey {
	t.Helper()
	if v == nil {
		v = e.vault
	}
	secret := e.newKeySecret(t)
	if err := v.Update(func(tx *vault.Tx) error { return tx.CreateKey(&k, secret) }); err != nil {
		t.Fatalf("create key %s: %v", k.Name, err)
	}
	return testKey{id: k.ID, name: k.Name, secret: secret, scopes: strings.Join(k.Scopes, " ")}
}

func (e *env) reload(t testing.TB) {
	t.Helper()
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
}

// verify sends GET /verify with h from remote (a fixed address if empty).
func (e *env) verify(t testing.TB, h http.Header, remote string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, request{method: http.MethodGet, path: "/verify", header: h, remote: remote})
}

func bearer(secret string) http.Header {
	return http.Header{"Authorization": {"Bearer " + secret}}
}

func xAPIKey(secret string) http.Header {
	return http.Header{"X-Api-Key": {secret}}
}

// typo changes one character of a secret's random part: the checksum fails.
func typo(secret string) string {
	i := strings.LastIndexByte(secret, '_') + 5
	c := byte('x')
	if secret[i] == 'x' {
		c = 'y'
	}
	return secret[:i] + string(c) + secret[i+1:]
}

var rateLimitFields = []string{
	"RateLimit-Policy", "RateLimit",
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
}

// checkRateLimit checks the fields of the current ratelimit draft: one
// RateLimit-Policy and one RateLimit field, with these values.
func checkRateLimit(t testing.TB, w *httptest.ResponseRecorder, policy, limit string) {
	t.Helper()
	if got := w.Header().Values("RateLimit-Policy"); len(got) != 1 || got[0] != policy {
		t.Errorf("%d: RateLimit-Policy %q, want %q", w.Code, got, policy)
	}
	if got := w.Header().Values("RateLimit"); len(got) != 1 || got[0] != limit {
		t.Errorf("%d: RateLimit %q, want %q", w.Code, got, limit)
	}
}

// checkVerifyResponse checks what every /verify response has: no caching,
// a short JSON body (none for HEAD), and for 401 the Bearer challenge.
func checkVerifyResponse(t testing.TB, method string, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("%d: Cache-Control %q, want no-store", w.Code, got)
	}
	if w.Code == http.StatusUnauthorized {
		if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != `Bearer realm="keymint"` {
			t.Errorf("401: WWW-Authenticate %q", got)
		}
	} else if got := w.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("%d with WWW-Authenticate %q", w.Code, got)
	}
	if method == http.MethodHead {
		if w.Body.Len() != 0 {
			t.Errorf("HEAD: body %q", w.Body)
		}
		return
	}
	if w.Body.Len() > 100 {
		t.Errorf("%d: body of %d bytes: %s", w.Code, w.Body.Len(), w.Body)
	}
	var body map[string]any
	decodeJSON(t, w.Body.Bytes(), &body)
	if w.Code != http.StatusOK && len(body) != 1 {
		t.Errorf("%d: body %s, want the error alone", w.Code, w.Body)
	}
	if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
		t.Errorf("%d: Content-Length %q for %d bytes", w.Code, got, w.Body.Len())
	}
}

// TestVerifyEndpoint: the gateway check accepts a key in Authorization: Bearer or
// X-API-Key and says whose it is; every other request is refused with a
// short, uniform answer.
func TestVerifyEndpoint(t *testing.T) {
	e := newEnv(t)
	reader := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "reader", Scopes: []string{"invoices:read", "invoices:write"}}})
	bare := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "bare"}})
	expired := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "expired", Scopes: []string{"x"}, ExpiresAt: new(serverEpoch.Add(-time.Second))}})
	future := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "future", ExpiresAt: new(serverEpoch.Add(time.Hour))}})
	e.reload(t)
	unknown := e.newKeySecret(t)
	clientSecret := e.clients["erp"].secret // a client's secret is no API key

	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name   string
		method string // GET unless set
		header http.Header
		status int
		key    *testKey // the key of a 200
		code   string   // the error of a refusal
		cause  string   // in the log
	}{
		{name: "bearer", header: bearer(reader.secret), status: 200, key: &reader},
		{name: "bearer scheme in lower case", header: h("Authorization", "bearer "+reader.secret), status: 200, key: &reader},
		{name: "bearer with extra spaces", header: h("Authorization", "Bearer   "+reader.secret+" "), status: 200, key: &reader},
		{name: "x-api-key", header: xAPIKey(reader.secret), status: 200, key: &reader},
		{name: "both, the same key", header: h("Authorization", "Bearer "+reader.secret, "X-API-Key", reader.secret), status: 200, key: &reader},
		{name: "basic for the upstream and x-api-key", header: h("Authorization", "Basic dXNlcjpwYXNz", "X-API-Key", bare.secret), status: 200, key: &bare},
		{name: "no scopes", header: bearer(bare.secret), status: 200, key: &bare},
		{name: "not yet expired", header: bearer(future.secret), status: 200, key: &future},
		{name: "head", method: http.MethodHead, header: bearer(reader.secret), status: 200, key: &reader},

		{name: "both, different keys", header: h("Authorization", "Bearer "+reader.secret, "X-API-Key", bare.secret), status: 400, code: "invalid_request", cause: "different keys"},
		{name: "two authorization fields", header: h("Authorization", "Bearer "+reader.secret, "Authorization", "Bearer "+reader.secret), status: 400, code: "invalid_request", cause: "more than one Authorization"},
		{name: "two x-api-key fields", header: h("X-API-Key", reader.secret, "X-API-Key", reader.secret), status: 400, code: "invalid_request", cause: "more than one X-API-Key"},

		{name: "missing", header: nil, status: 401, code: "invalid_key", cause: "no API key"},
		{name: "basic only", header: h("Authorization", "Basic dXNlcjpwYXNz"), status: 401, code: "invalid_key", cause: "not Bearer"},
		{name: "bearer without a key", header: h("Authorization", "Bearer "), status: 401, code: "invalid_key", cause: "empty"},
		{name: "empty x-api-key", header: h("X-API-Key", " "), status: 401, code: "invalid_key", cause: "empty"},
		{name: "malformed", header: bearer("hello"), status: 401, code: "invalid_key", cause: apikey.ErrMalformed.Error()},
		{name: "a JWT", header: bearer(e.token(t, "erp", nil)), status: 401, code: "invalid_key"}, // too long, or malformed
		{name: "too long", header: bearer(strings.Repeat("a", 10000)), status: 401, code: "invalid_key", cause: "too long"},
		{name: "checksum typo", header: bearer(typo(reader.secret)), status: 401, code: "invalid_key", cause: "checksum"},
		{name: "checksum typo in x-api-key", header: xAPIKey(typo(reader.secret)), status: 401, code: "invalid_key", cause: "checksum"},
		{name: "unknown", header: bearer(unknown), status: 401, code: "invalid_key", cause: "unknown key"},
		{name: "a client's secret", header: bearer(clientSecret), status: 401, code: "invalid_key", cause: "unknown key"},
		{name: "expired", header: bearer(expired.secret), status: 401, code: "invalid_key", cause: "expired"},
		{name: "head, unknown", method: http.MethodHead, header: xAPIKey(unknown), status: 401, code: "invalid_key", cause: "unknown key"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			before := len(e.logs.String())
			w := e.do(t, request{method: method, path: "/verify", header: c.header, remote: fmt.Sprintf("198.51.100.%d:1", i)})
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			checkVerifyResponse(t, method, w)
			for _, f := range rateLimitFields {
				if got := w.Header().Get(f); got != "" {
					t.Errorf("%s: %q for a key without limits", f, got)
				}
			}
			line := e.logs.String()[before:]
			if !strings.Contains(line, `"path":"GET /verify"`) || !strings.Contains(line, `"status":`+strconv.Itoa(c.status)) {
				t.Errorf("log line: %s", line)
			}
			if c.status == 200 {
				for f, want := range map[string]string{
					"X-Keymint-Key-Id":   c.key.id,
					"X-Keymint-Key-Name": c.key.name,
					"X-Keymint-Scopes":   c.key.scopes,
				} {
					if got := w.Header().Values(f); len(got) != 1 || got[0] != want {
						t.Errorf("%s = %q, want %q", f, got, want)
					}
				}
				if method == http.MethodGet {
					var body struct {
						Valid bool   `json:"valid"`
						KeyID string `json:"key_id"`
						Name  string `json:"name"`
					}
					decodeJSON(t, w.Body.Bytes(), &body)
					if !body.Valid || body.KeyID != c.key.id || body.Name != c.key.name {
						t.Errorf("body %s", w.Body)
					}
				}
				if !strings.Contains(line, `"key_id":"`+c.key.id+`"`) {
					t.Errorf("the log does not name the key: %s", line)
				}
				return
			}
			if got := w.Header().Get("X-Keymint-Key-Id"); got != "" {
				t.Errorf("refusal names key %q", got)
			}
			if method == http.MethodGet && w.Body.String() != `{"error":"`+c.code+`"}` {
				t.Errorf("body %s, want error %s", w.Body, c.code)
			}
			if !strings.Contains(line, `"error":"`+c.code+`"`) || !strings.Contains(line, c.cause) {
				t.Errorf("log line does not say %s (%s): %s", c.code, c.cause, line)
			}
		})
	}

	// Other methods are not the gateway check.
	w := e.do(t, request{path: "/verify", header: bearer(reader.secret)})
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /verify: %d", w.Code)
	}
}

// TestVerifyRotation: after `key rotate --grace`, both secrets are
// accepted as the same key until the grace ends; then the old one is
// refused as retired.
func TestVerifyRotation(t *testing.T) {
	e := newEnv(t)
	cli := e.open(t)
	k := e.addKey(t, cli, vault.Key{Credential: vault.Credential{Name: "rotating", Scopes: []string{"s"}}})
	newSecret := e.newKeySecret(t)
	err := cli.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey(k.id, newSecret, time.Hour); return err })
	if err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	for _, s := range []string{k.secret, newSecret} {
		w := e.verify(t, bearer(s), "")
		if w.Code != 200 || w.Header().Get("X-Keymint-Key-Id") != k.id {
			t.Errorf("within the grace: %d %v", w.Code, w.Header())
		}
	}
	e.clock.Advance(time.Hour) // the grace ends: no reload needed
	if w := e.verify(t, bearer(k.secret), ""); w.Code != 401 {
		t.Errorf("retired secret after the grace: %d", w.Code)
	}
	if !strings.Contains(e.logs.String(), "retired key") {
		t.Error("the log does not say the key was retired")
	}
	if w := e.verify(t, xAPIKey(newSecret), ""); w.Code != 200 {
		t.Errorf("new secret after the grace: %d", w.Code)
	}
}

// TestVerifyReload: keys created, rotated and removed by another process
// (the CLI) are served from the next reload, which Run does when the
// vault's generation moves.
func TestVerifyReload(t *testing.T) {
	e := newEnv(t)
	cli := e.open(t)
	k := e.addKey(t, cli, vault.Key{Credential: vault.Credential{Name: "newcomer"}})
	if w := e.verify(t, bearer(k.secret), ""); w.Code != 401 {
		t.Fatalf("before the reload: %d", w.Code)
	}
	e.reload(t)
	if w := e.verify(t, bearer(k.secret), ""); w.Code != 200 {
		t.Fatalf("created: %d", w.Code)
	}
	newSecret := e.newKeySecret(t)
	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey(k.id, newSecret, 0); return err }); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	if w := e.verify(t, bearer(k.secret), ""); w.Code != 401 {
		t.Errorf("rotated with no grace, old secret: %d", w.Code)
	}
	if w := e.verify(t, bearer(newSecret), ""); w.Code != 200 {
		t.Errorf("rotated, new secret: %d", w.Code)
	}
	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.DeleteKeys("newcomer"); return err }); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	if w := e.verify(t, bearer(newSecret), ""); w.Code != 401 {
		t.Errorf("removed: %d", w.Code)
	}
}

// TestVerifyRemovedBeforeReload: a key removed by the CLI but still in
// the snapshot cannot be counted, and is refused rather than accepted.
func TestVerifyRemovedBeforeReload(t *testing.T) {
	e := newEnv(t)
	k := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "doomed"}})
	e.reload(t)
	if err := e.open(t).Update(func(tx *vault.Tx) error { _, err := tx.DeleteKeys("doomed"); return err }); err != nil {
		t.Fatal(err)
	}
	w := e.verify(t, bearer(k.secret), "")
	if w.Code != 401 || !strings.Contains(e.logs.String(), "removed meanwhile") {
		t.Errorf("removed key, not reloaded: %d\n%s", w.Code, e.logs)
	}
}

// TestVerifyVaultChangesHonoured: against a running server, the CLI's
// changes to keys are served within a second.
func TestVerifyVaultChangesHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for reloads")
	}
	// Polling for a change fails many times a second: no throttle.
	l := newLiveWith(t, func(s *server.Server) { server.SetAuthThrottle(s, 1<<30, time.Millisecond) })
	cli := l.open(t)
	status := func(secret string) int {
		req, err := http.NewRequest(http.MethodGet, l.url+"/verify", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	within := func(what, secret string, want int) {
		t.Helper()
		start := time.Now()
		for status(secret) != want {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not honoured within 1s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: honoured after %s", what, time.Since(start).Round(time.Millisecond))
	}
	k := l.addKey(t, cli, vault.Key{Credential: vault.Credential{Name: "newcomer"}})
	within("created key", k.secret, 200)
	newSecret := l.newKeySecret(t)
	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey(k.id, newSecret, 0); return err }); err != nil {
		t.Fatal(err)
	}
	within("rotated key", newSecret, 200)
	within("retired secret", k.secret, 401)
	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.DeleteKeys(k.id); return err }); err != nil {
		t.Fatal(err)
	}
	within("removed key", newSecret, 401)
}

// TestVerifyQuota: each key accepted is one use; a key with a limit gets
// the RateLimit fields, and over the limit 429 with Retry-After, the
// fields, and no key id, while the vault counted exactly the limit.
func TestVerifyQuota(t *testing.T) {
	e := newEnv(t)
	k := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "metered", Scopes: []string{"x"}, Limits: []vault.Limit{{Count: 2, Period: "month"}}}})
	e.reload(t)
	// From serverEpoch (5 Nov, 10:00 UTC) to the end of November.
	reset := strconv.Itoa(int(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Sub(serverEpoch) / time.Second))
	for i, remaining := range []string{"1", "0"} {
		w := e.verify(t, xAPIKey(k.secret), "")
		if w.Code != 200 || w.Header().Get("X-Keymint-Key-Id") != k.id {
			t.Fatalf("use %d: %d %s", i+1, w.Code, w.Body)
		}
		want := map[string]string{"Limit": "2", "Remaining": remaining, "Reset": reset}
		for name, v := range want {
			for _, f := range []string{"RateLimit-" + name, "X-RateLimit-" + name} {
				if got := w.Header().Get(f); got != v {
					t.Errorf("use %d: %s = %q, want %q", i+1, f, got, v)
				}
			}
		}
		checkRateLimit(t, w, `"month";q=2;w=2592000`, `"month";r=`+remaining+`;t=`+reset)
		checkVerifyResponse(t, http.MethodGet, w)
	}
	for _, h := range []http.Header{bearer(k.secret), xAPIKey(k.secret)} {
		w := e.verify(t, h, "")
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("over the limit: %d %s", w.Code, w.Body)
		}
		checkVerifyResponse(t, http.MethodGet, w)
		if got := w.Header().Get("Retry-After"); got != reset {
			t.Errorf("Retry-After %q, want %s", got, reset)
		}
		if w.Header().Get("RateLimit-Remaining") != "0" || w.Header().Get("RateLimit-Limit") != "2" || w.Header().Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("over the limit: %v", w.Header())
		}
		checkRateLimit(t, w, `"month";q=2;w=2592000`, `"month";r=0;t=`+reset)
		if w.Header().Get("X-Keymint-Key-Id") != "" || w.Body.String() != `{"error":"quota_exceeded"}` {
			t.Errorf("over the limit: key id %q, body %s", w.Header().Get("X-Keymint-Key-Id"), w.Body)
		}
	}
	// HEAD counts too: it is the same check.
	e.clock.Advance(30 * 24 * time.Hour) // December: a new period
	if w := e.do(t, request{method: http.MethodHead, path: "/verify", header: bearer(k.secret)}); w.Code != 200 || w.Header().Get("RateLimit-Remaining") != "1" {
		t.Errorf("HEAD in the next period: %d %v", w.Code, w.Header())
	} else {
		left := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(e.clock.Now())
		checkRateLimit(t, w, `"month";q=2;w=2592000`, `"month";r=1;t=`+strconv.Itoa(int(left/time.Second)))
	}
	// The vault counted exactly the uses granted: the CLI sees them.
	err := e.open(t).View(func(tx *vault.Tx) error {
		got, err := tx.Key(k.id)
		if err != nil {
			return err
		}
		for at, want := range map[time.Time]int64{serverEpoch: 2, e.clock.Now(): 1} {
			st, err := quota.Current(tx, &got.Credential, at)
			if err != nil {
				return err
			}
			if st[0].Used != want {
				t.Errorf("%s: the vault counts %d uses, want %d", at.Format("2006-01"), st[0].Used, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyThrottle: failed key checks drain the per-address buckets of
// failed client authentication; once empty, the address gets 429 with
// Retry-After for every failed check, while other addresses go on, and a
// good key passes from anywhere, the throttled address included. Typos,
// rejected by their checksum before any lookup, do not drain them (but
// get 429 from a throttled address).
func TestVerifyThrottle(t *testing.T) {
	e := newEnv(t)
	server.SetAuthThrottle(e.srv, 3, 30*time.Second)
	good := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "good"}})
	old := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "old"}})
	newSecret := e.newKeySecret(t)
	if err := e.vault.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey(old.id, newSecret, time.Minute); return err }); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	e.clock.Advance(time.Minute) // old.secret is retired now
	const attacker, other = "203.0.113.9:5000", "192.0.2.77:1"

	for i := range 10 {
		if w := e.verify(t, bearer(typo(good.secret)), attacker); w.Code != 401 {
			t.Fatalf("typo %d: %d", i, w.Code)
		}
	}
	if w := e.verify(t, http.Header{}, attacker); w.Code != 401 {
		t.Fatalf("no key: %d", w.Code)
	}
	for i, s := range []string{e.newKeySecret(t), old.secret, e.newKeySecret(t)} {
		if w := e.verify(t, bearer(s), attacker); w.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
	}
	w := e.verify(t, bearer(e.newKeySecret(t)), attacker)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "30" || w.Body.String() != `{"error":"temporarily_unavailable"}` {
		t.Fatalf("4th failure: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	checkVerifyResponse(t, http.MethodGet, w)
	for name, s := range map[string]string{"retired key": old.secret, "typo": typo(good.secret)} {
		if w := e.verify(t, bearer(s), attacker); w.Code != http.StatusTooManyRequests {
			t.Errorf("%s from the throttled address: %d", name, w.Code)
		}
	}
	for name, s := range map[string]string{"good key": good.secret, "rotated-in key": newSecret} {
		if w := e.verify(t, bearer(s), attacker); w.Code != 200 {
			t.Errorf("%s from the throttled address: %d %s", name, w.Code, w.Body)
		}
	}
	// The buckets are those of client authentication.
	form := url.Values{"grant_type": {"client_credentials"}}
	if w := e.do(t, request{path: "/token", form: form, header: basic(e.clients["erp"].id, e.newSecret(t)), remote: attacker}); w.Code != http.StatusTooManyRequests {
		t.Errorf("wrong client secret from the throttled address: %d", w.Code)
	}
	if w := e.do(t, request{path: "/token", form: form, header: e.basic("erp"), remote: attacker}); w.Code != 200 {
		t.Errorf("right client secret from the throttled address: %d", w.Code)
	}
	if w := e.verify(t, bearer(e.newKeySecret(t)), other); w.Code != 401 {
		t.Errorf("unknown key from another address: %d", w.Code)
	}
	if w := e.verify(t, bearer(good.secret), other); w.Code != 200 {
		t.Errorf("good key from another address: %d", w.Code)
	}
	e.clock.Advance(30 * time.Second)
	if w := e.verify(t, bearer(e.newKeySecret(t)), attacker); w.Code != 401 {
		t.Errorf("unknown key after 30s: %d", w.Code)
	}
	// Failed client authentication drains the bucket /verify uses.
	for range 3 {
		e.do(t, request{path: "/token", form: form, header: basic(e.clients["erp"].id, e.newSecret(t)), remote: "192.0.2.88:1"})
	}
	if w := e.verify(t, bearer(e.newKeySecret(t)), "192.0.2.88:1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("unknown key from an address throttled by /token: %d", w.Code)
	}
	if w := e.verify(t, bearer(good.secret), "192.0.2.88:1"); w.Code != 200 {
		t.Errorf("good key from an address throttled by /token: %d", w.Code)
	}
}

// TestVerifyThrottleBehindProxy: behind a trusted proxy, failed key checks
// drain the bucket of the client X-Forwarded-For names, so that one
// client's bad keys do not get another behind the same proxy a 429; the
// fields of a peer that is not trusted are ignored, so that it cannot
// escape its bucket by naming another, and the log shows the client as
// remote and the proxy as peer.
func TestVerifyThrottleBehindProxy(t *testing.T) {
	e := newEnv(t, func(o *server.Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	server.SetAuthThrottle(e.srv, 3, 30*time.Second)
	good := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "good"}})
	e.reload(t)
	const proxy, stranger = "10.0.0.2:41000", "192.0.2.50:1234"
	from := func(secret, xff string) http.Header {
		h := bearer(secret)
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		return h
	}

	// Client A, behind the proxy, fails until throttled; a client it
	// names to the left of the proxy's own entry changes nothing.
	for i, spoof := range []string{"", "203.0.113.1, ", "203.0.113.2, "} {
		if w := e.verify(t, from(e.newKeySecret(t), spoof+"198.51.100.1"), proxy); w.Code != http.StatusUnauthorized {
			t.Fatalf("client A's failure %d: %d", i+1, w.Code)
		}
	}
	if w := e.verify(t, from(e.newKeySecret(t), "198.51.100.1"), proxy); w.Code != http.StatusTooManyRequests {
		t.Errorf("bad key from client A after 3 failures: %d, want 429", w.Code)
	}
	if w := e.verify(t, from(e.newKeySecret(t), "203.0.113.1, 198.51.100.1"), proxy); w.Code != http.StatusTooManyRequests {
		t.Errorf("bad key from client A naming another client on its left: %d, want 429", w.Code)
	}
	// A good key passes from client A all the same.
	if w := e.verify(t, from(good.secret, "198.51.100.1"), proxy); w.Code != http.StatusOK {
		t.Errorf("good key from throttled client A: %d, want 200", w.Code)
	}
	// Client B, behind the same proxy, is not throttled; nor is the proxy.
	if w := e.verify(t, from(e.newKeySecret(t), "198.51.100.2"), proxy); w.Code != http.StatusUnauthorized {
		t.Errorf("bad key from client B behind the same proxy: %d, want 401", w.Code)
	}
	if w := e.verify(t, from(good.secret, "198.51.100.2"), proxy); w.Code != http.StatusOK {
		t.Errorf("good key from client B behind the same proxy: %d, want 200", w.Code)
	}
	if w := e.verify(t, from(e.newKeySecret(t), ""), proxy); w.Code != http.StatusUnauthorized {
		t.Errorf("bad key from the proxy itself: %d, want 401", w.Code)
	}
	if w := e.verify(t, from(good.secret, ""), proxy); w.Code != http.StatusOK {
		t.Errorf("good key from the proxy itself: %d, want 200", w.Code)
	}
	// X-Real-IP, without X-Forwarded-For, names client A as well.
	h := bearer(e.newKeySecret(t))
	h.Set("X-Real-IP", "198.51.100.1")
	if w := e.verify(t, h, proxy); w.Code != http.StatusTooManyRequests {
		t.Errorf("bad key from client A in X-Real-IP: %d, want 429", w.Code)
	}

	// A peer that is not trusted is its own address, whatever it says.
	for i := range 3 {
		xff := fmt.Sprintf("198.51.100.%d", 10+i) // a fresh bucket each time, if believed
		if w := e.verify(t, from(e.newKeySecret(t), xff), stranger); w.Code != http.StatusUnauthorized {
			t.Fatalf("stranger's failure %d: %d", i+1, w.Code)
		}
	}
	h = from(e.newKeySecret(t), "198.51.100.99")
	h.Set("X-Real-IP", "198.51.100.98")
	if w := e.verify(t, h, stranger); w.Code != http.StatusTooManyRequests {
		t.Errorf("bad key from the untrusted peer naming a fresh client: %d, want 429", w.Code)
	}
	// ...and naming client B does not drain B's bucket.
	if w := e.verify(t, from(e.newKeySecret(t), "198.51.100.2"), proxy); w.Code != http.StatusUnauthorized {
		t.Errorf("client B's bad key after the stranger's failures: %d, want 401", w.Code)
	}
	for _, xff := range []string{"198.51.100.10", "198.51.100.99"} {
		if w := e.verify(t, from(e.newKeySecret(t), xff), proxy); w.Code != http.StatusUnauthorized {
			t.Errorf("a client the untrusted peer named in X-Forwarded-For, %s, now behind the proxy: %d, want 401", xff, w.Code)
		}
	}

	logs := e.logs.String()
	for _, want := range []string{
		`"remote":"198.51.100.1","peer":"10.0.0.2"`,
		`"remote":"198.51.100.2","peer":"10.0.0.2"`,
		`"remote":"192.0.2.50","error"`, // no peer field: not forwarded
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "198.51.100.98") || strings.Contains(logs, "198.51.100.11") {
		t.Errorf("the log shows an address an untrusted peer claimed:\n%s", logs)
	}
}

// TestVerifySubtree: /verify/ followed by any path, with any of the
// methods Envoy's ext_authz may forward, is answered as GET /verify,
// without reading the body; other methods get 405, and plain /verify stays
// GET and HEAD only.
func TestVerifySubtree(t *testing.T) {
	e := newEnv(t)
	good := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "good", Scopes: []string{"a", "b"}}})
	e.reload(t)
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodGet, http.MethodHead,
		http.MethodPut, http.MethodPatch, http.MethodOptions} {
		for _, path := range []string{"/verify/some/path", "/verify/", "/verify/a//b/../c?x=1"} {
			t.Run(method+" "+path, func(t *testing.T) {
				body := &unreadBody{Reader: strings.NewReader(`{"some":"payload"}`)}
				r := httptest.NewRequest(method, path, body)
				r.Header.Set("Authorization", "Bearer "+good.secret)
				r.RemoteAddr = "192.0.2.10:40000"
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Fatalf("%d %s, want 200", w.Code, w.Body)
				}
				checkVerifyResponse(t, method, w)
				if got := w.Header().Get("X-Keymint-Key-Id"); got != good.id {
					t.Errorf("X-Keymint-Key-Id %q, want %q", got, good.id)
				}
				if got := w.Header().Get("X-Keymint-Scopes"); got != "a b" {
					t.Errorf("X-Keymint-Scopes %q", got)
				}
				if body.read {
					t.Error("the body was read")
				}
			})
		}
	}
	// Refusals are those of /verify too.
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		w := e.do(t, request{method: method, path: "/verify/some/path", header: bearer(e.newKeySecret(t))})
		if w.Code != http.StatusUnauthorized || w.Body.String() != `{"error":"invalid_key"}` {
			t.Errorf("%s /verify/some/path with an unknown key: %d %s", method, w.Code, w.Body)
		}
		checkVerifyResponse(t, method, w)
		w = e.do(t, request{method: method, path: "/verify/some/path"})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s /verify/some/path without a key: %d", method, w.Code)
		}
	}
	w := e.do(t, request{method: "PROPFIND", path: "/verify/some/path", header: bearer(good.secret)})
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" {
		t.Errorf("PROPFIND /verify/some/path: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		if w := e.do(t, request{method: method, path: "/verify", header: bearer(good.secret)}); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /verify: %d, want 405", method, w.Code)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"method":"POST","path":"/verify/{path...}","status":200`) ||
		!strings.Contains(logs, `"method":"DELETE","path":"/verify/{path...}","status":200`) {
		t.Errorf("the log does not name the route:\n%s", logs)
	}
	if strings.Contains(logs, "some/path") {
		t.Errorf("the log shows a request's path:\n%s", logs)
	}
}

// unreadBody is a request body that notes whether it was read.
type unreadBody struct {
	io.Reader
	read bool
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.read = true
	return b.Reader.Read(p)
}

// TestVerifyLastUsed: keys' last_used_at reaches the vault in the group
// commits of clients', one transaction for every credential used.
func TestVerifyLastUsed(t *testing.T) {
	e := newEnv(t)
	a := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "a"}})
	b := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "b"}})
	idle := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "idle"}})
	e.reload(t)
	for i := range 20 {
		k := []testKey{a, b}[i%2]
		if w := e.verify(t, bearer(k.secret), ""); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	}
	e.token(t, "erp", nil)
	before, err := e.vault.Generation()
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := e.srv.Flush(); err != nil {
		t.Fatal(err)
	}
	after, err := e.vault.Generation()
	if err != nil {
		t.Fatal(err)
	}
	// Last use is usage, not a record change: it leaves the generation
	// alone, so that no server reloads for it.
	if after != before {
		t.Errorf("flush moved the generation from %d to %d", before, after)
	}
	lastUsed := map[string]*time.Time{}
	if err := e.open(t).View(func(tx *vault.Tx) error {
		for _, ref := range []string{a.id, b.id, idle.id} {
			k, err := tx.Key(ref)
			if err != nil {
				return err
			}
			lastUsed[k.Name] = k.LastUsedAt
		}
		c, err := tx.Client("erp")
		lastUsed["erp"] = c.LastUsedAt
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "erp"} {
		if got := lastUsed[name]; got == nil || !got.Equal(e.clock.Now()) {
			t.Errorf("%s: last_used_at %v, want %v", name, got, e.clock.Now())
		}
	}
	if lastUsed["idle"] != nil {
		t.Errorf("idle key: last_used_at %v", lastUsed["idle"])
	}
	// Nothing used since: the next flush writes nothing.
	if err := e.srv.Flush(); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.vault.Generation(); g != after {
		t.Errorf("an empty flush wrote")
	}
}

// TestVerifyAfterRun: once Run has returned (the server is shutting
// down), uses cannot be counted: /verify says 503, retry.
func TestVerifyAfterRun(t *testing.T) {
	e := newEnv(t)
	k := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "late"}})
	e.reload(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	w := e.verify(t, bearer(k.secret), "")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || w.Body.String() != `{"error":"temporarily_unavailable"}` {
		t.Errorf("after Run: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	checkVerifyResponse(t, http.MethodGet, w)
}

// TestVerifyLogsCarryNoKeys sends good and bad keys every way, logging at
// debug level in text and JSON, and checks that no key, nor any part of
// one, reaches the log, while the log says what happened.
func TestVerifyLogsCarryNoKeys(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var logs syncBuffer
			e := newEnv(t, logTo(&logs, format))
			good := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "good", Scopes: []string{"a", "b"}}})
			metered := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "metered", Limits: []vault.Limit{{Count: 1, Period: "day"}}}})
			expired := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "expired", ExpiresAt: new(serverEpoch.Add(time.Second))}})
			old := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "old"}})
			newSecret := e.newKeySecret(t)
			if err := e.vault.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey(old.id, newSecret, time.Minute); return err }); err != nil {
				t.Fatal(err)
			}
			e.reload(t)
			e.clock.Advance(time.Minute) // old.secret is retired
			unknown := e.newKeySecret(t)
			mistyped := typo(good.secret)
			reqs := []request{
				{header: bearer(good.secret)},
				{header: xAPIKey(good.secret)},
				{method: http.MethodHead, header: bearer(good.secret)},
				{header: bearer(metered.secret)},
				{header: bearer(metered.secret)},
				{header: bearer(expired.secret)},
				{header: bearer(old.secret)},
				{header: bearer(unknown)},
				{header: xAPIKey(mistyped)},
				{header: bearer(good.secret + "x")},
				{header: bearer(good.secret[:20])},
				{header: http.Header{"Authorization": {"Bearer " + good.secret}, "X-Api-Key": {unknown}}},
				{header: http.Header{"Authorization": {"Bearer " + good.secret, "Bearer " + unknown}}},
				{header: http.Header{"Authorization": {"Basic " + good.secret}}},
				{header: http.Header{"Authorization": {good.secret}}},
				{path: "/verify?key=" + good.secret},
				{path: "/verify/" + good.secret, header: bearer(good.secret)},
				{method: http.MethodPost, header: bearer(good.secret)},
			}
			for i, r := range reqs {
				if r.method == "" {
					r.method = http.MethodGet
				}
				if r.path == "" {
					r.path = "/verify"
				}
				r.remote = fmt.Sprintf("192.0.2.%d:1", 100+i)
				e.do(t, r)
			}
			if err := e.srv.Flush(); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			for _, s := range append([]string{mistyped}, e.secrets...) {
				_, random, _ := strings.Cut(s, "_")
				for _, part := range []string{s, random[:12], random[len(random)-12:]} {
					if strings.Contains(out, part) {
						t.Errorf("the log carries a key, or part of one (%s…):\n%s", part[:4], out)
					}
				}
			}
			for _, want := range []string{"GET /verify", good.id, metered.id, old.id, "invalid_key", "invalid_request", "quota_exceeded", "unknown key", "retired key", "checksum", "expired"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log does not mention %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestVerifyRateLimitPolicies: a key of 10/second and 8000/month is told
// both policies on every response, and the state of the tightest, the
// second, on the 429 too, where Retry-After names the second's end. A key
// of 8000/month alone reads its month.
func TestVerifyRateLimitPolicies(t *testing.T) {
	e := newEnv(t)
	k := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "plan", Scopes: []string{"x"},
		Limits: []vault.Limit{{Count: 8000, Period: "month"}, {Count: 10, Period: "second"}}}})
	e.reload(t)
	const policy = `"second";q=10;w=1, "month";q=8000;w=2592000`
	for i := range 10 {
		w := e.verify(t, bearer(k.secret), "")
		if w.Code != http.StatusOK {
			t.Fatalf("use %d: %d %s", i+1, w.Code, w.Body)
		}
		checkRateLimit(t, w, policy, `"second";r=`+strconv.Itoa(9-i)+`;t=1`)
		if got := w.Header().Get("RateLimit-Remaining"); got != strconv.Itoa(9-i) {
			t.Errorf("use %d: RateLimit-Remaining %q", i+1, got)
		}
	}
	w := e.verify(t, bearer(k.secret), "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("11th use in a second: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	checkRateLimit(t, w, policy, `"second";r=0;t=1`)

	monthly := e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "monthly", Scopes: []string{"x"},
		Limits: []vault.Limit{{Count: 8000, Period: "month"}}}})
	e.reload(t)
	e.clock.Advance(time.Second)
	reset := strconv.Itoa(int(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Sub(e.clock.Now()) / time.Second))
	w = e.verify(t, xAPIKey(monthly.secret), "")
	if w.Code != http.StatusOK {
		t.Fatalf("monthly key: %d %s", w.Code, w.Body)
	}
	checkRateLimit(t, w, `"month";q=8000;w=2592000`, `"month";r=7999;t=`+reset)
	if got := w.Header().Get("RateLimit-Reset"); got != reset {
		t.Errorf("RateLimit-Reset %q, want %s as RateLimit's t", got, reset)
	}
}
