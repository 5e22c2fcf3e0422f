package vault

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzTamperedStore writes an arbitrary key and value straight into a
// sharded bucket of a real vault's store, as someone who can write the file
// would, and reads the bucket back through the vault: a point read of that
// key and a whole-bucket read. Neither may panic; unless the write changed
// nothing (the same value at an existing key), both must report tampering
// in that bucket, and must never return the injected value as a record.
func FuzzTamperedStore(f *testing.F) {
	_, _, sealed := fuzzVault(f)
	for bk, val := range sealed {
		bucket, key, _ := bytes.Cut([]byte(bk), []byte{0})
		f.Add(string(bucket), append([]byte{0, 0}, key...), val)
		f.Add(string(bucket), key, val)
	}
	f.Add(bucketKeys, []byte{}, []byte{})
	f.Add(bucketKeys, []byte{1}, []byte("x"))
	f.Add(bucketUsage, []byte{0xff, 0xff, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, bucket string, storeKey, value []byte) {
		sharded := false
		for _, b := range shardedBuckets {
			sharded = sharded || b == bucket
		}
		if !sharded {
			return
		}
		v, _, _ := fuzzVault(t)
		var before []byte
		if err := v.store.Update(func(w WriteTx) error {
			var err error
			if before, err = w.Get(bucket, storeKey); err != nil {
				return err
			}
			return w.Put(bucket, storeKey, value)
		}); err != nil {
			t.Fatal(err)
		}
		unchanged := before != nil && bytes.Equal(before, value)
		check := func(what string, err error) {
			t.Helper()
			if unchanged {
				if err != nil {
					t.Fatalf("%s after a write that changed nothing: %v", what, err)
				}
				return
			}
			var te *TamperError
			if !errors.As(err, &te) || te.Bucket != bucket {
				t.Fatalf("%s after writing %x=%x into %s: %v, want tampering in %s", what, storeKey, value, bucket, err, bucket)
			}
		}
		err := v.View(func(tx *Tx) error { return tx.auth.checkBucket(bucket) })
		check("bucket read", err)
		if len(storeKey) >= 2 {
			var got rawJSON
			err = v.View(func(tx *Tx) error {
				_, err := tx.getJSON(bucket, storeKey[2:], &got)
				return err
			})
			// The key may not land in the shard its prefix names; then the
			// point read of its own shard is untouched, which is right: the
			// injected record is in a shard no read of that key looks at,
			// and the bucket read above reported it.
			if tx := v.keys().shardOf(bucket, shardKey(bucket, storeKey[2:])); storeKey[0] == byte(tx>>8) && storeKey[1] == byte(tx) {
				check("point read", err)
			}
		}
	})
}
