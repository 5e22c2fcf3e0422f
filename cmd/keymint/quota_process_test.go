//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuotaProcesses is issue 4's test of exact counting across processes:
// a limit of 100, and 16 processes each asking 20 times at once. Exactly
// 100 uses succeed, every other one is refused over quota, and usage show
// counts 100.
func TestQuotaProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keymint and runs 640 processes")
	}
	// The limit is per month: do not straddle the turn of one.
	now := time.Now().UTC()
	if untilNextMonth := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Sub(now); untilNextMonth < 2*time.Minute {
		time.Sleep(untilNextMonth + time.Second)
	}
	bin := buildKeymint(t)
	t.Run("TokenIssue", func(t *testing.T) {
		e := newKeymintEnv(t, bin)
		e.ok(t, "", "init")
		e.ok(t, "", "client", "new", "ci", "--limit", "100/month")
		testQuotaRace(t, e, "ci", "", func(stdout string) bool { return strings.HasPrefix(stdout, "eyJ") },
			"token", "issue", "--client", "ci")
	})
	t.Run("KeyVerify", func(t *testing.T) {
		e := newKeymintEnv(t, bin)
		e.ok(t, "", "init")
		secret := strings.TrimSpace(e.ok(t, "", "key", "new", "partner-x", "--limit", "100/month", "--limit", "1000/day"))
		testQuotaRace(t, e, "partner-x", secret+"\n", func(stdout string) bool { return strings.HasPrefix(stdout, "valid: key partner-x") },
			"key", "verify")
	})
}

// testQuotaRace runs keymint args as 16 processes × 20 calls, all started
// at once, against credential name with a limit of 100 uses.
func testQuotaRace(t *testing.T, e *keymintEnv, name, stdin string, granted func(stdout string) bool, args ...string) {
	const procs, calls, limit = 16, 20, 100
	args = append([]string{"--lock-timeout", "2m"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var mu sync.Mutex
	allowed, refused := 0, 0
	var failures []string
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			<-start
			for c := range calls {
				cmd := e.command(ctx, args...)
				cmd.Stdin = strings.NewReader(stdin)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				mu.Lock()
				switch {
				case err == nil && granted(stdout.String()):
					allowed++
				case err != nil && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 1 &&
					strings.HasPrefix(stderr.String(), "keymint: over quota: "+name+" has used 100 of 100 uses this month; resets "):
					refused++
				default:
					failures = append(failures, fmt.Sprintf("process %d call %d: %v: stdout %q stderr %q", p, c, err, stdout.String(), stderr.String()))
				}
				mu.Unlock()
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d × %d %s: %d allowed, %d refused in %v", procs, calls, strings.Join(args[2:], " "), allowed, refused, time.Since(began).Round(time.Millisecond))
	for _, f := range failures {
		t.Error(f)
	}
	if allowed != limit {
		t.Errorf("%d uses allowed, want exactly %d", allowed, limit)
	}
	if allowed+refused != procs*calls && len(failures) == 0 {
		t.Errorf("%d allowed + %d refused, want %d in all", allowed, refused, procs*calls)
	}

	r, ok, out := usageIn(t, e, name, "month")
	if !ok {
		t.Errorf("usage show %s has no row for the month:\n%s", name, out)
		return
	}
	if r.Used != limit || r.Limit == nil || *r.Limit != limit || r.Remaining == nil || *r.Remaining != 0 {
		t.Errorf("usage show: %s used %d of %v, %v remaining; want 100 of 100, 0 remaining", r.Name, r.Used, r.Limit, r.Remaining)
	}
}

// usageIn returns the row (usage.go's usageRow) for period of `keymint usage show NAME -o json`
// on e's vault, whether there is one, and the whole output.
func usageIn(t *testing.T, e *keymintEnv, name, period string) (usageRow, bool, string) {
	t.Helper()
	var rows []usageRow
	out := e.ok(t, "", "usage", "show", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("usage show %s -o json: %v\n%s", name, err, out)
	}
	for _, r := range rows {
		if r.Period == period && r.Name == name {
			return r, true, out
		}
	}
	return usageRow{}, false, out
}
