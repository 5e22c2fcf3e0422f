package vault_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// epoch is where every test clock starts.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is an injectable clock (vault.Options.Now) that moves only when
// a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testVault is an opened vault in t.TempDir(), in the manner of bbolt's
// btesting.DB: on cleanup it checks the file's bbolt consistency and the
// audit chain, unless the test damaged the file on purpose (Tampered).
type testVault struct {
	*vault.Vault
	Path     string
	Identity *age.X25519Identity
	Clock    *fakeClock
	// Tampered turns off the cleanup check for a test that damages the file.
	Tampered bool
}

// newTestVault creates a vault to a fresh X25519 identity and opens it with
// a fake clock. Options may adjust the CreateOptions before Create.
func newTestVault(t testing.TB, adjust ...func(*vault.CreateOptions)) *testVault {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	path := filepath.Join(t.TempDir(), "vault.db")
	co := vault.CreateOptions{
		Recipients:     []age.Recipient{id.Recipient()},
		RecipientNames: []string{id.Recipient().String()},
		Settings:       vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:        vault.Options{Now: clock.Now, Actor: "tester@host"},
	}
	for _, f := range adjust {
		f(&co)
	}
	if err := vault.Create(path, co); err != nil {
		t.Fatalf("Create: %v", err)
	}
	v, err := vault.Open(path, vault.Options{
		Identities:  []age.Identity{id},
		Now:         co.Now,
		Actor:       co.Actor,
		LockTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tv := &testVault{Vault: v, Path: path, Identity: id, Clock: clock}
	t.Cleanup(func() {
		if tv.Tampered || t.Failed() {
			return
		}
		tv.check(t)
	})
	return tv
}

// check is the cleanup check: the file is 0600, bbolt finds its pages
// consistent, and the whole authenticated state verifies (every sharded
// bucket against the hash tree and the head, every seal, and the audit
// chain to the end the head records).
func (tv *testVault) check(t testing.TB) {
	t.Helper()
	st, err := os.Stat(tv.Path)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("cleanup: vault mode %04o, want 0600", perm)
	}
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Errorf("cleanup: bbolt open: %v", err)
		return
	}
	defer db.Close()
	if err := db.View(func(btx *bolt.Tx) error {
		var errs []error
		for err := range btx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Errorf("cleanup: bbolt consistency check: %v", err)
	}
	db.Close()
	if _, err := tv.Verify(); err != nil {
		t.Errorf("cleanup: verify: %v", err)
	}
}

// update runs fn in an Update and fails the test on error.
func (tv *testVault) update(t testing.TB, fn func(*vault.Tx) error) {
	t.Helper()
	if err := tv.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View and fails the test on error.
func (tv *testVault) view(t testing.TB, fn func(*vault.Tx) error) {
	t.Helper()
	if err := tv.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// generation reads the vault's change counter through a View.
func (tv *testVault) generation(t testing.TB) uint64 {
	t.Helper()
	var g uint64
	tv.view(t, func(tx *vault.Tx) error {
		g = tx.Generation()
		return nil
	})
	return g
}

// boltUpdate changes the file with bbolt directly, as an attacker or a
// damaged disk would, and marks the vault tampered.
func (tv *testVault) boltUpdate(t testing.TB, fn func(*bolt.Tx) error) {
	t.Helper()
	tv.Tampered = true
	boltUpdate(t, tv.Path, fn)
}

func boltUpdate(t testing.TB, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("bbolt open: %v", err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("bbolt update: %v", err)
	}
}

// rawGet returns a copy of the raw (sealed) value of the record at
// bucket/key, read from tv's file at the record's store key (after its shard
// in a sharded bucket: see vault.(*Vault).StoreKey).
func rawGet(t testing.TB, tv *testVault, bucket string, key []byte) []byte {
	t.Helper()
	out := rawLookup(t, tv, bucket, key)
	if out == nil {
		t.Fatalf("no value at %s/%q", bucket, key)
	}
	return out
}

// rawLookup is rawGet that returns nil when there is no value.
func rawLookup(t testing.TB, tv *testVault, bucket string, key []byte) []byte {
	t.Helper()
	db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("bbolt open: %v", err)
	}
	defer db.Close()
	var out []byte
	if err := db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(bucket))
		if b == nil {
			return errors.New("no bucket " + bucket)
		}
		if v := b.Get(tv.StoreKey(bucket, key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawPut writes val at the store key of the record at bucket/key in tv's
// file with bbolt directly, or deletes what is there if val is nil, and
// marks the vault tampered.
func (tv *testVault) rawPut(t testing.TB, bucket string, key, val []byte) {
	t.Helper()
	sk := tv.StoreKey(bucket, key)
	tv.boltUpdate(t, func(btx *bolt.Tx) error {
		b, err := btx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		if val == nil {
			return b.Delete(sk)
		}
		return b.Put(sk, val)
	})
}

// detected reports whether err is the vault refusing what was tampered with:
// the state failing the hash tree and the sealed head (ErrTampered), or a
// record failing its seal (ErrCorrupt). Which check catches it first is the
// vault's business; that one does, rather than a read going through, is
// what the tests require.
func detected(err error) bool {
	return errors.Is(err, vault.ErrCorrupt) || errors.Is(err, vault.ErrTampered)
}

// tamperedBucket returns the bucket a *vault.TamperError in err's chain
// names, or "" if there is none.
func tamperedBucket(err error) string {
	var te *vault.TamperError
	if errors.As(err, &te) {
		return te.Bucket
	}
	return ""
}

// newSecret returns a fresh well-formed secret with the given prefix.
func newSecret(t testing.TB, prefix string) string {
	t.Helper()
	s, err := apikey.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fileSum is the sha256 of a file's bytes, or of nothing if it is absent.
func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
