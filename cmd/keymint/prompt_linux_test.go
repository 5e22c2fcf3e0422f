//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPassphrasePromptNoEcho types passphrases into `keymint init
// --passphrase` on a pseudo-terminal and checks that the terminal never
// echoes them, and that echo is back on afterwards. testscript's ttyin
// cannot show this: it writes its input before keymint turns echo off.
func TestPassphrasePromptNoEcho(t *testing.T) {
	dir := t.TempDir()
	// The second passphrase differs, so init stops before the second-long
	// scrypt; both prompts have been answered by then.
	s := startOnTTY(t, map[string]string{
		"HOME":            dir,
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_STATE_HOME":  filepath.Join(dir, "state"),
	}, "init", "--passphrase")
	s.typeAt("New vault passphrase: ", "correct horse battery")
	s.typeAt("Repeat passphrase: ", "correct horse battery staple")
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("init with two different passphrases: %v, want exit 1; stderr:\n%s", err, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "keymint: the passphrases do not match") {
		t.Errorf("stderr does not say the passphrases differ:\n%s", s.stderr.String())
	}
	s.checkNoEcho("correct horse")
	if _, err := os.Stat(filepath.Join(dir, "data", "keymint", "vault.db")); err == nil {
		t.Error("a vault was created although the passphrases differ")
	}
}

// ttySession is a keymint process whose controlling terminal and stdin
// are a pseudo-terminal, for the tests of what it asks there: what the
// terminal showed is kept, in echoed.
type ttySession struct {
	t              *testing.T
	cmd            *exec.Cmd
	ptmx, tty      *os.File
	echoed, stderr syncBuffer
	stdout         syncBuffer
	copied         chan struct{}
}

// startOnTTY starts `keymint ARGS` with env (and PATH) on a new
// pseudo-terminal. The test binary runs as keymint when its argv[0] is
// "keymint" (see TestMain).
func startOnTTY(t *testing.T, env map[string]string, args ...string) *ttySession {
	t.Helper()
	s := &ttySession{t: t, copied: make(chan struct{})}
	s.ptmx, s.tty = openPTY(t)
	go func() {
		io.Copy(&s.echoed, s.ptmx) // ends with EIO once the terminal side closes
		close(s.copied)
	}()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s.cmd = exec.CommandContext(ctx, self, args...)
	s.cmd.Args[0] = "keymint"
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GORACE=" + raceOptions()}
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = s.tty, &s.stdout, &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s.cmd.WaitDelay = time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// typeAt types line at the terminal once prompt is out and echo is off,
// as a person would.
func (s *ttySession) typeAt(prompt, line string) {
	s.t.Helper()
	waitFor(s.t, prompt, func() bool {
		return strings.Contains(s.stderr.String(), prompt) && !echoOn(s.t, s.tty)
	})
	if _, err := io.WriteString(s.ptmx, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

// checkNoEcho, once keymint has exited, checks that it left echo on and
// that the terminal never showed secret. The control: with echo back on,
// what is typed does show.
func (s *ttySession) checkNoEcho(secret string) {
	s.t.Helper()
	if !echoOn(s.t, s.tty) {
		s.t.Error("keymint left the terminal with echo off")
	}
	io.WriteString(s.ptmx, "visible\n")
	waitFor(s.t, "the control line's echo", func() bool { return strings.Contains(s.echoed.String(), "visible") })
	s.tty.Close()
	<-s.copied
	if strings.Contains(s.echoed.String(), secret) {
		s.t.Errorf("the terminal echoed the secret: %q", s.echoed.String())
	}
}

// openPTY opens a pseudo-terminal pair: the controller, and the terminal
// side a child process gets as its stdin.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals (/dev/ptmx), which the prompt tests need: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("get terminal state: %v", err)
	}
	return tio.Lflag&unix.ECHO != 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
