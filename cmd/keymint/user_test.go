package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/vault"
)

// openCLIVault opens the default vault of a cliEnv, as keymint does.
func openCLIVault(t *testing.T, env map[string]string) *vault.Vault {
	t.Helper()
	ids, err := vault.ReadIdentityFile(filepath.Join(env["XDG_CONFIG_HOME"], "keymint", "identity.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(filepath.Join(env["XDG_DATA_HOME"], "keymint", "vault.db"), vault.Options{
		Identities: ids,
		StateDir:   filepath.Join(env["XDG_STATE_HOME"], "keymint"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// storedHash reads the password hash the vault keeps for a user.
func storedHash(t *testing.T, env map[string]string, name string) string {
	t.Helper()
	var h string
	if err := openCLIVault(t, env).View(func(tx *vault.Tx) error {
		u, err := tx.User(name)
		if err != nil {
			return err
		}
		h = u.PasswordHash
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUserPasswordStored: the password user add and user passwd read (from
// stdin, from a file) is the one the vault's hash verifies, hashed with
// argon2id at password.Default; the line ending is not part of it, and
// after passwd the old password no longer verifies. No output shows the
// password or its hash.
func TestUserPasswordStored(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	const first, second = "first password here", "second password, with spaces "
	outputs := []string{}
	out, errs, code := runAt(env, time.Now, first+"\r\nnot this line\n", "user", "add", "alice")
	if code != exitOK {
		t.Fatalf("user add: exit %d: %s", code, errs)
	}
	outputs = append(outputs, out, errs)
	h1 := storedHash(t, env, "alice")
	p := password.Default
	if !strings.HasPrefix(h1, fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", p.Memory, p.Time, p.Threads)) {
		t.Errorf("stored hash %q: not argon2id at password.Default", h1)
	}
	if err := password.Verify(h1, first); err != nil {
		t.Errorf("the stored hash does not verify the password given on stdin: %v", err)
	}

	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(second+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runAt(env, time.Now, "", "user", "passwd", "alice", "--password-file", file, "-o", "json")
	if code != exitOK {
		t.Fatalf("user passwd: exit %d: %s", code, errs)
	}
	outputs = append(outputs, out, errs)
	h2 := storedHash(t, env, "alice")
	if err := password.Verify(h2, second); err != nil {
		t.Errorf("after passwd, the new password does not verify: %v", err)
	}
	if err := password.Verify(h2, first); !errors.Is(err, password.ErrMismatch) {
		t.Errorf("after passwd, the old password: %v, want ErrMismatch", err)
	}
	for _, args := range [][]string{{"user", "ls"}, {"user", "ls", "-o", "json"}, {"user", "show", "alice"}, {"user", "show", "alice", "-o", "json"}} {
		out, errs, _ := runAt(env, time.Now, "", args...)
		outputs = append(outputs, out, errs)
	}
	for _, o := range outputs {
		for _, secret := range []string{first, strings.TrimSpace(second), h1, h2, "argon2"} {
			if strings.Contains(o, secret) {
				t.Errorf("output %q shows %q", o, secret)
			}
		}
	}
}
