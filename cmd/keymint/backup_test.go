//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// buildAgeCLI builds the stock age command, at the version of age keymint
// uses, into a temporary directory. It is built with age's own go.mod and
// go.sum (`go install ...@version`): keymint's go.sum does not list what
// only the command needs. A failed build fails the test: a test of
// backups that skipped for want of age would pass while testing nothing.
func buildAgeCLI(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "filippo.io/age").Output()
	if err != nil {
		t.Fatalf("go list -m filippo.io/age: %v", err)
	}
	version := strings.TrimSpace(string(out))
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "go", "install", "filippo.io/age/cmd/age@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the age command (filippo.io/age/cmd/age@%s): %v\n%s", version, err, out)
	}
	return filepath.Join(dir, "age")
}

// TestBackupWithAgeCLI takes backups while four keymint processes write,
// then decrypts them with the stock age command alone and opens the result
// as a vault: every key whose creation was acknowledged before a backup
// began is in it.
func TestBackupWithAgeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keymint and age and runs a hundred processes")
	}
	t.Parallel()
	bin := buildKeymint(t)
	ageBin := buildAgeCLI(t)
	e := newKeymintEnv(t, bin)
	e.ok(t, "", "init")
	home := filepath.Dir(filepath.Dir(filepath.Dir(e.vault)))
	identity := filepath.Join(home, "config", "keymint", "identity.txt")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers = 4
	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
		errs  = make([]error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%d-%03d", w, i)
				cmd := e.command(ctx, "key", "new", name)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					errs[w] = fmt.Errorf("key new %s: %v: %s", name, err, stderr.String())
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		})
	}
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acked)
	}
	dir := t.TempDir()
	type backup struct {
		path   string
		before []string
	}
	var backups []backup
	for round := range 3 {
		for deadline := time.Now().Add(time.Minute); len(ackedNow()) < 8*(round+1); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("the writers acknowledged %d writes in a minute: %v", len(ackedNow()), errs)
			}
		}
		b := backup{path: filepath.Join(dir, fmt.Sprintf("backup-%d.age", round)), before: ackedNow()}
		e.ok(t, "", "vault", "backup", b.path)
		backups = append(backups, b)
	}
	stop.Store(true)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	for i, b := range backups {
		st, err := os.Stat(b.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("backup %d has mode %04o, want 0600", i, st.Mode().Perm())
		}
		plain := filepath.Join(dir, fmt.Sprintf("vault-%d.db", i))
		ageDecrypt(t, ageBin, identity, b.path, plain)
		// Opened as on another machine, which has seen no newer state of
		// the vault (this one has: the writers went on).
		other := *e
		other.env = append(slices.Clone(e.env), "XDG_STATE_HOME="+t.TempDir())
		other.env = append(other.env, "KEYMINT_VAULT="+plain)
		checkBolt(t, plain)
		other.ok(t, "", "vault", "verify")
		have := other.keyNames(t)
		for _, name := range b.before {
			if !slices.Contains(have, name) {
				t.Errorf("backup %d lacks %s, acknowledged before the backup began", i, name)
			}
		}
		t.Logf("backup %d: %d keys, %d acknowledged before it began", i, len(have), len(b.before))
	}

	// On this machine: the newest backup, decrypted by age alone, opens
	// with `keymint --vault vault.db key ls`.
	last := filepath.Join(dir, "last.age")
	e.ok(t, "", "vault", "backup", last)
	plain := filepath.Join(dir, "vault.db")
	ageDecrypt(t, ageBin, identity, last, plain)
	out := e.ok(t, "", "--vault", plain, "key", "ls")
	for _, name := range ackedNow() {
		if !strings.Contains(out, name+" ") {
			t.Errorf("the decrypted backup lacks %s", name)
		}
	}
	// A wrong identity does not decrypt it.
	wrong := filepath.Join(dir, "wrong.txt")
	if err := os.WriteFile(wrong, []byte("AGE-SECRET-KEY-1UFRKJHX76KXMTGPDFEGXGX27NEA09SDH4K0RY0M96N9C37PQPT7S3SWLGH\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(ageBin, "-d", "-i", wrong, "-o", filepath.Join(dir, "wrong.db"), last).Run(); err == nil {
		t.Error("age decrypted the backup with another identity")
	}
}

// ageDecrypt runs `age -d -i identity -o out in`.
func ageDecrypt(t *testing.T, ageBin, identity, in, out string) {
	t.Helper()
	cmd := exec.Command(ageBin, "-d", "-i", identity, "-o", out, in)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("age -d %s: %v\n%s", in, err, msg)
	}
	if err := os.Chmod(out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedRecipientLosesLaterBackups: a member added as a recipient
// opens the vault and a backup taken then; once removed and the vault
// rekeyed, their identity opens neither the vault nor a backup taken
// afterwards, with the stock age CLI as with keymint, while the remaining
// identity opens both.
func TestRemovedRecipientLosesLaterBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keymint and age")
	}
	t.Parallel()
	e := newKeymintEnv(t, buildKeymint(t))
	ageBin := buildAgeCLI(t)
	e.ok(t, "", "init")
	home := filepath.Dir(filepath.Dir(filepath.Dir(e.vault)))
	mine := filepath.Join(home, "config", "keymint", "identity.txt")

	member, err := vault.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(t.TempDir(), "member.txt")
	if err := os.WriteFile(theirs, []byte(member.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok(t, "", "vault", "recipients", "add", member.Recipient().String())
	e.ok(t, "", "key", "new", "before")
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before.age"), filepath.Join(dir, "after.age")
	e.ok(t, "", "vault", "backup", before)

	opens := func(identity, backup string) bool {
		t.Helper()
		cmd := exec.Command(ageBin, "-d", "-i", identity, "-o", filepath.Join(t.TempDir(), "vault.db"), backup)
		return cmd.Run() == nil
	}
	if !opens(theirs, before) {
		t.Fatal("the member cannot open a backup taken while a recipient")
	}

	e.ok(t, "", "vault", "recipients", "rm", member.Recipient().String(), "--yes")
	e.ok(t, "", "vault", "rekey", "--yes")
	e.ok(t, "", "vault", "backup", after)
	if opens(theirs, after) {
		t.Error("a removed member opens a backup taken after rm and rekey")
	}
	if !opens(mine, after) {
		t.Error("the remaining identity cannot open the later backup")
	}
	asMember := *e
	asMember.env = append(slices.Clone(e.env), "KEYMINT_IDENTITY_FILE="+theirs)
	if _, stderr, code := asMember.run(t, "", "key", "ls"); code == 0 {
		t.Error("a removed member opens the vault after rekey")
	} else if !strings.Contains(stderr, "identity") {
		t.Errorf("refusal does not say why: %s", stderr)
	}
	if out := e.ok(t, "", "key", "ls"); !strings.Contains(out, "before") {
		t.Errorf("key ls after rekey: %s", out)
	}
}
