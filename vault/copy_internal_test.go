package vault

import (
	"errors"
	"fmt"
	"testing"

	"filippo.io/age"
)

// failingStore fails its Update number failAt (counting from 1), after
// fn ran, as a store losing its cluster mid-copy would.
type failingStore struct {
	*MemStore
	updates, failAt int
}

var errStoreLost = errors.New("store lost")

func (s *failingStore) Update(fn func(WriteTx) error) error {
	s.updates++
	if s.updates == s.failAt {
		return errStoreLost
	}
	return s.MemStore.Update(fn)
}

func (s *failingStore) Limits() (ops, bytes int) { return 20, 1 << 20 }

// TestCopyFailureRemovesWhatItWrote: a copy that fails at any of its
// commits leaves the destination without a vault and without a value.
func TestCopyFailureRemovesWhatItWrote(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	v, err := CreateIn(NewMemStore(), "src", CreateOptions{Recipients: []age.Recipient{id.Recipient()}, Settings: Settings{KeyPrefix: "km"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Update(func(tx *Tx) error {
		for i := range 30 {
			if err := tx.CreateKey(&Key{Credential: Credential{Name: fmt.Sprintf("k%d", i)}}, etcdSecret(t, "km")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// How many commits a whole copy takes, into a store with the same
	// limits that does not fail.
	whole := &failingStore{MemStore: NewMemStore()}
	_, rep, err := v.CopyToStore(whole, "whole")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Commits < 3 {
		t.Fatalf("the copy took %d commits; the test needs several", rep.Commits)
	}
	for failAt := 1; failAt <= rep.Commits; failAt++ {
		dst := &failingStore{MemStore: NewMemStore(), failAt: failAt}
		if _, _, err := v.CopyToStore(dst, "dst"); !errors.Is(err, errStoreLost) {
			t.Fatalf("commit %d failing: %v", failAt, err)
		}
		left := 0
		if err := dst.View(func(st ReadTx) error {
			for _, b := range copyBuckets {
				if err := st.Range(b, nil, nil, func(_, _ []byte) error { left++; return nil }); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Errorf("commit %d of %d failing left %d values", failAt, rep.Commits, left)
		}
	}
}

func TestChunks(t *testing.T) {
	vals := make([]copyValue, 10)
	for i := range vals {
		vals[i] = copyValue{bucket: "b", key: []byte{byte(i)}, value: make([]byte, 4)}
	}
	each := 1 + 4 + copyOverhead
	for _, c := range []struct {
		ops, bytes int
		want       string
	}{
		{100, 1 << 20, "[10]"},
		{3, 1 << 20, "[3 3 3 1]"},
		{100, 2 * each, "[2 2 2 2 2]"},
		{1, 1, "[1 1 1 1 1 1 1 1 1 1]"}, // a value over the limit goes alone
	} {
		var got []int
		for ch := range chunks(vals, c.ops, c.bytes) {
			got = append(got, len(ch))
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("chunks(10 values, %d ops, %d bytes) = %v, want %s", c.ops, c.bytes, got, c.want)
		}
	}
}
