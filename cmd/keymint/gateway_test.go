//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/keymint/keymint/apikey"
)

// TestNginxAuthRequest puts a real nginx in front of a small upstream, with
// auth_request asking keymint serve's GET /verify about the API key of each
// request (testdata/nginx/nginx.conf): a good key passes and the upstream
// sees its id, a bad or expired key gets 401, a key over its limit 429, and
// bad keys from one client (X-Forwarded-For, believed from nginx with
// --trusted-proxy) get 429 for that client only.
func TestNginxAuthRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keymint and runs keymint serve and nginx")
	}
	t.Parallel()
	nginxBin := findNginx(t)
	waitOutsideMonthEnd(t, time.Minute)
	bin := buildKeymint(t)
	e := newKeymintEnv(t, bin)
	e.ok(t, "", "init")

	type keyJSON struct {
		ID        string     `json:"id"`
		Name      string     `json:"name"`
		Secret    string     `json:"secret"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	newKey := func(args ...string) keyJSON {
		t.Helper()
		var k keyJSON
		out := e.ok(t, "", append(append([]string{"key", "new"}, args...), "-o", "json")...)
		if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || k.Secret == "" {
			t.Fatalf("key new %s -o json: %v\n%s", strings.Join(args, " "), err, out)
		}
		return k
	}
	good := newKey("gateway-good", "--scope", "invoices:read invoices:write")
	metered := newKey("gateway-metered", "--limit", "2/month")
	expiring := newKey("gateway-expiring", "--expires", "6s")
	if expiring.ExpiresAt == nil {
		t.Fatal("key new --expires 6s: no expires_at")
	}

	serve := startServeProcess(t, e, "--trusted-proxy", "127.0.0.1")
	keymintAddr := strings.TrimPrefix(serve.url, "http://")
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()

	// keymint itself first, so that a missing or broken /verify is told
	// apart from a mistake in nginx's configuration.
	req, _ := http.NewRequest(http.MethodGet, serve.url+"/verify", nil)
	req.Header.Set("Authorization", "Bearer "+good.Secret)
	resp, body, err := roundTrip(hc, req)
	if err != nil {
		t.Fatalf("GET %s/verify: %v", serve.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /verify of keymint serve with a good key, without nginx: %s %q, want 200", resp.Status, body)
	}
	for field, want := range map[string]string{
		"X-Keymint-Key-Id":   good.ID,
		"X-Keymint-Key-Name": "gateway-good",
		"X-Keymint-Scopes":   "invoices:read invoices:write",
	} {
		if got := resp.Header.Get(field); got != want {
			t.Errorf("GET /verify without nginx: %s %q, want %q", field, got, want)
		}
	}

	// The upstream answers with what it was told about the caller.
	var upstreamHits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"key_id":   r.Header.Get("X-Keymint-Key-Id"),
			"key_name": r.Header.Get("X-Keymint-Key-Name"),
			"scopes":   r.Header.Get("X-Keymint-Scopes"),
			"path":     r.URL.Path,
		})
	}))
	defer upstream.Close()

	gw := startNginx(t, nginxBin, keymintAddr, strings.TrimPrefix(upstream.URL, "http://"))

	type seen struct{ KeyID, KeyName, Scopes, Path string }
	// call sends GET /api/invoices through nginx with the given header.
	call := func(t *testing.T, header, value string) (*http.Response, seen) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw+"/api/invoices", nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		before := upstreamHits.Load()
		resp, body, err := roundTrip(hc, req)
		if err != nil {
			t.Fatalf("GET %s/api/invoices: %v", gw, err)
		}
		var s seen
		reached := upstreamHits.Load() > before
		switch {
		case resp.StatusCode == http.StatusOK && reached:
			var m map[string]string
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("the upstream's answer: %v: %q", err, body)
			}
			s = seen{m["key_id"], m["key_name"], m["scopes"], m["path"]}
		case resp.StatusCode == http.StatusOK:
			t.Errorf("200 without reaching the upstream: %q", body)
		case reached:
			t.Errorf("%s, yet the request reached the upstream", resp.Status)
		}
		return resp, s
	}
	wantStatus := func(t *testing.T, what string, resp *http.Response, want int) bool {
		t.Helper()
		if resp.StatusCode != want {
			t.Errorf("%s: %s through nginx, want %d", what, resp.Status, want)
			return false
		}
		return true
	}

	t.Run("GoodKey", func(t *testing.T) {
		for _, h := range []struct{ header, value string }{
			{"Authorization", "Bearer " + good.Secret},
			{"X-API-Key", good.Secret},
		} {
			resp, s := call(t, h.header, h.value)
			if wantStatus(t, "good key in "+h.header, resp, http.StatusOK) {
				want := seen{good.ID, "gateway-good", "invoices:read invoices:write", "/api/invoices"}
				if s != want {
					t.Errorf("good key in %s: the upstream saw %+v, want %+v", h.header, s, want)
				}
			}
		}
	})

	t.Run("BadKey", func(t *testing.T) {
		unknown, err := apikey.Generate("km")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apikey.Parse(unknown); err != nil {
			t.Fatalf("apikey.Parse(a new key) = %v", err)
		}
		// One character of the good key changed: its checksum fails.
		i := len(good.Secret) / 2
		swap := byte('a')
		if good.Secret[i] == 'a' {
			swap = 'b'
		}
		mistyped := good.Secret[:i] + string(swap) + good.Secret[i+1:]
		if _, err := apikey.Parse(mistyped); !errors.Is(err, apikey.ErrChecksum) {
			t.Fatalf("apikey.Parse(mistyped key) = %v, want a checksum error", err)
		}
		for _, c := range []struct{ what, header, value string }{
			{"unknown key with a good checksum", "Authorization", "Bearer " + unknown},
			{"unknown key in X-API-Key", "X-API-Key", unknown},
			{"mistyped key", "Authorization", "Bearer " + mistyped},
			{"mistyped key in X-API-Key", "X-API-Key", mistyped},
			{"not a key", "Authorization", "Bearer hello"},
			{"Basic credentials", "Authorization", "Basic Z29vZDprZXk="},
			{"no key", "", ""},
		} {
			resp, _ := call(t, c.header, c.value)
			wantStatus(t, c.what, resp, http.StatusUnauthorized)
		}
	})

	t.Run("OverQuota", func(t *testing.T) {
		for i, remaining := range []string{"1", "0"} {
			resp, s := call(t, "X-API-Key", metered.Secret)
			if !wantStatus(t, "key with --limit 2/month, use "+strconv.Itoa(i+1), resp, http.StatusOK) {
				continue
			}
			if s.KeyID != metered.ID {
				t.Errorf("use %d: the upstream saw key id %q, want %q", i+1, s.KeyID, metered.ID)
			}
			if l, r := resp.Header.Get("RateLimit-Limit"), resp.Header.Get("RateLimit-Remaining"); l != "2" || r != remaining {
				t.Errorf("use %d: RateLimit-Limit %q, RateLimit-Remaining %q through nginx; want 2 and %s", i+1, l, r, remaining)
			}
		}
		for _, h := range []struct{ header, value string }{
			{"X-API-Key", metered.Secret},
			{"Authorization", "Bearer " + metered.Secret},
		} {
			resp, _ := call(t, h.header, h.value)
			if !wantStatus(t, "key over its limit of 2/month, in "+h.header, resp, http.StatusTooManyRequests) {
				continue
			}
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("429 through nginx with Retry-After %q", resp.Header.Get("Retry-After"))
			}
			if l, r := resp.Header.Get("RateLimit-Limit"), resp.Header.Get("RateLimit-Remaining"); l != "2" || r != "0" {
				t.Errorf("429 through nginx: RateLimit-Limit %q, RateLimit-Remaining %q; want 2 and 0", l, r)
			}
		}
	})

	// nginx passes the client's address in X-Forwarded-For, which keymint
	// believes from it (--trusted-proxy 127.0.0.1): bad keys from one
	// client get that client a 429 for its failures, not another behind
	// the same nginx.
	// The test's own X-Forwarded-For stands for a hop in front of nginx.
	t.Run("ThrottlePerClient", func(t *testing.T) {
		send := func(t *testing.T, forwardedFor, key string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, gw+"/api/invoices", nil)
			if forwardedFor != "" {
				req.Header.Set("X-Forwarded-For", forwardedFor)
			}
			req.Header.Set("X-API-Key", key)
			resp, _, err := roundTrip(hc, req)
			if err != nil {
				t.Fatalf("GET %s/api/invoices: %v", gw, err)
			}
			return resp
		}
		const attacker, other = "198.51.100.7", "198.51.100.8"
		for i := range 10 {
			unknown, err := apikey.Generate("km")
			if err != nil {
				t.Fatal(err)
			}
			if resp := send(t, attacker, unknown); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("unknown key %d from %s: %s, want 401", i+1, attacker, resp.Status)
			}
		}
		unknown, err := apikey.Generate("km")
		if err != nil {
			t.Fatal(err)
		}
		resp := send(t, attacker, unknown)
		if wantStatus(t, "unknown key from a client after 10 unknown keys", resp, http.StatusTooManyRequests) {
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("throttled through nginx with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
		// A good key is never refused by the throttle.
		wantStatus(t, "good key from the throttled client", send(t, attacker, good.Secret), http.StatusOK)
		wantStatus(t, "unknown key from another client behind the same nginx", send(t, other, unknown), http.StatusUnauthorized)
		wantStatus(t, "good key from another client behind the same nginx", send(t, other, good.Secret), http.StatusOK)
		wantStatus(t, "good key from nginx's own client", send(t, "", good.Secret), http.StatusOK)
		// The log names the client, and nginx as the peer.
		want := "remote=" + attacker + " peer=127.0.0.1"
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(serve.stderr.String(), want); {
			if time.Now().After(deadline) {
				t.Errorf("keymint serve's log does not say %q", want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("ExpiredKey", func(t *testing.T) {
		// It works until it expires (unless this machine is too slow to
		// tell).
		if time.Until(*expiring.ExpiresAt) > time.Second {
			resp, s := call(t, "Authorization", "Bearer "+expiring.Secret)
			if wantStatus(t, "key before it expires", resp, http.StatusOK) && s.KeyID != expiring.ID {
				t.Errorf("key before it expires: the upstream saw key id %q, want %q", s.KeyID, expiring.ID)
			}
		}
		// expires_at is shown in whole seconds, cut down.
		time.Sleep(time.Until(expiring.ExpiresAt.Add(time.Second)) + 100*time.Millisecond)
		resp, _ := call(t, "Authorization", "Bearer "+expiring.Secret)
		wantStatus(t, "expired key", resp, http.StatusUnauthorized)
	})

	if t.Failed() {
		t.Logf("keymint serve's log:\n%s", tail(serve.stderr.String(), 4000))
	}
}

// findNginx returns the nginx binary: on PATH, or in /usr/sbin, which is
// not on every user's PATH.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatal("nginx is not installed: this integration test runs a real nginx in front of keymint serve. " +
		"Install it with `apt-get install nginx-light` (scripts/test does so when it runs as root), or run go test -short to leave it out")
	return ""
}

// startNginx runs nginx in the foreground, unprivileged, with the
// configuration of testdata/nginx and every file it writes in a temporary
// directory, in front of upstream with keymint at keymintAddr. It returns
// nginx's base URL; the test's cleanup stops it.
func startNginx(t *testing.T, nginxBin, keymintAddr, upstream string) string {
	t.Helper()
	return runNginx(t, nginxBin, "nginx.conf", func(dir, listen string) any {
		return map[string]string{"Dir": dir, "Listen": listen, "Keymint": keymintAddr, "Upstream": upstream}
	})
}

// runNginx runs nginx in the foreground, unprivileged, with the template
// testdata/nginx/CONF filled with data(its directory, its listen address),
// every file it writes in a temporary directory, and returns its base URL
// once it listens; the test's cleanup stops it. A free port can be taken
// by someone else between our check and nginx's bind: it tries a few.
func runNginx(t *testing.T, nginxBin, conf string, data func(dir, listen string) any) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "nginx", conf))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		var filled bytes.Buffer
		if err := tmpl.Execute(&filled, data(dir, listen)); err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, filled.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, nginxBin, "-p", dir+"/", "-c", confPath, "-g", "daemon off;")
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
		var output syncBuffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start nginx: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		errorLog := func() string {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return output.String() + string(b)
		}
		if url, retry := waitNginx(t, listen, done, cancel, errorLog, attempt); !retry {
			return url
		}
	}
}

// waitNginx waits until nginx listens and returns its URL, arranging its
// stop at the test's end; retry is set when it could not bind its port
// and another should be tried.
func waitNginx(t *testing.T, listen string, done chan error, cancel func(), errorLog func() string, attempt int) (url string, retry bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			log := errorLog()
			if strings.Contains(log, "Address already in use") && attempt < 3 {
				t.Logf("nginx could not bind %s; trying another port", listen)
				return "", true
			}
			t.Fatalf("nginx ended at start: %v\n%s", err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			t.Cleanup(func() {
				cancel()
				<-done
				if t.Failed() {
					t.Logf("nginx's error log:\n%s", tail(errorLog(), 4000))
				}
			})
			return "http://" + listen, false
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("nginx did not listen on %s within 15s\n%s", listen, errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
