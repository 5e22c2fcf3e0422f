package vault_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// backupOf backs tv up to a file in a new directory and returns its path.
func backupOf(t *testing.T, tv *testVault, recipients ...vault.Recipient) (string, vault.BackupInfo) {
	t.Helper()
	if len(recipients) == 0 {
		recipients = []vault.Recipient{tv.Identity.Recipient()}
	}
	path := filepath.Join(t.TempDir(), "backup.age")
	info, err := tv.BackupFile(path, recipients)
	if err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	return path, info
}

// decryptTo decrypts the age file at from into a new 0600 file at to, with
// the age library alone: what `age -d` does.
func ageDecryptTo(t *testing.T, from, to string, ids ...age.Identity) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, ids...)
	if err != nil {
		t.Fatalf("age decrypt: %v", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatalf("age decrypt: %v", err)
	}
	if err := os.WriteFile(to, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func restoredKeyNames(t *testing.T, v *vault.Vault) []string {
	t.Helper()
	var names []string
	if err := v.View(func(tx *vault.Tx) error {
		keys, err := tx.Keys()
		for _, k := range keys {
			names = append(names, k.Name)
		}
		return err
	}); err != nil {
		t.Fatalf("list keys: %v", err)
	}
	return names
}

func addBackupKey(t *testing.T, tv *testVault, name string) {
	t.Helper()
	tv.update(t, func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: name}}, newSecret(t, "km"))
	})
}

// dirEntries lists dir's names: a failed restore leaves no temporary file.
func restoreDirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// The backup is the vault file itself, age-encrypted: decrypted with age
// alone it opens as the vault, with the same identity, and verifies.
func TestBackupIsTheVaultFile(t *testing.T) {
	tv := newTestVault(t)
	addBackupKey(t, tv, "billing")
	addBackupKey(t, tv, "search")
	path, info := backupOf(t, tv)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %04o, want 0600", st.Mode().Perm())
	}
	if info.State.Revision == 0 || info.Bytes == 0 {
		t.Errorf("backup info %+v", info)
	}
	if got := restoreDirEntries(t, filepath.Dir(path)); !slices.Equal(got, []string{"backup.age"}) {
		t.Errorf("backup directory holds %v", got)
	}
	plain := filepath.Join(t.TempDir(), "vault.db")
	ageDecryptTo(t, path, plain, tv.Identity)
	v, err := vault.Open(plain, vault.Options{Identities: []age.Identity{tv.Identity}})
	if err != nil {
		t.Fatalf("open the decrypted backup: %v", err)
	}
	if got := restoredKeyNames(t, v); !slices.Equal(got, []string{"billing", "search"}) {
		t.Errorf("keys in the backup: %v", got)
	}
	r, err := v.Verify()
	if err != nil {
		t.Fatalf("verify the decrypted backup: %v", err)
	}
	if r.Revision != info.State.Revision {
		t.Errorf("backup at revision %d, BackupInfo says %d", r.Revision, info.State.Revision)
	}
	if err := vault.CheckFile(plain, time.Second); err != nil {
		t.Errorf("bbolt check of the decrypted backup: %v", err)
	}
	// A second backup replaces the first whole.
	addBackupKey(t, tv, "third")
	if _, err := tv.BackupFile(path, []vault.Recipient{tv.Identity.Recipient()}); err != nil {
		t.Fatal(err)
	}
	ageDecryptTo(t, path, plain, tv.Identity)
	v, err = vault.Open(plain, vault.Options{Identities: []age.Identity{tv.Identity}, AcceptRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := restoredKeyNames(t, v); len(got) != 3 {
		t.Errorf("keys in the second backup: %v", got)
	}
	// Never over the vault itself.
	before := fileSum(t, tv.Path)
	if _, err := tv.BackupFile(tv.Path, []vault.Recipient{tv.Identity.Recipient()}); err == nil {
		t.Error("a backup over the vault itself was written")
	}
	if fileSum(t, tv.Path) != before {
		t.Error("the vault changed")
	}
}

// Every write acknowledged before the backup began is in it, with four
// writers running throughout; and the backup is one consistent state.
func TestBackupDuringConcurrentWriters(t *testing.T) {
	tv := newTestVault(t)
	const writers = 4
	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
		errs  = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				secret, err := apikey.Generate("km")
				if err != nil {
					errs <- err
					return
				}
				if err := tv.Update(func(tx *vault.Tx) error {
					return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: name}}, secret)
				}); err != nil {
					errs <- fmt.Errorf("write %s: %w", name, err)
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}()
	}
	waitAcked := func(n int) {
		for deadline := time.Now().Add(30 * time.Second); ; {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("writers acknowledged %d writes, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var backups []string
	var before [][]string
	for round := range 3 {
		waitAcked(20 * (round + 1))
		mu.Lock()
		ackedBefore := slices.Clone(acked)
		mu.Unlock()
		path, _ := backupOf(t, tv)
		backups = append(backups, path)
		before = append(before, ackedBefore)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, path := range backups {
		plain := filepath.Join(t.TempDir(), "vault.db")
		ageDecryptTo(t, path, plain, tv.Identity)
		v, err := vault.Open(plain, vault.Options{Identities: []age.Identity{tv.Identity}})
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		if _, err := v.Verify(); err != nil {
			t.Fatalf("backup %d does not verify: %v", i, err)
		}
		have := restoredKeyNames(t, v)
		for _, name := range before[i] {
			if _, found := slices.BinarySearch(have, name); !found {
				t.Errorf("backup %d lacks %s, acknowledged before it began", i, name)
			}
		}
		t.Logf("backup %d: %d keys, %d acknowledged before it began", i, len(have), len(before[i]))
	}
}

// A passphrase vault's backup is encrypted to the same passphrase: the
// passphrase that opens the vault decrypts the backup and opens the vault
// in it, and restores it.
func TestBackupPassphrase(t *testing.T) {
	const pass = "correct horse battery staple"
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10) // fast; the identity accepts any up to its maximum
	vpath := filepath.Join(t.TempDir(), "vault.db")
	if err := vault.Create(vpath, vault.CreateOptions{Recipients: []age.Recipient{r}, Settings: vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"}}); err != nil {
		t.Fatal(err)
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(vpath, vault.Options{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	tv := &testVault{Vault: v, Path: vpath}
	addBackupKey(t, tv, "billing")
	path, _ := backupOf(t, tv, r)
	plain := filepath.Join(t.TempDir(), "vault.db")
	ageDecryptTo(t, path, plain, id)
	if _, err := vault.Open(plain, vault.Options{Identities: []age.Identity{id}}); err != nil {
		t.Fatalf("open the decrypted backup with the passphrase: %v", err)
	}
	target := filepath.Join(t.TempDir(), "restored", "vault.db")
	if _, err := vault.Restore(openBackupFile(t, path), target, vault.RestoreOptions{Identities: []age.Identity{id}}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	rv, err := vault.Open(target, vault.Options{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := restoredKeyNames(t, rv); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("restored keys: %v", got)
	}
	// A wrong passphrase opens neither.
	wrong, _ := age.NewScryptIdentity("wrong")
	if _, err := vault.Restore(openBackupFile(t, path), filepath.Join(t.TempDir(), "x.db"), vault.RestoreOptions{Identities: []age.Identity{wrong}}); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("restore with a wrong passphrase: %v, want ErrWrongIdentity", err)
	}
}

func openBackupFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Restore into a new path, onto an existing vault (only with Force), and of
// an older state (only with Force, naming what comes back); afterwards the
// restored state opens on this machine without accept-rollback.
func TestRestore(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	tv := newTestVault(t)
	ids := []age.Identity{tv.Identity}
	v, err := vault.Open(tv.Path, vault.Options{Identities: ids, Now: tv.Clock.Now, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = v
	addBackupKey(t, tv, "billing")
	addBackupKey(t, tv, "spare")
	var meteredID string
	tv.update(t, func(tx *vault.Tx) error {
		k := &vault.Key{Credential: vault.Credential{Name: "metered"}}
		if err := tx.CreateKey(k, newSecret(t, "km")); err != nil {
			return err
		}
		meteredID = k.ID
		return tx.AddUsage(k.ID, []string{"2026-03"}, 1)
	})
	backup, _ := backupOf(t, tv)

	// Since the backup: a key removed, one added, a token revoked, a use
	// counted.
	tv.update(t, func(tx *vault.Tx) error {
		if _, err := tx.DeleteKeys("spare"); err != nil {
			return err
		}
		if err := tx.Revoke(vault.Revocation{JTI: "jti-1", ClientID: "cl_x", ExpiresAt: tx.Now().Add(time.Hour)}); err != nil {
			return err
		}
		return tx.AddUsage(meteredID, []string{"2026-03"}, 2)
	})
	addBackupKey(t, tv, "newer")

	ropts := vault.RestoreOptions{Identities: ids, StateDir: stateDir, Now: tv.Clock.Now}

	// Into a new path of the same vault: older than seen, so Force is
	// needed, and the plan says so.
	fresh := filepath.Join(t.TempDir(), "new", "vault.db")
	plan, err := vault.Restore(openBackupFile(t, backup), fresh, ropts)
	if !errors.Is(err, vault.ErrRestoreOlder) {
		t.Fatalf("restore of an older state to a new path: %v, want ErrRestoreOlder", err)
	}
	if plan == nil || !plan.Older || plan.Replaces || plan.Seen == nil {
		t.Fatalf("plan %+v", plan)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused restore wrote %s", fresh)
	}
	if _, err := os.Stat(filepath.Dir(fresh)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused restore left the directory it made: %v", err)
	}

	// Onto the vault itself, without Force: refused, naming what comes back.
	sum := fileSum(t, tv.Path)
	plan, err = vault.Restore(openBackupFile(t, backup), tv.Path, ropts)
	if !errors.Is(err, vault.ErrRestoreOlder) {
		t.Fatalf("restore onto a vault without Force: %v", err)
	}
	if fileSum(t, tv.Path) != sum {
		t.Fatal("a refused restore changed the vault")
	}
	if got := restoreDirEntries(t, filepath.Dir(tv.Path)); !slices.Equal(got, []string{"vault.db"}) {
		t.Errorf("refused restore left %v", got)
	}
	if !plan.Replaces || !plan.Older || plan.Current == nil || plan.OtherVault {
		t.Fatalf("plan %+v", plan)
	}
	if len(plan.Back) != 1 || plan.Back[0].Name != "spare" || plan.Back[0].Kind != "key" {
		t.Errorf("plan.Back = %+v, want the key spare", plan.Back)
	}
	if len(plan.Gone) != 1 || plan.Gone[0].Name != "newer" {
		t.Errorf("plan.Gone = %+v, want the key newer", plan.Gone)
	}
	if len(plan.RevocationsLost) != 1 || plan.RevocationsLost[0].JTI != "jti-1" {
		t.Errorf("plan.RevocationsLost = %+v", plan.RevocationsLost)
	}
	if len(plan.UsageLower) != 1 || plan.UsageLower[0] != (vault.UsageChange{ID: meteredID, Name: "metered", Period: "2026-03", Now: 3, Backup: 1}) {
		t.Errorf("plan.UsageLower = %+v", plan.UsageLower)
	}

	// Force, but the confirmation says no: nothing written.
	no := errors.New("not confirmed")
	fopts := ropts
	fopts.Force = true
	fopts.Confirm = func(*vault.RestorePlan) error { return no }
	if _, err := vault.Restore(openBackupFile(t, backup), tv.Path, fopts); !errors.Is(err, no) {
		t.Fatalf("unconfirmed restore: %v", err)
	}
	if fileSum(t, tv.Path) != sum {
		t.Fatal("an unconfirmed restore changed the vault")
	}

	// Force, confirmed: the old state is back, and opens with the state
	// directory without accept-rollback.
	confirmed := 0
	fopts.Confirm = func(p *vault.RestorePlan) error { confirmed++; return nil }
	if _, err := vault.Restore(openBackupFile(t, backup), tv.Path, fopts); err != nil {
		t.Fatalf("restore --force: %v", err)
	}
	if confirmed != 1 {
		t.Errorf("confirmed %d times", confirmed)
	}
	if got := restoreDirEntries(t, filepath.Dir(tv.Path)); !slices.Equal(got, []string{"vault.db"}) {
		t.Errorf("restore left %v", got)
	}
	rv, err := vault.Open(tv.Path, vault.Options{Identities: ids, Now: tv.Clock.Now, StateDir: stateDir})
	if err != nil {
		t.Fatalf("open the restored vault: %v", err)
	}
	if got := restoredKeyNames(t, rv); !slices.Equal(got, []string{"billing", "metered", "spare"}) {
		t.Errorf("restored keys: %v", got)
	}
	tv.Vault = rv

	// The same backup into a new path now needs no Force: it is the state
	// this machine accepted.
	plan, err = vault.Restore(openBackupFile(t, backup), fresh, ropts)
	if err != nil || plan.Older || plan.Replaces {
		t.Fatalf("restore to a new path: %+v, %v", plan, err)
	}
	if _, err := vault.Open(fresh, vault.Options{Identities: ids, StateDir: stateDir}); err != nil {
		t.Fatal(err)
	}
}

// A damaged, truncated or foreign backup, and a wrong identity, are
// refused before anything is written.
func TestRestoreRefusesBadBackups(t *testing.T) {
	tv := newTestVault(t)
	addBackupKey(t, tv, "billing")
	backup, _ := backupOf(t, tv)
	good, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "vault.db")
	if err := os.WriteFile(target, []byte("the vault that is there"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, target)
	ids := []age.Identity{tv.Identity}
	flipped := slices.Clone(good)
	flipped[len(flipped)-100] ^= 1
	// The vault file in the backup, altered and encrypted again: age
	// accepts it, the vault's checks do not.
	plain := filepath.Join(t.TempDir(), "plain.db")
	ageDecryptTo(t, backup, plain, tv.Identity)
	tv2 := &testVault{Vault: tv.Vault, Path: plain, Tampered: true}
	tv2.rawPut(t, "keys", []byte("km_forged"), []byte("not sealed"))
	reencrypted := ageEncryptFile(t, plain, tv.Identity.Recipient())
	for _, c := range []struct {
		name string
		data []byte
		ids  []age.Identity
		want func(error) bool
	}{
		{"truncated", good[:len(good)-200], ids, isErr(vault.ErrBadBackup)},
		{"cut to its header", good[:200], ids, isErr(vault.ErrBadBackup)},
		{"flipped bit", flipped, ids, isErr(vault.ErrBadBackup)},
		{"not age", []byte("hello\n"), ids, isErr(vault.ErrBadBackup)},
		{"wrong identity", good, []age.Identity{otherX25519(t)}, isErr(vault.ErrWrongIdentity)},
		{"altered vault", reencrypted, ids, detected},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := vault.Restore(bytes.NewReader(c.data), target, vault.RestoreOptions{Identities: c.ids, Force: true})
			if err == nil || !c.want(err) {
				t.Fatalf("Restore: %v", err)
			}
			if strings.Contains(err.Error(), "km_") {
				t.Errorf("error shows a secret's prefix: %v", err)
			}
			if fileSum(t, target) != sum {
				t.Fatal("the target changed")
			}
			if got := restoreDirEntries(t, dir); !slices.Equal(got, []string{"vault.db"}) {
				t.Errorf("left %v", got)
			}
		})
	}
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func otherX25519(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func ageEncryptFile(t *testing.T, path string, r age.Recipient) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
