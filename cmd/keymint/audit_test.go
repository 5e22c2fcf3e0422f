package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAuditLs: filters combine, --credential finds a removed credential by
// its old name and a renamed one by either name, --since reads durations
// and dates, newest first by default, and --limit pages with --before and
// --reverse --after without losing or repeating an entry.
func TestAuditLs(t *testing.T) {
	env := cliEnv(t)
	clock := &testClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	km := func(args ...string) (string, string, int) {
		t.Helper()
		return runAt(env, clock.Now, "", args...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := km(args...)
		if code != exitOK {
			t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	entries := func(args ...string) []auditJSON {
		t.Helper()
		var out []auditJSON
		for line := range strings.Lines(must(append([]string{"audit", "ls", "-o", "json"}, args...)...)) {
			var e auditJSON
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not JSON Lines: %q", line)
			}
			out = append(out, e)
		}
		return out
	}
	seqs := func(es []auditJSON) []uint64 {
		var s []uint64
		for _, e := range es {
			s = append(s, e.Seq)
		}
		return s
	}
	must("init")                            // 1 vault.init, 2 signing-key.create
	must("key", "new", "old-name")          // 3
	clock.Add(10 * 24 * time.Hour)          // 2026-11-11
	must("client", "new", "erp")            // 4
	must("key", "rm", "old-name", "--yes")  // 5
	must("key", "new", "other")             // 6
	must("client", "rename", "erp", "erp2") // 7

	all := entries()
	if got := seqs(all); len(got) != 7 || got[0] != 7 || got[6] != 1 {
		t.Fatalf("newest first, 7 entries: %v", got)
	}
	for _, e := range all {
		if e.Actor == "" || e.Time.IsZero() || len(e.Hash) != 64 {
			t.Errorf("entry %d lacks actor, time or hash: %+v", e.Seq, e)
		}
	}
	if got := seqs(entries("--reverse")); got[0] != 1 || got[6] != 7 {
		t.Errorf("--reverse: %v", got)
	}
	if got := seqs(entries("--credential", "old-name")); len(got) != 2 || got[0] != 5 || got[1] != 3 {
		t.Errorf("--credential of a removed key: %v, want [5 3]", got)
	}
	for _, name := range []string{"erp", "erp2"} {
		if got := seqs(entries("--credential", name)); len(got) != 2 || got[0] != 7 || got[1] != 4 {
			t.Errorf("--credential %s: %v, want [7 4]", name, got)
		}
	}
	if got := seqs(entries("--credential", all[0].Credential)); len(got) != 2 {
		t.Errorf("--credential by id: %v", got)
	}
	if got := seqs(entries("--action", "key")); len(got) != 3 {
		t.Errorf("--action key: %v, want the three key entries", got)
	}
	if got := seqs(entries("--action", "key.delete", "--action", "client.rename")); len(got) != 2 || got[0] != 7 || got[1] != 5 {
		t.Errorf("two --action: %v", got)
	}
	if got := seqs(entries("--since", "2d")); len(got) != 4 {
		t.Errorf("--since 2d: %v, want 4..7", got)
	}
	if got := seqs(entries("--since", "2026-11-05")); len(got) != 4 {
		t.Errorf("--since a date: %v", got)
	}
	if got := seqs(entries("--since", "2d", "--action", "key")); len(got) != 2 {
		t.Errorf("--since with --action: %v", got)
	}
	// Pages of 3, both ways.
	var paged []uint64
	for before := ""; ; {
		args := []string{"--limit", "3"}
		if before != "" {
			args = append(args, "--before", before)
		}
		page := seqs(entries(args...))
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		before = itoaU(page[len(page)-1])
	}
	if len(paged) != 7 || paged[0] != 7 || paged[6] != 1 {
		t.Errorf("pages newest first: %v", paged)
	}
	_, errs, _ := km("audit", "ls", "--limit", "3")
	if !strings.Contains(errs, "--before 5") {
		t.Errorf("text output does not say how to get the next page: %q", errs)
	}
	if got := seqs(entries("--reverse", "--after", "3", "--limit", "2")); len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Errorf("--reverse --after 3 --limit 2: %v", got)
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"--limit", "-1"}, {"--action", ""}, {"extra"}} {
		if _, _, code := km(append([]string{"audit", "ls"}, args...)...); code != exitUsage {
			t.Errorf("audit ls %v: exit %d, want 2", args, code)
		}
	}
	out := must("audit", "verify")
	if !strings.HasPrefix(out, "valid: the audit chain is whole: 7 entries") {
		t.Errorf("audit verify: %q", out)
	}
}

func itoaU(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
