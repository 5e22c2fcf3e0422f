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
	ptmx, tty := openPTY(t)
	var echoed syncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&echoed, ptmx) // ends with EIO once the terminal side closes
		close(copied)
	}()

	// The test binary runs as keymint when its argv[0] is "keymint" (see
	// TestMain). The second passphrase differs, so init stops before the
	// second-long scrypt; both prompts have been answered by then.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, self, "init", "--passphrase")
	cmd.Args[0] = "keymint"
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_STATE_HOME=" + filepath.Join(dir, "state"),
		"GORACE=" + raceOptions(),
	}
	var stderr syncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, io.Discard, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	for _, step := range []struct{ prompt, typed string }{
		{"New vault passphrase: ", "correct horse battery\n"},
		{"Repeat passphrase: ", "correct horse battery staple\n"},
	} {
		// Type only once the prompt is out and echo is off, as a person would.
		waitFor(t, step.prompt, func() bool {
			return strings.Contains(stderr.String(), step.prompt) && !echoOn(t, tty)
		})
		if _, err := io.WriteString(ptmx, step.typed); err != nil {
			t.Fatal(err)
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("init with two different passphrases: %v, want exit 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "keymint: the passphrases do not match") {
		t.Errorf("stderr does not say the passphrases differ:\n%s", stderr.String())
	}
	if !echoOn(t, tty) {
		t.Error("keymint left the terminal with echo off")
	}

	// The control: with echo back on, what is typed does show.
	io.WriteString(ptmx, "visible\n")
	waitFor(t, "the control line's echo", func() bool { return strings.Contains(echoed.String(), "visible") })
	tty.Close()
	<-copied
	if strings.Contains(echoed.String(), "correct horse") {
		t.Errorf("the terminal echoed the passphrase: %q", echoed.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "keymint", "vault.db")); err == nil {
		t.Error("a vault was created although the passphrases differ")
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
