package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keymint/keymint/vault/vaulttest"
)

// TestMain lets the test binary act as keymint: testscript puts a copy of it
// named "keymint" on $PATH, and that copy runs [hardenedRun] exactly as main does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"keymint": func() { os.Exit(hardenedRun(os.Args[1:], systemStreams(), os.Getenv)) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script. Each one runs
// in its own $WORK with HOME and the XDG directories inside it, so the
// default vault ($VAULT), identity ($IDENTITY), config file ($CONFIG) and
// the remembered states of vaults ($STATEDIR, for the rollback check) are
// private to it. $FORMAT1 is vault/testdata/format1, a vault made by the
// format-1 keymint with what it was made with, to copy from. The commands
// the scripts add to testscript's own are described where they are
// defined, below.
func TestScripts(t *testing.T) {
	t.Parallel()
	format1, err := filepath.Abs(filepath.Join("..", "..", "vault", "testdata", "format1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(format1, "vault.db")); err != nil {
		t.Fatalf("the format-1 vault the scripts migrate: %v", err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, "home")
			cfg := filepath.Join(env.WorkDir, ".config")
			data := filepath.Join(env.WorkDir, ".local", "share")
			state := filepath.Join(env.WorkDir, ".local", "state")
			env.Setenv("HOME", home)
			env.Setenv("USERPROFILE", home)
			env.Setenv("XDG_CONFIG_HOME", cfg)
			env.Setenv("XDG_DATA_HOME", data)
			env.Setenv("XDG_STATE_HOME", state)
			env.Setenv("STATEDIR", filepath.Join(state, "keymint"))
			env.Setenv("VAULT", filepath.Join(data, "keymint", "vault.db"))
			env.Setenv("IDENTITY", filepath.Join(cfg, "keymint", "identity.txt"))
			env.Setenv("CONFIG", filepath.Join(cfg, "keymint", "config.yaml"))
			env.Setenv("FORMAT1", format1)
			env.Setenv("GORACE", raceOptions())
			env.Values[heldLocksKey{}] = map[string]func() error{}
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":        cmdExits,
			"vaultpoke":    cmdVaultpoke,
			"mkbolt":       cmdMkbolt,
			"holdlock":     cmdHoldlock,
			"flipbyte":     cmdFlipbyte,
			"rmrecord":     cmdRmrecord,
			"statefiles":   cmdStatefiles,
			"truncate":     cmdTruncate,
			"perm":         cmdPerm,
			"contains":     cmdContains,
			"jsonfield":    cmdJSONField,
			"jsonenv":      cmdJSONEnv,
			"jsonfile":     cmdJSONFile,
			"envfile":      cmdEnvfile,
			"typo":         cmdTypo,
			"waitfor":      cmdWaitfor,
			"need":         cmdNeed,
			"seedgrant":    cmdSeedgrant,    // grant_test.go
			"refreshtoken": cmdRefreshtoken, // grant_test.go
			"freeport":     cmdFreeport,     // serve_test.go
			"waitport":     cmdWaitport,     // serve_test.go
			"etcd":         cmdEtcd,         // etcd_test.go
		},
	})
}

// raceOptions keeps the caller's race detector options for the keymint
// processes a script runs, without the second each one would otherwise
// sleep on exit (under -race) waiting for late reports.
func raceOptions() string {
	return strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
}

// exits CODE PROG [ARGS...] runs PROG like exec and checks its exit code.
// A non-zero exit must come with exactly one line on stderr that starts
// with "keymint: " and no sign of a panic: the CLI's promise for errors.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
	if want == 0 {
		return
	}
	stderr := ts.ReadFile("stderr")
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		ts.Fatalf("stderr shows a panic")
	}
	if !strings.HasPrefix(stderr, "keymint: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		ts.Fatalf("stderr is not one line starting with %q: %q", "keymint: ", stderr)
	}
}

// need PROG... fails the script, saying how to get them, unless every PROG
// is installed: a script that skipped for want of a tool would pass while
// testing nothing. scripts/test installs what the scripts need.
func cmdNeed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: need PROG...")
	}
	for _, prog := range args {
		if _, err := exec.LookPath(prog); err != nil {
			pkg := debianPackages[prog]
			if pkg == "" {
				pkg = prog
			}
			ts.Fatalf("%s is not installed, and this script runs it: install it (on Debian, apt-get install %s), or run ./scripts/test, which installs what the tests need", prog, pkg)
		}
	}
}

// debianPackages names the Debian package of the programs scripts need,
// where it is not the program's own name.
var debianPackages = map[string]string{"sh": "dash", "timeout": "coreutils"}

// vaultpoke FILE KEY N writes N as a big-endian uint64 under KEY in the
// vault's meta bucket, bypassing keymint, as a newer keymint would.
func cmdVaultpoke(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: vaultpoke FILE KEY N")
	}
	n, err := strconv.ParseUint(args[2], 10, 64)
	ts.Check(err)
	ts.Check(vaulttest.SetMeta(ts.MkAbs(args[0]), args[1], binary.BigEndian.AppendUint64(nil, n)))
}

// mkbolt FILE makes a bbolt database that is not a keymint vault.
func cmdMkbolt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mkbolt FILE")
	}
	ts.Check(vaulttest.MakeForeignDB(ts.MkAbs(args[0])))
}

type heldLocksKey struct{}

// holdlock FILE opens FILE with bbolt and so holds its lock, as another
// keymint in the middle of a transaction would; holdlock -release FILE lets
// go. The script's end releases it too.
func cmdHoldlock(ts *testscript.TestScript, neg bool, args []string) {
	held := ts.Value(heldLocksKey{}).(map[string]func() error)
	switch {
	case !neg && len(args) == 1:
		path := ts.MkAbs(args[0])
		if held[path] != nil {
			ts.Fatalf("the lock of %s is held already", args[0])
		}
		release, err := vaulttest.HoldLock(path)
		ts.Check(err)
		held[path] = release
		ts.Defer(func() {
			if held[path] != nil {
				delete(held, path)
				release()
			}
		})
	case !neg && len(args) == 2 && args[0] == "-release":
		path := ts.MkAbs(args[1])
		release := held[path]
		if release == nil {
			ts.Fatalf("no lock held on %s", args[1])
		}
		delete(held, path)
		ts.Check(release())
	default:
		ts.Fatalf("usage: holdlock [-release] FILE")
	}
}

// recordArgs parses FILE [BUCKET [last]], BUCKET keys by default.
func recordArgs(ts *testscript.TestScript, name string, neg bool, args []string) (path, bucket string, last bool) {
	if neg || len(args) < 1 || len(args) > 3 || (len(args) == 3 && args[2] != "last") {
		ts.Fatalf("usage: %s FILE [BUCKET [last]]", name)
	}
	bucket = "keys"
	if len(args) >= 2 {
		bucket = args[1]
	}
	return ts.MkAbs(args[0]), bucket, len(args) == 3
}

// flipbyte FILE [BUCKET [last]] flips one bit in the middle of the first
// (or last) sealed value of BUCKET (default keys), in every copy of it in
// the file: a record damaged on disk without bbolt noticing.
func cmdFlipbyte(ts *testscript.TestScript, neg bool, args []string) {
	path, bucket, last := recordArgs(ts, "flipbyte", neg, args)
	_, err := vaulttest.FlipRecord(path, bucket, last)
	ts.Check(err)
}

// rmrecord FILE [BUCKET [last]] removes the first (or last) record of
// BUCKET (default keys) with bbolt, bypassing keymint: every value left is
// authentic, but the set of records is not one the vault wrote. For the
// audit bucket, last cuts the newest entry off the log.
func cmdRmrecord(ts *testscript.TestScript, neg bool, args []string) {
	path, bucket, last := recordArgs(ts, "rmrecord", neg, args)
	ts.Check(vaulttest.DeleteRecord(path, bucket, last))
}

// statefiles N checks that $STATEDIR, where keymint remembers the newest
// state of each vault it has opened, is a 0700 directory holding exactly N
// files, each named after a vault id (32 hex digits) with ".state", mode
// 0600, and nothing else (no temporary file left behind).
func cmdStatefiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: statefiles N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	dir := ts.Getenv("STATEDIR")
	st, err := os.Stat(dir)
	ts.Check(err)
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o700 {
		ts.Fatalf("%s has mode %04o, want 0700", dir, st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	ts.Check(err)
	name := regexp.MustCompile(`^[0-9a-f]{32}\.state$`)
	for _, e := range entries {
		info, err := e.Info()
		ts.Check(err)
		switch {
		case !name.MatchString(e.Name()) || !info.Mode().IsRegular():
			ts.Fatalf("%s holds %s, which is not a vault's state file", dir, e.Name())
		case runtime.GOOS != "windows" && info.Mode().Perm() != 0o600:
			ts.Fatalf("%s has mode %04o, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if len(entries) != want {
		ts.Fatalf("%s holds %d state files, want %d", dir, len(entries), want)
	}
}

// truncate FILE N cuts FILE to N bytes.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE N")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}

// perm MODE PATH... checks the permission bits of each path (Unix only).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: perm MODE PATH...")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	if runtime.GOOS == "windows" {
		return
	}
	for _, p := range args[1:] {
		st, err := os.Stat(ts.MkAbs(p))
		ts.Check(err)
		if got := st.Mode().Perm(); got != os.FileMode(want) {
			ts.Fatalf("%s has mode %04o, want %04o", p, got, want)
		}
	}
}

// contains FILE [-f LIST] [STRING...] checks that FILE (or stdout, stderr)
// holds every string, each given literally or as a line of LIST; with !,
// that it holds none. It works on binary files such as a vault.
func cmdContains(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: contains FILE [-f LIST] [STRING...]")
	}
	data := ts.ReadFile(args[0])
	var want []string
	for i := 1; i < len(args); i++ {
		if args[i] == "-f" && i+1 < len(args) {
			i++
			for _, line := range strings.Split(ts.ReadFile(args[i]), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					want = append(want, line)
				}
			}
			continue
		}
		want = append(want, args[i])
	}
	if len(want) == 0 {
		ts.Fatalf("contains: nothing to look for")
	}
	for _, s := range want {
		found := strings.Contains(data, s)
		switch {
		case neg && found:
			ts.Fatalf("%s contains %q", args[0], s)
		case !neg && !found:
			ts.Fatalf("%s does not contain %q", args[0], s)
		}
	}
}

// jsonfield [-re] FILE PATH [WANT] reads the JSON value at PATH in FILE (or
// stdout): PATH is dot-separated object keys and array indexes ("." is the
// whole value), and "length" after an array is its length. With WANT, the
// value (a string as is, anything else as compact JSON) must equal WANT, or
// match it as a regular expression with -re; without WANT, it must be
// present. ! inverts either.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	re := len(args) > 0 && args[0] == "-re"
	if re {
		args = args[1:]
	}
	if len(args) < 2 || len(args) > 3 || (re && len(args) != 3) {
		ts.Fatalf("usage: jsonfield [-re] FILE PATH [WANT]")
	}
	got, ok := jsonLookup(ts, args[0], args[1])
	if len(args) == 2 {
		if ok == neg {
			ts.Fatalf("%s: %s present = %v", args[0], args[1], ok)
		}
		return
	}
	if !ok && !neg {
		ts.Fatalf("%s: no %s", args[0], args[1])
	}
	match := ok && got == args[2]
	if re {
		r, err := regexp.Compile(args[2])
		ts.Check(err)
		match = ok && r.MatchString(got)
	}
	if match == neg {
		ts.Fatalf("%s: %s = %s, want %s%s", args[0], args[1], got, map[bool]string{true: "not "}[neg], args[2])
	}
}

// jsonenv FILE PATH NAME sets $NAME to the value at PATH: for ids and names,
// never for secrets, which stay out of argv.
func cmdJSONEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonenv FILE PATH NAME")
	}
	v, ok := jsonLookup(ts, args[0], args[1])
	if !ok {
		ts.Fatalf("%s: no %s", args[0], args[1])
	}
	ts.Setenv(args[2], v)
}

// jsonfile FILE PATH OUT writes the value at PATH, and a newline, to OUT:
// how a script keeps a secret to feed back on stdin.
func cmdJSONFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonfile FILE PATH OUT")
	}
	v, ok := jsonLookup(ts, args[0], args[1])
	if !ok {
		ts.Fatalf("%s: no %s", args[0], args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(v+"\n"), 0o600))
}

func jsonLookup(ts *testscript.TestScript, file, path string) (string, bool) {
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(file)), &v); err != nil {
		ts.Fatalf("%s is not one JSON value: %v", file, err)
	}
	if path != "." {
		for _, p := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				var ok bool
				if v, ok = x[p]; !ok {
					return "", false
				}
			case []any:
				if p == "length" {
					v = float64(len(x))
					continue
				}
				i, err := strconv.Atoi(p)
				if err != nil || i < 0 || i >= len(x) {
					return "", false
				}
				v = x[i]
			default:
				return "", false
			}
		}
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	b, err := json.Marshal(v)
	ts.Check(err)
	return string(b), true
}

// envfile NAME FILE sets $NAME to FILE's content, without surrounding space:
// how KEYMINT_IDENTITY gets an identity without it appearing in the script.
func cmdEnvfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile NAME FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// typo IN OUT copies the secret in IN to OUT with one character of its
// random part changed, as a person mistyping it would.
func cmdTypo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: typo IN OUT")
	}
	s := []byte(strings.TrimSpace(ts.ReadFile(args[0])))
	i := bytes.LastIndexByte(s, '_') + 5
	if i < 5 || i >= len(s) {
		ts.Fatalf("%s does not hold a secret", args[0])
	}
	if s[i] == 'x' {
		s[i] = 'y'
	} else {
		s[i] = 'x'
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), append(s, '\n'), 0o600))
}

// waitfor TIMEOUT PATTERN PROG [ARGS...] runs PROG as exec does, and again
// every 20ms, until it exits 0 with a stdout that matches the regular
// expression PATTERN (multi-line, as the stdout command has it); if TIMEOUT passes first, it fails, showing the last
// run. stdout and stderr are then the last run's, for the commands that
// follow (so are the files PROG writes). It is how a script waits for
// something that happens in its own time, such as `keymint serve` taking
// in a change made with the CLI, for as long as that takes and no longer:
// no script sleeps. Each run is logged. A run that fails to authenticate
// to a server drains its failed-authentication throttle as any other
// request would.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: waitfor TIMEOUT PATTERN PROG [ARGS...]")
	}
	timeout, err := time.ParseDuration(args[0])
	ts.Check(err)
	re, err := regexp.Compile("(?m)" + args[1]) // as stdout matches
	ts.Check(err)
	const interval = 20 * time.Millisecond
	deadline := time.Now().Add(timeout)
	for {
		err := ts.Exec(args[2], args[3:]...)
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[2], err)
		}
		stdout := ts.ReadFile("stdout")
		if err == nil && re.MatchString(stdout) {
			return
		}
		if time.Now().After(deadline) {
			exit := "exit 0"
			if err != nil {
				exit = err.Error()
			}
			ts.Fatalf("%s did not exit 0 with a stdout matching %q within %s; its last run: %s, stdout %q, stderr %q",
				args[2], args[1], timeout, exit, stdout, ts.ReadFile("stderr"))
		}
		time.Sleep(interval)
	}
}
