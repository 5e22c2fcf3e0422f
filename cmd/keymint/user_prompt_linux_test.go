//go:build linux

package main

import (
	"strings"
	"testing"

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
	s := startOnTTY(t, env, "user", "add", "alice")
	const typed = "correct horse battery"
	s.typeAt("New password for alice: ", typed)
	s.typeAt("Repeat password: ", typed)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("user add: %v; stderr:\n%s", err, s.stderr.String())
	}
	if !strings.HasPrefix(s.stdout.String(), "created user alice (usr_") {
		t.Errorf("stdout %q", s.stdout.String())
	}
	s.checkNoEcho("correct horse")
	for _, o := range []string{s.stdout.String(), s.stderr.String()} {
		if strings.Contains(o, "correct horse") || strings.Contains(o, "argon2") {
			t.Errorf("output shows the password or its hash: %q", o)
		}
	}
	if err := password.Verify(storedHash(t, env, "alice"), typed); err != nil {
		t.Errorf("the stored hash does not verify the typed password: %v", err)
	}
}
