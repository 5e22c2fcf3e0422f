//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRekeyProgressOnTerminal: with stderr a terminal, `keymint vault
// rekey` draws its progress bar there, to 100%; the report goes to stdout.
// (testscript's ttyin gives a terminal to stdin only; rekey.txtar checks
// that a pipe gets nothing.)
func TestRekeyProgressOnTerminal(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_STATE_HOME=" + filepath.Join(dir, "state"),
		"GORACE=" + raceOptions(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(stderr io.Writer, args ...string) string {
		t.Helper()
		var stdout bytes.Buffer
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Args[0] = "keymint"
		cmd.Env = env
		cmd.Stdout = &stdout
		cmd.Stderr = stderr
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("keymint %s: %v", strings.Join(args, " "), err)
		}
		return stdout.String()
	}
	run(io.Discard, "init")
	run(io.Discard, "key", "new", "one")

	ptmx, tty := openPTY(t)
	var drawn syncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&drawn, ptmx) // ends with EIO once the terminal side closes
		close(copied)
	}()
	out := run(tty, "vault", "rekey", "--yes")
	tty.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	if !strings.HasPrefix(out, "rekeyed: ") {
		t.Errorf("stdout = %q", out)
	}
	if got := drawn.String(); !strings.Contains(got, "re-sealing records") || !strings.Contains(got, "100%") {
		t.Errorf("terminal shows %q, want a progress bar to 100%%", got)
	}
}
