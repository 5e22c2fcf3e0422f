//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/keymint/password"
)

// TestUserPasswordPromptNoEcho types a new user's password twice into
// `keymint user add` on a pseudo-terminal and checks that the terminal
// never echoes it, that echo is back on afterwards, and that the user
// exists with that password. (TestPassphrasePromptNoEcho does the same for
// init's passphrase; this is the same prompt, io.readSecret, asked for a
// password.)
func TestUserPasswordPromptNoEcho(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	ptmx, tty := openPTY(t)
	var echoed syncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&echoed, ptmx)
		close(copied)
	}()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "user", "add", "alice")
	cmd.Args[0] = "keymint"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GORACE=" + raceOptions()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout bytes.Buffer
	var stderr syncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const typed = "correct horse battery"
	for _, prompt := range []string{"New password for alice: ", "Repeat password: "} {
		waitFor(t, prompt, func() bool {
			return strings.Contains(stderr.String(), prompt) && !echoOn(t, tty)
		})
		if _, err := io.WriteString(ptmx, typed+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("user add: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "created user alice (usr_") {
		t.Errorf("stdout %q", stdout.String())
	}
	if !echoOn(t, tty) {
		t.Error("keymint left the terminal with echo off")
	}
	io.WriteString(ptmx, "visible\n")
	waitFor(t, "the control line's echo", func() bool { return strings.Contains(echoed.String(), "visible") })
	tty.Close()
	<-copied
	if strings.Contains(echoed.String(), "correct horse") {
		t.Errorf("the terminal echoed the password: %q", echoed.String())
	}
	for _, o := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(o, "correct horse") || strings.Contains(o, "argon2") {
			t.Errorf("output shows the password or its hash: %q", o)
		}
	}
	if err := password.Verify(storedHash(t, env, "alice"), typed); err != nil {
		t.Errorf("the stored hash does not verify the typed password: %v", err)
	}
}
