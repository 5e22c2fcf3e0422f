package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hardenChildEnv makes the test binary, run again by TestHardenProcess,
// harden itself and report instead of testing.
const hardenChildEnv = "KEYMINT_TEST_HARDEN_CHILD"

// TestHardenProcess calls hardenProcess in a child process (it cannot be
// undone, so not in this one) that starts with core dumps allowed, and has
// the child check its own core limit and dumpable flag, which only a
// process itself can read.
func TestHardenProcess(t *testing.T) {
	if os.Getenv(hardenChildEnv) == "1" {
		hardenChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHardenProcess$", "-test.v")
	cmd.Env = append(os.Environ(), hardenChildEnv+"=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	startWithCores(t, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "hardened: core limit 0/0, dumpable 0") {
		t.Fatalf("child did not report being hardened:\n%s", out.String())
	}
}

func hardenChild(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur == 0 {
		t.Fatalf("child started with core limit %d/%d; the test needs it above 0 to show a change", lim.Cur, lim.Max)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 1 {
		t.Fatalf("child started with dumpable %d (%v), want 1", d, err)
	}
	if err := hardenProcess(); err != nil {
		t.Fatalf("hardenProcess: %v", err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lim.Cur != 0 || lim.Max != 0 || d != 0 {
		t.Fatalf("after hardenProcess: core limit %d/%d, dumpable %d; want 0/0, 0", lim.Cur, lim.Max, d)
	}
	fmt.Printf("hardened: core limit %d/%d, dumpable %d\n", lim.Cur, lim.Max, d)
}

// TestHardenedBinary checks a real keymint process from outside, while it
// waits for `key verify`'s key on stdin: its core limit, in
// /proc/PID/limits, and whether it is dumpable, which shows in who owns
// /proc/PID: the kernel gives a process's /proc files to root when it is
// not dumpable. That shows only for a process that is not root's, so as
// root (CI) keymint runs as nobody (uid 65534); as another user, as that
// user. A process that does not harden itself (cat) is the control.
func TestHardenedBinary(t *testing.T) {
	bin := buildKeymint(t)
	uid := os.Getuid()
	var cred *syscall.Credential
	home := t.TempDir()
	if uid == 0 {
		uid = 65534
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
		// nobody must reach the binary and have a home: t.TempDir()
		// makes them in a 0700 directory of root's.
		for _, dir := range []string{filepath.Dir(filepath.Dir(bin)), filepath.Dir(bin)} {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(home, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatalf("the control process is cat, which is not installed: %v", err)
	}

	for _, tc := range []struct {
		name     string
		argv     []string
		hardened bool
	}{
		{"cat", []string{cat}, false},
		{"keymint", []string{bin, "key", "verify"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, tc.argv[0], tc.argv[1:]...)
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + home,
				"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
				"XDG_DATA_HOME=" + filepath.Join(home, "data"),
				"XDG_STATE_HOME=" + filepath.Join(home, "state"),
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			cmd.WaitDelay = time.Second
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			startWithCores(t, cmd)
			pid := cmd.Process.Pid

			// The process hardens itself as it starts: wait for it to
			// reach the state it then keeps while it waits for stdin.
			wantCore := "unlimited"
			wantOwner := uid
			if tc.hardened {
				wantCore, wantOwner = "0", 0
			}
			var core string
			var owner, procUID int
			deadline := time.Now().Add(20 * time.Second)
			for {
				core, owner, procUID = procHardening(t, pid)
				if core == wantCore && owner == wantOwner && procUID == uid {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s (pid %d) as uid %d: core limit %q, /proc/%d owned by uid %d; want core limit %q and owner %d",
						tc.name, pid, procUID, core, pid, owner, wantCore, wantOwner)
				}
				time.Sleep(10 * time.Millisecond)
			}

			// It still works: an empty key is refused as keymint refuses
			// one, and no warning about core dumps.
			stdin.Close()
			err = cmd.Wait()
			if !tc.hardened {
				if err != nil {
					t.Fatalf("cat: %v", err)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
				t.Fatalf("keymint key verify with no key: %v, want exit 1; stderr: %s", err, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), "keymint: invalid key") {
				t.Fatalf("stderr: %q, want keymint's invalid key error", stderr.String())
			}
		})
	}
}

// procHardening reads, from outside, the core limit of process pid (the
// soft limit; "unlimited" or a number), the owner of its /proc entry and
// its real uid.
func procHardening(t *testing.T, pid int) (core string, owner, uid int) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid)
	limits, err := os.ReadFile(dir + "/limits")
	if err != nil {
		t.Fatalf("read %s/limits: %v", dir, err)
	}
	for line := range strings.Lines(string(limits)) {
		if rest, ok := strings.CutPrefix(line, "Max core file size"); ok {
			if f := strings.Fields(rest); len(f) >= 2 && f[0] == f[1] {
				core = f[0]
			} else {
				core = strings.TrimSpace(rest) // soft and hard differ: matches no want
			}
		}
	}
	fi, err := os.Stat(dir + "/status")
	if err != nil {
		t.Fatalf("stat %s/status: %v", dir, err)
	}
	owner = int(fi.Sys().(*syscall.Stat_t).Uid)
	f, err := os.Open(dir + "/status")
	if err != nil {
		t.Fatalf("read %s/status: %v", dir, err)
	}
	defer f.Close()
	uid = -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				uid, _ = strconv.Atoi(f[0])
			}
		}
	}
	return core, owner, uid
}

// coreLimitMu keeps two tests from raising and restoring the core limit at
// once.
var coreLimitMu sync.Mutex

// startWithCores starts cmd with core dumps allowed (an unlimited core
// limit), so that a limit of 0 afterwards shows the process set it: CI, for
// one, runs with 0 already. A child's limits are this process's when it
// starts, so the limit is raised only around the start. Raising the hard
// limit needs root (CI); another user's own hard limit must allow it.
func startWithCores(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	coreLimitMu.Lock()
	defer coreLimitMu.Unlock()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &old); err != nil {
		t.Fatal(err)
	}
	open := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &open); err != nil {
		t.Fatalf("allow core dumps for the child (core limit %d/%d): %v; run the test as root, as CI does, or with `ulimit -Hc unlimited`", old.Cur, old.Max, err)
	}
	err := cmd.Start()
	if rerr := unix.Setrlimit(unix.RLIMIT_CORE, &old); rerr != nil {
		t.Errorf("restore the core limit: %v", rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
}
