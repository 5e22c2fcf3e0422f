package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesRollback: an older copy of the vault moved over the file
// while serve runs is refused, as the CLI refuses it. Without that, the
// older copy would bring back a removed key and the uses spent since it was
// made (a client limited to 5 a month would get 10). serve keeps serving
// what it read before, says why in its log, and never writes to the older
// copy.
func TestServeRefusesRollback(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	// A monthly limit, not a daily one, so that a run across midnight
	// cannot legitimately get new uses.
	const limit = 5
	var metered clientJSON
	if err := json.Unmarshal([]byte(cli(t, env, "client", "new", "metered", "--limit", strconv.Itoa(limit)+"/month", "-o", "json")), &metered); err != nil {
		t.Fatal(err)
	}
	var doomed keyJSON
	if err := json.Unmarshal([]byte(cli(t, env, "key", "new", "doomed", "-o", "json")), &doomed); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(env["XDG_DATA_HOME"], "keymint", "vault.db")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	s := startServe(t, env, "--listen", "127.0.0.1:0")
	hc := &http.Client{Timeout: 10 * time.Second}
	if code := verifyStatus(t, hc, s.url, doomed.Secret); code != http.StatusOK {
		t.Fatalf("/verify of doomed before its removal: %d", code)
	}
	for i := range limit {
		if code := tokenStatus(t, hc, s.url, metered.ClientID, metered.ClientSecret); code != http.StatusOK {
			t.Fatalf("token %d of %d: %d", i+1, limit, code)
		}
	}
	if code := tokenStatus(t, hc, s.url, metered.ClientID, metered.ClientSecret); code != http.StatusTooManyRequests {
		t.Fatalf("token over the limit: %d, want 429", code)
	}
	cli(t, env, "key", "rm", "doomed", "--yes")
	var report verifyJSON
	if err := json.Unmarshal([]byte(cli(t, env, "vault", "verify", "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 10*time.Second, "serve to reload the vault without the removed key", func() bool {
		return strings.Contains(s.err.String(), `msg="reloaded the vault" generation=`+strconv.FormatUint(report.Generation, 10)+" ")
	})
	if code := verifyStatus(t, hc, s.url, doomed.Secret); code != http.StatusUnauthorized {
		t.Fatalf("/verify of the removed key: %d, want 401", code)
	}
	servedBefore := maxReloadedGeneration(t, s.err.String())

	// The older copy is moved over the file, as a restore or an attacker
	// who can write the directory would.
	tmp := filepath.Join(filepath.Dir(path), "vault.db.old")
	if err := os.WriteFile(tmp, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	// serve polls the vault every second; its first poll of the older copy
	// logs the refusal. (Writing the last uses, on its own timer, may be
	// refused first: a warning, as it retries.)
	const refused = "the vault is older than what is served"
	pollUntil(t, 10*time.Second, "serve to log the rollback", func() bool {
		return strings.Contains(s.err.String(), refused)
	})
	logged := s.err.String()
	var refusal string
	for line := range strings.Lines(logged) {
		if strings.Contains(line, refused) {
			refusal = line
			break
		}
	}
	if !strings.Contains(refusal, "level=ERROR") || !strings.Contains(refusal, "keymint vault accept-rollback") {
		t.Errorf("the refusal is not an error naming `keymint vault accept-rollback`: %q", refusal)
	}
	// For a few more polls, the exhausted client stays refused and the
	// removed key stays rejected. The client gets 429 while serve's own
	// leases say it is spent; when serve asks the vault for more uses, the
	// vault refuses the older copy and the client gets 503
	// (temporarily_unavailable): never a token.
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if code := tokenStatus(t, hc, s.url, metered.ClientID, metered.ClientSecret); code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
			t.Fatalf("token for the exhausted client after the rollback: %d, want 429 or 503\n%s", code, s.err)
		}
		if code := verifyStatus(t, hc, s.url, doomed.Secret); code != http.StatusUnauthorized {
			t.Fatalf("/verify of the removed key after the rollback: %d, want 401", code)
		}
		// Not faster: unknown keys from one address are throttled (429)
		// after a burst of ten.
		time.Sleep(500 * time.Millisecond)
	}
	after := s.err.String()[len(logged):]
	if strings.Contains(after, "reloaded the vault") || strings.Contains(after, "vault readable again") {
		t.Errorf("serve took the older copy after refusing it:\n%s", after)
	}
	if got := maxReloadedGeneration(t, s.err.String()); got != servedBefore {
		t.Errorf("serve reloaded generation %d after the rollback, had served %d", got, servedBefore)
	}
	// The CLI refuses the older copy too, on this machine.
	if code, stderr := runCLI(env, "key", "ls"); code != exitFailure || !strings.Contains(stderr, "rolled back") {
		t.Errorf("key ls after the rollback: exit %d: %s", code, stderr)
	}

	// Stopping writes nothing to the older copy: the last uses it would
	// flush belong to the newer state.
	if err := s.stop(t); err != nil && !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("serve stopped with %v", err)
	} else if err != nil {
		t.Logf("serve stopped with %v", err)
	}
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now, old) {
		t.Error("serve wrote to the rolled-back vault")
	}
	// Nor does serve start again on it.
	if code, stderr := runCLI(env, "serve", "--listen", "127.0.0.1:0"); code != exitFailure || !strings.Contains(stderr, "rolled back") || strings.Contains(stderr, "listening") {
		t.Errorf("serve restarted on the rolled-back vault: exit %d: %s", code, stderr)
	}
	if strings.Contains(s.err.String(), metered.ClientSecret) || strings.Contains(s.err.String(), doomed.Secret) {
		t.Error("the log carries a secret")
	}
}

// runCLI runs a keymint command in-process and returns its exit code and
// stderr.
func runCLI(env map[string]string, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] })
	return code, errb.String()
}

// reloadedGeneration finds the generations of serve's "reloaded the vault"
// log lines (text format).
var reloadedGeneration = regexp.MustCompile(`msg="reloaded the vault" generation=(\d+)`)

// maxReloadedGeneration returns the newest generation serve's log says it
// reloaded, checking that the generations it reloaded never went down.
func maxReloadedGeneration(t *testing.T, log string) uint64 {
	t.Helper()
	var max uint64
	for _, m := range reloadedGeneration.FindAllStringSubmatch(log, -1) {
		g, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if g < max {
			t.Errorf("serve reloaded generation %d after %d", g, max)
		}
		max = g
	}
	if max == 0 {
		t.Fatalf("serve logged no reload:\n%s", log)
	}
	return max
}

// tokenStatus asks base's /token for a token with client_secret_basic and
// returns the status.
func tokenStatus(t *testing.T, hc *http.Client, base, id, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return statusOf(t, hc, req)
}

// verifyStatus asks base's /verify about an API key and returns the status.
func verifyStatus(t *testing.T, hc *http.Client, base, key string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	return statusOf(t, hc, req)
}

func statusOf(t *testing.T, hc *http.Client, req *http.Request) int {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode
}

// pollUntil polls cond every 50ms until it holds, failing the test after
// timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
