package vault_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// vaultBytes returns the bytes of a new vault holding a few records, and an
// identity that opens it.
func vaultBytes(t *testing.T) ([]byte, age.Identity) {
	t.Helper()
	tv := newTestVault(t)
	tv.update(t, func(tx *vault.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: name}}, newSecret(t, "km")); err != nil {
				return err
			}
		}
		return tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: "c"}}, newSecret(t, "kmcs"))
	})
	b, err := os.ReadFile(tv.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b, tv.Identity
}

// TestOpenBadFiles hands Open files that are not a vault it can unlock. Each
// case asserts the sentinel and that the file is left byte for byte as it
// was (and that no file appears where there was none).
func TestOpenBadFiles(t *testing.T) {
	good, goodID := vaultBytes(t)
	otherID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}

	// A passphrase vault with a cheap scrypt work factor.
	passRecipient, err := age.NewScryptRecipient("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	passRecipient.SetWorkFactor(10)
	passPath := filepath.Join(t.TempDir(), "pass.db")
	if err := vault.Create(passPath, vault.CreateOptions{Recipients: []age.Recipient{passRecipient}}); err != nil {
		t.Fatal(err)
	}
	passVault, err := os.ReadFile(passPath)
	if err != nil {
		t.Fatal(err)
	}
	wrongPass, err := age.NewScryptIdentity("wrong horse")
	if err != nil {
		t.Fatal(err)
	}
	rightPass, err := age.NewScryptIdentity("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(passPath, vault.Options{Identities: []age.Identity{rightPass}}); err != nil {
		t.Fatalf("the right passphrase does not open the passphrase vault: %v", err)
	}

	random := make([]byte, 64<<10)
	rand.Read(random)

	// withMeta returns the good vault with one meta value replaced (nil deletes it).
	withMeta := func(key string, val []byte) []byte {
		return rewrite(t, good, func(btx *bolt.Tx) error {
			if val == nil {
				return btx.Bucket([]byte("meta")).Delete([]byte(key))
			}
			return btx.Bucket([]byte("meta")).Put([]byte(key), val)
		})
	}
	u64 := func(v uint64) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, byte(v)} }

	type tcase struct {
		name  string
		data  []byte // nil: no file at all
		dir   bool   // a directory at the path
		ids   []age.Identity
		want  []error // any of these
		valid bool    // the file itself is a good vault (sanity case)
	}
	tests := []tcase{
		{name: "good vault", data: good, ids: []age.Identity{goodID}, valid: true},
		{name: "no file", ids: []age.Identity{goodID}, want: []error{vault.ErrNoVault}},
		{name: "directory", dir: true, ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "empty file", data: []byte{}, ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "one byte", data: []byte{0}, ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "random bytes", data: random, ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "text file", data: []byte(strings.Repeat("AGE-SECRET-KEY-1 this is not a vault\n", 300)), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "age file", data: []byte("age-encryption.org/v1\n-> X25519 abc\nxyz\n--- abc\n"), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "bbolt file, no buckets", data: emptyBolt(t, nil), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "bbolt file, empty meta", data: emptyBolt(t, []string{"meta"}), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "format 3", data: withMeta("format", u64(vault.FormatVersion+1)), ids: []age.Identity{goodID}, want: []error{vault.ErrNewerFormat}},
		// A format-2 vault that claims format 1 would be migrated again: its
		// records, already in shards, fail the migration's checks.
		{name: "format 1 over format-2 records", data: withMeta("format", u64(1)), ids: []age.Identity{goodID}, want: []error{vault.ErrCorrupt, vault.ErrTampered, vault.ErrNotVault}},
		{name: "index key missing", data: withMeta("index_key", nil), ids: []age.Identity{goodID}, want: []error{vault.ErrTampered}},
		{name: "index key altered", data: withMeta("index_key", make([]byte, 73)), ids: []age.Identity{goodID}, want: []error{vault.ErrTampered}},
		{name: "head missing", data: withMeta("head", nil), ids: []age.Identity{goodID}, want: []error{vault.ErrTampered}},
		{name: "head altered", data: withMeta("head", make([]byte, 73)), ids: []age.Identity{goodID}, want: []error{vault.ErrTampered}},
		{name: "format 0", data: withMeta("format", u64(0)), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "format missing", data: withMeta("format", nil), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "vault id short", data: withMeta("vault_id", []byte("short")), ids: []age.Identity{goodID}, want: []error{vault.ErrNotVault}},
		{name: "key check altered", data: withMeta("key_check", make([]byte, 32)), ids: []age.Identity{goodID}, want: []error{vault.ErrCorrupt}},
		// A damaged age header is reported as a wrong identity: Open maps every
		// age.Decrypt failure to ErrWrongIdentity.
		{name: "data key garbled", data: withMeta("data_key", []byte("age-encryption.org/v1\ngarbage")), ids: []age.Identity{goodID}, want: []error{vault.ErrWrongIdentity}},
		{name: "wrong identity", data: good, ids: []age.Identity{otherID}, want: []error{vault.ErrWrongIdentity}},
		{name: "no identity", data: good, want: []error{vault.ErrNoIdentity}},
		{name: "wrong passphrase", data: passVault, ids: []age.Identity{wrongPass}, want: []error{vault.ErrWrongIdentity}},
		{name: "X25519 identity on passphrase vault", data: passVault, ids: []age.Identity{goodID}, want: []error{vault.ErrWrongIdentity}},
		{name: "passphrase on X25519 vault", data: good, ids: []age.Identity{rightPass}, want: []error{vault.ErrWrongIdentity}},
	}
	// Cut inside the pages in use; cutting free pages at the end of the
	// file loses nothing, and the vault still opens.
	used := usedSize(t, good)
	for _, n := range truncations(used) {
		tests = append(tests, tcase{
			name: "truncated to " + itoa(n),
			data: good[:n],
			ids:  []age.Identity{goodID},
			want: []error{vault.ErrNotVault, vault.ErrCorrupt},
		})
	}
	if used < len(good) {
		tests = append(tests, tcase{name: "free pages cut off", data: good[:used], ids: []age.Identity{goodID}, valid: true})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.db")
			switch {
			case tt.dir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case tt.data != nil:
				if err := os.WriteFile(path, tt.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var before [32]byte
			if !tt.dir {
				before = fileSum(t, path)
			}
			v, err := vault.Open(path, vault.Options{Identities: tt.ids, LockTimeout: time.Second})
			if tt.valid {
				if err != nil {
					t.Fatalf("Open(good vault) = %v", err)
				}
				if err := v.View(func(tx *vault.Tx) error { _, err := tx.Keys(); return err }); err != nil {
					t.Fatalf("View(good vault) = %v", err)
				}
			} else if !isAny(err, tt.want) {
				t.Errorf("Open = %v, want one of %v", err, tt.want)
			}
			if err != nil && v != nil {
				t.Error("Open returned a vault along with an error")
			}
			if tt.dir {
				return
			}
			if tt.data == nil {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Open created a file where there was none: %v", err)
				}
				ents, _ := os.ReadDir(filepath.Dir(path))
				if len(ents) != 0 {
					t.Errorf("Open left files behind: %v", ents)
				}
				return
			}
			if fileSum(t, path) != before {
				t.Error("Open changed the file")
			}
		})
	}
}

// TestTruncatedAfterOpen truncates an opened vault's file under it: View and
// Update report a damaged file, never panic, and leave the bytes alone.
func TestTruncatedAfterOpen(t *testing.T) {
	tv := newTestVault(t)
	tv.Tampered = true
	full, err := os.ReadFile(tv.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range truncations(usedSize(t, full)) {
		t.Run(itoa(n), func(t *testing.T) {
			if err := os.WriteFile(tv.Path, full[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			before := fileSum(t, tv.Path)
			for name, op := range map[string]func(func(*vault.Tx) error) error{"View": tv.View, "Update": tv.Update} {
				err := op(func(tx *vault.Tx) error {
					if _, err := tx.Keys(); err != nil {
						return err
					}
					_, err := tx.AuditLog()
					return err
				})
				if !isAny(err, []error{vault.ErrNotVault, vault.ErrCorrupt}) {
					t.Errorf("%s = %v, want ErrNotVault or ErrCorrupt", name, err)
				}
				if fileSum(t, tv.Path) != before {
					t.Errorf("%s changed the truncated file", name)
				}
			}
		})
	}
}

// usedSize is how much of a vault file's bytes hold pages in use: bbolt's
// high-water mark. The rest of the file is free space.
func usedSize(t *testing.T, data []byte) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "size.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(btx *bolt.Tx) error { n = btx.Size(); return nil })
	return int(n)
}

// truncations are the lengths a vault of size n is cut to: inside and at the
// edges of the two meta pages, at page boundaries, and just short of whole.
func truncations(n int) []int {
	out := []int{1, 16, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16384, n / 2, n - 4096, n - 1}
	out = slices.DeleteFunc(out, func(i int) bool { return i <= 0 || i >= n })
	slices.Sort(out)
	return slices.Compact(out)
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// rewrite returns a copy of a vault file's bytes changed by fn through bbolt.
func rewrite(t *testing.T, data []byte, fn func(*bolt.Tx) error) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rewrite.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	boltUpdate(t, path, fn)
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// emptyBolt returns the bytes of a bbolt file with these empty buckets.
func emptyBolt(t *testing.T, buckets []string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "empty.db")
	boltUpdate(t, path, func(btx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := btx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	co := vault.CreateOptions{Recipients: []age.Recipient{id.Recipient()}}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	existing := newTestVault(t)
	for _, path := range []string{file, empty, link, existing.Path} {
		before := fileSum(t, path)
		st, _ := os.Lstat(path)
		if err := vault.Create(path, co); !errors.Is(err, vault.ErrExists) {
			t.Errorf("Create(%s) = %v, want ErrExists", filepath.Base(path), err)
		}
		if fileSum(t, path) != before {
			t.Errorf("Create(%s) changed the existing file", filepath.Base(path))
		}
		if st2, _ := os.Lstat(path); st2.Mode() != st.Mode() {
			t.Errorf("Create(%s) changed the mode: %v -> %v", filepath.Base(path), st.Mode(), st2.Mode())
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Create followed a dangling symlink")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("Create left files behind: %v", ents)
	}
	// The existing vault still opens with its identity.
	if _, err := vault.Open(existing.Path, vault.Options{Identities: []age.Identity{existing.Identity}}); err != nil {
		t.Errorf("existing vault after refused Create: %v", err)
	}
}

// TestCreateFiles checks the new file's and directory's modes and that
// Create leaves no temporary file, whether it succeeds or fails.
func TestCreateFiles(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new", "keymint")
	path := filepath.Join(dir, "vault.db")
	co := vault.CreateOptions{Recipients: []age.Recipient{id.Recipient()}}
	if err := vault.Create(path, co); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "vault.db" {
		t.Errorf("directory after Create holds %v, want only vault.db", ents)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %04o", p, st.Mode().Perm(), err, want)
		}
	}

	// A Setup that fails leaves nothing behind.
	failed := filepath.Join(dir, "failed.db")
	co.Setup = func(tx *vault.Tx) error {
		if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km")); err != nil {
			return err
		}
		return errors.New("setup failed")
	}
	if err := vault.Create(failed, co); err == nil || !strings.Contains(err.Error(), "setup failed") {
		t.Errorf("Create with failing Setup = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("failed Create left files behind: %v", ents)
	}

	// No recipients: refused before any file is made.
	if err := vault.Create(filepath.Join(dir, "none.db"), vault.CreateOptions{}); err == nil {
		t.Error("Create with no recipients succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("Create without recipients left files behind: %v", ents)
	}

	// Setup's records are in the vault, sealed with the rest.
	co.Setup = func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km"))
	}
	withSetup := filepath.Join(dir, "setup.db")
	if err := vault.Create(withSetup, co); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(withSetup, vault.Options{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.View(func(tx *vault.Tx) error { _, err := tx.Key("k"); return err }); err != nil {
		t.Errorf("key made in Setup: %v", err)
	}
}

// TestPassphrase uses the real work factor of vault.Passphrase: Create and
// Open each cost about a second of scrypt (more under load). A wrong
// passphrase is tested at a low work factor in TestOpenBadFiles.
func TestPassphrase(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("scrypt at the real work factor is slow (skipped with -short and -race)")
	}
	t.Parallel()
	r, id, err := vault.Passphrase("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	// A passphrase may not share the vault with other recipients.
	x, _ := age.GenerateX25519Identity()
	if err := vault.Create(filepath.Join(t.TempDir(), "mixed.db"), vault.CreateOptions{Recipients: []age.Recipient{r, x.Recipient()}}); err == nil {
		t.Error("Create with a passphrase and another recipient succeeded")
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	if err := vault.Create(path, vault.CreateOptions{Recipients: []age.Recipient{r}}); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(path, vault.Options{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatalf("Open with the passphrase: %v", err)
	}
	if err := v.View(func(tx *vault.Tx) error { _, err := tx.Settings(); return err }); err != nil {
		t.Errorf("View: %v", err)
	}
}
