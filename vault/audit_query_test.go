package vault

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestVerifyAuditLog: every way of damaging the log that `keymint audit
// verify` promises to detect is an ErrAuditChain that names the entry.
func TestVerifyAuditLog(t *testing.T) {
	f := buildTamperFixture(t)
	n := uint64(len(rawBucket(t, copyFile(t, f.newer), bucketAudit)))
	if n < 4 {
		t.Fatalf("the fixture's log has %d entries; the cases need 4", n)
	}
	mid := n / 2
	for _, c := range []struct {
		name, want string
		change     func(b *bolt.Bucket) error
	}{
		{"removed", "entry 2 missing", func(b *bolt.Bucket) error { return b.Delete(seqKey(2)) }},
		{"reordered", "entry " + itoa(mid) + " fails authentication", func(b *bolt.Bucket) error {
			x, y := clone(b.Get(seqKey(mid))), clone(b.Get(seqKey(mid+1)))
			if err := b.Put(seqKey(mid), y); err != nil {
				return err
			}
			return b.Put(seqKey(mid+1), x)
		}},
		{"altered", "entry " + itoa(mid) + " fails authentication", func(b *bolt.Bucket) error {
			v := clone(b.Get(seqKey(mid)))
			v[len(v)/2] ^= 1
			return b.Put(seqKey(mid), v)
		}},
		{"copied over the next", "entry " + itoa(mid+1) + " fails authentication", func(b *bolt.Bucket) error {
			return b.Put(seqKey(mid+1), clone(b.Get(seqKey(mid))))
		}},
		{"tail cut", "the log ends at entry " + itoa(n-1) + " but the head ends it at " + itoa(n), func(b *bolt.Bucket) error { return b.Delete(seqKey(n)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, f.newer)
			boltChange(t, path, func(btx *bolt.Tx) error { return c.change(btx.Bucket([]byte(bucketAudit))) })
			v := f.open(t, path)
			err := v.View(func(tx *Tx) error {
				_, err := tx.VerifyAuditLog()
				return err
			})
			if !errors.Is(err, ErrAuditChain) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("VerifyAuditLog = %v, want ErrAuditChain naming %q", err, c.want)
			}
		})
	}
	t.Run("whole", func(t *testing.T) {
		v := f.open(t, copyFile(t, f.newer))
		err := v.View(func(tx *Tx) error {
			log, err := tx.VerifyAuditLog()
			if err == nil && uint64(len(log)) != n {
				t.Errorf("%d entries, want %d", len(log), n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
