package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestUpdateExpired: an expired key is given a new expiry by key update,
// and its secret is valid again; an expired client likewise gets tokens
// again. The app's clock moves; nothing waits.
func TestUpdateExpired(t *testing.T) {
	env := cliEnv(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	km := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runAt(env, clock.Now, stdin, args...)
	}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		out, errs, code := km(stdin, args...)
		if code != exitOK {
			t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	mustRun("", "init")
	var made struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(mustRun("", "key", "new", "brief", "--expires", "1s", "-o", "json")), &made); err != nil {
		t.Fatal(err)
	}
	mustRun("", "client", "new", "erp")
	mustRun("", "client", "update", "erp", "--expires", "1s")
	clock.Add(time.Hour)

	if _, errs, code := km(made.Secret+"\n", "key", "verify"); code != exitFailure || !strings.Contains(errs, "expired") {
		t.Fatalf("expired key verify: exit %d: %s", code, errs)
	}
	if _, errs, code := km("", "token", "issue", "--client", "erp"); code != exitFailure || !strings.Contains(errs, "client erp expired") {
		t.Fatalf("expired client token issue: exit %d: %s", code, errs)
	}
	if out := mustRun("", "client", "show", "erp"); !strings.Contains(out, "expired") {
		t.Errorf("client show of an expired client:\n%s", out)
	}
	if out := mustRun("", "client", "ls"); !strings.Contains(out, "STATUS") || !strings.Contains(out, "expired") {
		t.Errorf("client ls with an expired client:\n%s", out)
	}

	out := mustRun("", "key", "update", "brief", "--expires", "90d")
	if !strings.Contains(out, "expires ") || !strings.Contains(out, " -> ") {
		t.Errorf("key update: %q", out)
	}
	if _, errs, code := km(made.Secret+"\n", "key", "verify"); code != exitOK {
		t.Errorf("key verify after a new expiry: exit %d: %s", code, errs)
	}
	mustRun("", "client", "update", "erp", "--expires", "never")
	mustRun("", "token", "issue", "--client", "erp")
}
