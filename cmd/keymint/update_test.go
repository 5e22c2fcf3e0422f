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
	cli := newClockedCLI(t)
	clock := cli.clock
	cli.must("", "init")
	var made struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(cli.must("", "key", "new", "brief", "--expires", "1s", "-o", "json")), &made); err != nil {
		t.Fatal(err)
	}
	cli.must("", "client", "new", "erp")
	cli.must("", "client", "update", "erp", "--expires", "1s")
	clock.Add(time.Hour)

	if _, errs, code := cli.run(made.Secret+"\n", "key", "verify"); code != exitFailure || !strings.Contains(errs, "expired") {
		t.Fatalf("expired key verify: exit %d: %s", code, errs)
	}
	if _, errs, code := cli.run("", "token", "issue", "--client", "erp"); code != exitFailure || !strings.Contains(errs, "client erp expired") {
		t.Fatalf("expired client token issue: exit %d: %s", code, errs)
	}
	if out := cli.must("", "client", "show", "erp"); !strings.Contains(out, "expired") {
		t.Errorf("client show of an expired client:\n%s", out)
	}
	if out := cli.must("", "client", "ls"); !strings.Contains(out, "STATUS") || !strings.Contains(out, "expired") {
		t.Errorf("client ls with an expired client:\n%s", out)
	}

	out := cli.must("", "key", "update", "brief", "--expires", "90d")
	if !strings.Contains(out, "expires ") || !strings.Contains(out, " -> ") {
		t.Errorf("key update: %q", out)
	}
	if _, errs, code := cli.run(made.Secret+"\n", "key", "verify"); code != exitOK {
		t.Errorf("key verify after a new expiry: exit %d: %s", code, errs)
	}
	cli.must("", "client", "update", "erp", "--expires", "never")
	cli.must("", "token", "issue", "--client", "erp")
}
