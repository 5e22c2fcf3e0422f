package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storeMakers are the Store implementations the conformance suite runs on.
var storeMakers = map[string]func(t *testing.T) Store{
	"bbolt": func(t *testing.T) Store {
		path := filepath.Join(t.TempDir(), "store.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return openBoltStore(path, 5*time.Second)
	},
	"memory": func(*testing.T) Store { return NewMemStore() },
	"etcd":   func(t *testing.T) Store { return newTestEtcdStore(t) },
}

// TestStoreConformance checks what the Store interface promises (store.go)
// on every implementation.
func TestStoreConformance(t *testing.T) {
	for name, mk := range storeMakers {
		t.Run(name, func(t *testing.T) {
			t.Run("get put delete", func(t *testing.T) { testStoreBasics(t, mk(t)) })
			t.Run("range", func(t *testing.T) { testStoreRange(t, mk(t)) })
			t.Run("sequence", func(t *testing.T) { testStoreSequence(t, mk(t)) })
			t.Run("failed update writes nothing", func(t *testing.T) { testStoreRollback(t, mk(t)) })
			t.Run("values outlive the transaction", func(t *testing.T) { testStoreCopies(t, mk(t)) })
			t.Run("concurrent writers", func(t *testing.T) { testStoreConcurrent(t, mk(t)) })
		})
	}
}

func mustUpdate(t *testing.T, s Store, fn func(WriteTx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func storeGet(t *testing.T, s Store, bucket, key string) []byte {
	t.Helper()
	var v []byte
	if err := s.View(func(tx ReadTx) (err error) {
		v, err = tx.Get(bucket, []byte(key))
		return err
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

func testStoreBasics(t *testing.T, s Store) {
	if v := storeGet(t, s, "nothing", "k"); v != nil {
		t.Errorf("get from a missing bucket = %q, want nil", v)
	}
	mustUpdate(t, s, func(tx WriteTx) error {
		if err := tx.Put("b", []byte("k"), []byte("v1")); err != nil {
			return err
		}
		// A transaction reads its own writes.
		v, err := tx.Get("b", []byte("k"))
		if err != nil || string(v) != "v1" {
			return fmt.Errorf("read own write = %q, %v", v, err)
		}
		return tx.Put("b", []byte("k2"), []byte{})
	})
	if v := storeGet(t, s, "b", "k"); string(v) != "v1" {
		t.Errorf("get = %q, want v1", v)
	}
	mustUpdate(t, s, func(tx WriteTx) error { return tx.Put("b", []byte("k"), []byte("v2")) })
	if v := storeGet(t, s, "b", "k"); string(v) != "v2" {
		t.Errorf("overwritten get = %q, want v2", v)
	}
	mustUpdate(t, s, func(tx WriteTx) error {
		if err := tx.Delete("b", []byte("k")); err != nil {
			return err
		}
		// Deleting what is not there, even in a missing bucket, is no error.
		if err := tx.Delete("b", []byte("never")); err != nil {
			return err
		}
		return tx.Delete("nothing", []byte("k"))
	})
	if v := storeGet(t, s, "b", "k"); v != nil {
		t.Errorf("deleted get = %q, want nil", v)
	}
}

func testStoreRange(t *testing.T, s Store) {
	keys := []string{"a", "ab", "abc", "b", "b\x00", "b\xff", "c"}
	mustUpdate(t, s, func(tx WriteTx) error {
		for i := len(keys) - 1; i >= 0; i-- { // out of order on purpose
			if err := tx.Put("r", []byte(keys[i]), []byte("v"+keys[i])); err != nil {
				return err
			}
		}
		return tx.Put("other", []byte("a"), []byte("x"))
	})
	collect := func(from, to []byte) []string {
		var out []string
		if err := s.View(func(tx ReadTx) error {
			return tx.Range("r", from, to, func(k, v []byte) error {
				if string(v) != "v"+string(k) {
					return fmt.Errorf("value of %q is %q", k, v)
				}
				out = append(out, string(k))
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tt := range []struct {
		from, to []byte
		want     []string
	}{
		{nil, nil, keys},
		{[]byte("ab"), nil, keys[1:]},
		{nil, []byte("b"), keys[:3]},
		{[]byte("a"), prefixEnd([]byte("a")), keys[:3]},
		{[]byte("b"), prefixEnd([]byte("b")), keys[3:6]},
		{[]byte("aa"), []byte("ab"), nil},
		{[]byte("d"), nil, nil},
	} {
		if got := collect(tt.from, tt.to); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Range(%q, %q) = %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
	// An error from fn stops the range and comes back.
	stop := errors.New("stop")
	n := 0
	err := s.View(func(tx ReadTx) error {
		return tx.Range("r", nil, nil, func(k, v []byte) error { n++; return stop })
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Range with fn error = %v after %d calls, want stop after 1", err, n)
	}
	if err := s.View(func(tx ReadTx) error {
		return tx.Range("missing", nil, nil, func(k, v []byte) error { return errors.New("called") })
	}); err != nil {
		t.Errorf("Range over a missing bucket: %v", err)
	}
}

func testStoreSequence(t *testing.T, s Store) {
	var got []uint64
	for range 3 {
		mustUpdate(t, s, func(tx WriteTx) error {
			n, err := tx.NextSequence("q")
			got = append(got, n)
			return err
		})
	}
	var cur uint64
	if err := s.View(func(tx ReadTx) (err error) { cur, err = tx.Sequence("q"); return err }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2 3]" || cur != 3 {
		t.Errorf("sequences %v, current %d; want [1 2 3], 3", got, cur)
	}
	// A sequence taken in a failed transaction is not taken.
	_ = s.Update(func(tx WriteTx) error {
		if _, err := tx.NextSequence("q"); err != nil {
			return err
		}
		return errors.New("no")
	})
	if err := s.View(func(tx ReadTx) (err error) { cur, err = tx.Sequence("q"); return err }); err != nil || cur != 3 {
		t.Errorf("after a failed update the sequence is %d (%v), want 3", cur, err)
	}
	// SetSequence sets it, and the next one follows it.
	mustUpdate(t, s, func(tx WriteTx) error { return tx.SetSequence("q", 1000) })
	mustUpdate(t, s, func(tx WriteTx) error {
		n, err := tx.NextSequence("q")
		if err == nil && n != 1001 {
			err = fmt.Errorf("after SetSequence 1000, NextSequence = %d, want 1001", n)
		}
		return err
	})
}

func testStoreRollback(t *testing.T, s Store) {
	mustUpdate(t, s, func(tx WriteTx) error { return tx.Put("b", []byte("keep"), []byte("1")) })
	boom := errors.New("boom")
	err := s.Update(func(tx WriteTx) error {
		if err := tx.Put("b", []byte("new"), []byte("x")); err != nil {
			return err
		}
		if err := tx.Delete("b", []byte("keep")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if storeGet(t, s, "b", "new") != nil || string(storeGet(t, s, "b", "keep")) != "1" {
		t.Error("a failed update left writes behind")
	}
}

func testStoreCopies(t *testing.T, s Store) {
	mustUpdate(t, s, func(tx WriteTx) error { return tx.Put("b", []byte("k"), []byte("first")) })
	var kept, rangedK, rangedV []byte
	if err := s.View(func(tx ReadTx) (err error) {
		if kept, err = tx.Get("b", []byte("k")); err != nil {
			return err
		}
		return tx.Range("b", nil, nil, func(k, v []byte) error { rangedK, rangedV = k, v; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx WriteTx) error { return tx.Put("b", []byte("k"), []byte("other")) })
	// Use the file enough that bbolt would reuse freed pages.
	mustUpdate(t, s, func(tx WriteTx) error {
		for i := range 200 {
			if err := tx.Put("fill", binary.BigEndian.AppendUint32(nil, uint32(i)), bytes.Repeat([]byte{'z'}, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if string(kept) != "first" || string(rangedK) != "k" || string(rangedV) != "first" {
		t.Errorf("values read earlier changed to %q, %q/%q", kept, rangedK, rangedV)
	}
}

// testStoreConcurrent runs read-modify-write increments from many
// goroutines, retrying on conflict as the vault does: serializable
// transactions lose no increment.
func testStoreConcurrent(t *testing.T, s Store) {
	const workers, each = 8, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					err := s.Update(func(tx WriteTx) error {
						v, err := tx.Get("c", []byte("n"))
						if err != nil {
							return err
						}
						var n uint64
						if v != nil {
							n = binary.BigEndian.Uint64(v)
						}
						return tx.Put("c", []byte("n"), binary.BigEndian.AppendUint64(nil, n+1))
					})
					if errors.Is(err, ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Error(err)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if got := binary.BigEndian.Uint64(storeGet(t, s, "c", "n")); got != workers*each {
		t.Errorf("count = %d after %d increments (%d conflicts retried)", got, workers*each, conflicts)
	}
	t.Logf("%d conflicts retried", conflicts)
}

// TestMemStoreConflict: a write transaction that loses to one committed
// while it ran writes nothing and reports ErrConflict, and Vault.Update
// runs it again on the new state (as with etcd; bbolt lets one writer in
// at a time and never conflicts).
func TestMemStoreConflict(t *testing.T) {
	s := NewMemStore()
	err := s.Update(func(a WriteTx) error {
		if err := a.Put("b", []byte("k"), []byte("from a")); err != nil {
			return err
		}
		// b begins and commits while a is still running.
		return s.Update(func(b WriteTx) error { return b.Put("b", []byte("other"), []byte("from b")) })
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("the later commit = %v, want ErrConflict", err)
	}
	if storeGet(t, s, "b", "k") != nil || string(storeGet(t, s, "b", "other")) != "from b" {
		t.Error("the conflicting transaction left a write, or the winner's is missing")
	}
	if s.Conflicts() != 1 {
		t.Errorf("Conflicts() = %d, want 1", s.Conflicts())
	}
}

// TestBoltUpdateWithoutWritesLeavesFile: an Update that writes nothing (a
// rename to the same name, say) leaves the vault file byte for byte as it
// was: bbolt would otherwise commit a new meta page.
func TestBoltUpdateWithoutWritesLeavesFile(t *testing.T) {
	f := buildTamperFixture(t)
	path := copyFile(t, f.newer)
	v := f.open(t, path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Update(func(tx *Tx) error {
		_, err := tx.RenameClient("c2", "c2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("an Update that wrote nothing changed the file")
	}
}
