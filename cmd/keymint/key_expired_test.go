package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock a test moves by hand, for the app's now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// runAt runs a keymint command line in-process, as [cli] does, but on
// clock, with stdin as its standard input, and returns its output and exit
// code.
// clockedCLI runs keymint commands in a fresh environment on a clock the
// test moves, so that expiry is tested without waiting.
type clockedCLI struct {
	t     *testing.T
	env   map[string]string
	clock *testClock
}

func newClockedCLI(t *testing.T) *clockedCLI {
	return &clockedCLI{t: t, env: cliEnv(t), clock: &testClock{t: time.Now().UTC().Truncate(time.Second)}}
}

// run runs one command line at the clock's time.
func (c *clockedCLI) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	return runAt(c.env, c.clock.Now, stdin, args...)
}

// must runs one command line that must succeed, and returns its stdout.
func (c *clockedCLI) must(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code != exitOK {
		c.t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func runAt(env map[string]string, clock func() time.Time, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	a := &app{
		io:     &streams{In: strings.NewReader(stdin), Out: &out, Err: &errb, inFd: -1},
		getenv: func(k string) string { return env[k] },
		now:    clock,
	}
	code = a.run(args)
	return out.String(), errb.String(), code
}

// TestKeyExpired: once a key's expiry has passed, `key verify` refuses its
// secret, saying when it expired; `key ls` and `key show` say it expired;
// and `key rotate` refuses, exit 1 with one line that says what to do, and
// changes nothing. The key expires in a second of the app's clock, which
// the test moves on, so that nothing waits for the time to pass.
func TestKeyExpired(t *testing.T) {
	cli := newClockedCLI(t)
	clock := cli.clock
	created := clock.Now()
	cli.must("", "init")
	var made struct {
		Secret    string    `json:"secret"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(cli.must("", "key", "new", "brief", "--expires", "1s", "-o", "json")), &made); err != nil {
		t.Fatal(err)
	}
	expires := created.Add(time.Second)
	if !made.ExpiresAt.Equal(expires) {
		t.Fatalf("expires_at %s, want %s: a second after the app's clock", made.ExpiresAt, expires)
	}
	stamp := regexp.QuoteMeta(expires.Format(time.RFC3339))

	// Until then the secret is good, whatever time it is outside.
	if _, errs, code := cli.run(made.Secret+"\n", "key", "verify"); code != exitOK {
		t.Fatalf("key verify before the expiry: exit %d: %s", code, errs)
	}

	clock.Add(time.Hour + time.Second)

	// key verify: refused, the right secret told that it expired.
	out, errs, code := cli.run(made.Secret+"\n", "key", "verify")
	if code != exitFailure || out != "" || strings.Count(errs, "\n") != 1 ||
		!regexp.MustCompile(`^keymint: key brief expired `+stamp).MatchString(errs) {
		t.Errorf("key verify after the expiry: exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout and one line saying it expired %s", code, out, errs, expires.Format(time.RFC3339))
	}

	// key ls and key show: expired an hour ago (as of the app's clock),
	// made an hour ago, last used then.
	ls := cli.must("", "key", "ls")
	if !regexp.MustCompile(`(?m)^brief +key_\w+ +- +1 hour ago +1 hour ago +1 hour ago$`).MatchString(ls) {
		t.Errorf("key ls:\n%s\nwant brief expired, last used and made 1 hour ago", ls)
	}
	show := cli.must("", "key", "show", "brief")
	if !regexp.MustCompile(`(?m)^expires +` + stamp + ` \(1 hour ago\)$`).MatchString(show) {
		t.Errorf("key show:\n%s\nwant it expired %s (1 hour ago)", show, expires.Format(time.RFC3339))
	}

	// key rotate: refused, the new secret would be expired too, and the
	// vault file is left as it was.
	path := filepath.Join(cli.env["XDG_DATA_HOME"], "keymint", "vault.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "rotate", "brief"},
			`^keymint: key brief expired ` + stamp + ` \(1 hour ago\), so a new secret would not work: give it a new expiry with ` + "`keymint key update brief --expires 90d`" + ` first, create a new key with ` + "`keymint key new`" + ` to replace it, or remove this one with ` + "`keymint key rm brief`" + `\n$`},
		{[]string{"key", "rotate", "brief", "--grace", "0s", "--yes", "-o", "json"},
			`^\{"error":"key brief expired ` + stamp + ` \(1 hour ago\), so a new secret would not work: .*","exit":1\}\n$`},
	} {
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, errs, code := cli.run("", tc.args...)
		if code != exitFailure {
			t.Errorf("%s: exit %d, want %d: %s", strings.Join(tc.args, " "), code, exitFailure, errs)
		}
		if !regexp.MustCompile(tc.want).MatchString(errs) {
			t.Errorf("%s: stderr %q, want one line matching %s", strings.Join(tc.args, " "), errs, tc.want)
		}
		if out != "" {
			t.Errorf("%s: stdout %q, want nothing (no secret)", strings.Join(tc.args, " "), out)
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("%s: the vault file changed", strings.Join(tc.args, " "))
		}
	}

	// It is still there to be removed.
	cli.must("", "key", "rm", "brief", "--yes")
}
