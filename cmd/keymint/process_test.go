//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
	"github.com/keymint/keymint/vault/vaulttest"
)

// TestProcesses runs a real keymint binary as many processes at once, and
// kills it in the middle of its work: what the file lock and bbolt's
// transactions promise, checked from outside.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keymint and runs hundreds of processes")
	}
	t.Parallel()
	bin := buildKeymint(t)
	t.Run("Concurrent", func(t *testing.T) { testConcurrentCreates(t, bin) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, bin) })
	t.Run("Truncated", func(t *testing.T) { testDamaged(t, bin, truncations) })
	t.Run("FlippedBits", func(t *testing.T) { testDamaged(t, bin, bitFlips) })
}

// buildKeymint builds this package without the race detector or test
// instrumentation, so the processes run at their real speed.
func buildKeymint(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keymint")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// keymintEnv is a private home for one test's vault: the process
// environment without any KEYMINT_ setting, and XDG directories of its own.
type keymintEnv struct {
	bin   string
	env   []string
	vault string
	// state is where keymint remembers the newest state of the vault.
	state string
}

func newKeymintEnv(t *testing.T, bin string) *keymintEnv {
	t.Helper()
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYMINT_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"),
	)
	return &keymintEnv{bin: bin, env: env, vault: filepath.Join(dir, "data", "keymint", "vault.db"), state: filepath.Join(dir, "state", "keymint")}
}

// command is one keymint invocation that cannot outlive its timeout.
func (e *keymintEnv) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.env
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs keymint to completion and returns its stdout, stderr and exit
// code; a process that did not exit by itself fails the test.
func (e *keymintEnv) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("keymint %s: %v (stderr %q)", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// ok runs keymint and fails the test unless it exits 0.
func (e *keymintEnv) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := e.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// keyNames lists the vault's keys through keymint itself.
func (e *keymintEnv) keyNames(t *testing.T) []string {
	t.Helper()
	var keys []struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
	}
	out := e.ok(t, "", "key", "ls", "-o", "json")
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("key ls -o json: %v\n%s", err, out)
	}
	var names []string
	for _, k := range keys {
		if k.Secret != "" {
			t.Errorf("key ls shows the secret of %s", k.Name)
		}
		names = append(names, k.Name)
	}
	return names
}

// checkBolt runs bbolt's own consistency check on the vault file.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	if err := vault.CheckFile(path, 5*time.Second); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

// 20 processes create a key each at the same moment: they queue on the
// vault's lock, and every one of them succeeds with its own key.
func testConcurrentCreates(t *testing.T, bin string) {
	e := newKeymintEnv(t, bin)
	e.ok(t, "", "init")

	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := make(chan struct{})
	secrets := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cmd := e.command(ctx, "key", "new", fmt.Sprintf("k%02d", i))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		wg.Go(func() {
			<-start
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("key new k%02d: %v: %s", i, err, stderr.String())
				return
			}
			secrets[i] = strings.TrimSpace(stdout.String())
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d processes at once: %v", n, time.Since(began).Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("k%02d", i))
	}
	if got := e.keyNames(t); !slices.Equal(got, want) {
		t.Fatalf("key ls = %v, want %v", got, want)
	}
	// Each secret belongs to the key whose creation printed it.
	for i, s := range secrets {
		if out := e.ok(t, s+"\n", "key", "verify"); !strings.Contains(out, fmt.Sprintf("key k%02d ", i)) {
			t.Errorf("secret printed for k%02d verifies as %q", i, out)
		}
	}
	checkBolt(t, e.vault)
}

// A process creating keys in a loop is killed with SIGKILL at a random
// moment, 20 times. Each time the vault opens, passes bbolt's check, and
// holds every key whose creation was reported as done.
func testCrash(t *testing.T, bin string) {
	e := newKeymintEnv(t, bin)
	e.ok(t, "", "init")
	// The loop prints a name only after keymint has exited 0 for it.
	const loop = `i=0
while :; do
	i=$((i+1))
	"$KEYMINT" key new "r${ROUND}k$i" >/dev/null 2>&1 && echo "r${ROUND}k$i"
done`
	var reported []string
	for round := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", loop)
		cmd.Env = append(slices.Clip(e.env), "KEYMINT="+bin, fmt.Sprintf("ROUND=%d", round))
		// Its own process group, so one SIGKILL takes the shell and the
		// keymint it is running together, as a crash or power cut would.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill: %v", err)
		}
		err := cmd.Wait()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Exited() {
			t.Fatalf("round %d: the loop ended with %v, not by SIGKILL", round, err)
		}
		// Only whole lines: echo writes a name and its newline at once.
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			reported = append(reported, sc.Text())
		}

		checkBolt(t, e.vault)
		got := e.keyNames(t)
		for _, name := range reported {
			if !slices.Contains(got, name) {
				t.Fatalf("round %d: key %s was reported created but is missing", round, name)
			}
		}
		t.Logf("round %d: %d keys reported so far, %d in the vault", round, len(reported), len(got))
	}
	if len(reported) == 0 {
		t.Fatal("no key was ever created: the loop did not run")
	}
	// The vault still takes changes after all that.
	e.ok(t, "", "key", "new", "after-crashes")
}

// damage is a way to damage a vault file: each call returns the damaged
// file's bytes for case i, or ok=false when there are no more cases. The
// pages bbolt uses are orig[:used]; the rest is room to grow.
type damage func(orig []byte, used, i int) (damaged []byte, ok bool)

// truncations cuts the file at every 512 bytes, and one byte short of each
// 4 KiB page boundary.
func truncations(orig []byte, _, i int) ([]byte, bool) {
	n := i * 512
	if i%2 == 1 {
		n = (i/2+1)*4096 - 1
	}
	if n >= len(orig) {
		return nil, false
	}
	return orig[:n], true
}

// bitFlips flips one bit at 60 places spread over the pages in use.
func bitFlips(orig []byte, used, i int) ([]byte, bool) {
	const places = 60
	if i >= places {
		return nil, false
	}
	b := bytes.Clone(orig)
	at := i*used/places + rand.IntN(max(1, used/places))
	b[at] ^= 1 << rand.IntN(8)
	return b, true
}

// testDamaged damages a vault in many ways and runs a read and a write on
// each: keymint may succeed (the damage hit free space) or fail with exit 1
// and one line on stderr, but never crash, panic, hang or report a usage
// error; and a failed command leaves the file as it was.
func testDamaged(t *testing.T, bin string, damage damage) {
	e := newKeymintEnv(t, bin)
	e.ok(t, "", "init")
	for _, name := range []string{"billing", "ci", "deploy"} {
		e.ok(t, "", "key", "new", name, "--scope", "invoices:read")
		e.ok(t, "", "client", "new", name+"-client")
	}
	orig, err := os.ReadFile(e.vault)
	if err != nil {
		t.Fatal(err)
	}
	size, err := vaulttest.UsedSize(e.vault)
	if err != nil {
		t.Fatal(err)
	}
	used := int(min(size, int64(len(orig))))
	// What this machine remembers of the vault as it is in orig: put back
	// with each case, so that each is refused for its damage, not as a
	// rollback after a case whose write went through.
	states, err := readDir(e.state)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) == 0 {
		t.Fatalf("no state remembered in %s", e.state)
	}
	type result struct{ ok, failed int }
	var res result
	for i := 0; ; i++ {
		damaged, more := damage(orig, used, i)
		if !more {
			break
		}
		if err := os.WriteFile(e.vault, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := writeDir(e.state, states); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"key", "ls", "-o", "json"},
			{"client", "show", "ci-client"},
			{"key", "new", fmt.Sprintf("new%d", i)},
		} {
			before, err := os.ReadFile(e.vault)
			if err != nil {
				t.Fatal(err)
			}
			_, stderr, code := e.run(t, "", args...)
			switch code {
			case 0:
				res.ok++
				continue
			case 1:
				res.failed++
			default:
				t.Fatalf("case %d: keymint %s: exit %d: %s", i, strings.Join(args, " "), code, stderr)
			}
			line := stderr
			if slices.Contains(args, "json") {
				// -o json: the error is {"error": ..., "exit": N} instead.
				var je struct {
					Error string `json:"error"`
					Exit  int    `json:"exit"`
				}
				if json.Unmarshal([]byte(stderr), &je) == nil && je.Exit == code && strings.Count(stderr, "\n") == 1 {
					line = "keymint: " + je.Error + "\n"
				}
			}
			if !strings.HasPrefix(line, "keymint: ") || strings.Count(line, "\n") != 1 || strings.Contains(line, "panic") {
				t.Fatalf("case %d: keymint %s: stderr is not one line starting with \"keymint: \": %q", i, strings.Join(args, " "), stderr)
			}
			// The remembered state is put back with each case: the damage
			// is what must be refused, not an older revision.
			if strings.Contains(stderr, "rolled back") {
				t.Fatalf("case %d: keymint %s: the damage was taken for a rollback: %s", i, strings.Join(args, " "), strings.TrimSpace(stderr))
			}
			after, err := os.ReadFile(e.vault)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("case %d: keymint %s failed (%s) but changed the file", i, strings.Join(args, " "), strings.TrimSpace(stderr))
			}
		}
	}
	t.Logf("%d commands succeeded, %d failed cleanly", res.ok, res.failed)
}

// readDir reads the regular files of dir by name.
func readDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = data
	}
	return files, nil
}

// writeDir makes dir hold exactly files, as readDir read them.
func writeDir(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
