package vault

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
)

// fuzzVault builds a vault file with real records (settings, a key, a
// client, their index entries and audit entries), sealed by the real code
// under a fixed data key and vault id, with fixed names, secrets and clock.
// Only the nonces vary between runs, so a failing input the fuzzer saves
// still means the same thing when it is replayed. It returns the vault and
// the plaintext and sealed value of every record, by bucket and key.
func fuzzVault(t testing.TB) (v *Vault, plain, sealed map[string][]byte) {
	t.Helper()
	k, err := deriveKeys(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	k.indexKey = bytes.Repeat([]byte{0x3c}, 32)
	store := NewMemStore()
	id := bytes.Repeat([]byte{0xa5}, 16)
	guard, _ := newRollbackGuard("fuzz", "", id)
	v = newVault(store, "fuzz", id, k, Options{}, guard)
	plain, sealed = map[string][]byte{}, map[string][]byte{}
	err = store.Update(func(w WriteTx) error {
		tx := v.newTx(w, w, &head{Format: FormatVersion, Roots: map[string][]byte{}})
		tx.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := tx.putJSON(bucketSettings, []byte(settingsKey), Settings{KeyPrefix: "km"}); err != nil {
			return err
		}
		key := &Key{Credential: Credential{ID: "key_AAAAAAAAAAAAAAAA", Name: "fuzz"}}
		if err := tx.CreateKey(key, fixedSecret(t, "km", '7')); err != nil {
			return err
		}
		client := &Client{Credential: Credential{ID: "cl_BBBBBBBBBBBBBBBBBBBBBB", Name: "fuzz"}, Description: "d"}
		if err := tx.CreateClient(client, fixedSecret(t, "kmcs", '8')); err != nil {
			return err
		}
		for _, name := range shardedBuckets {
			if err := w.Range(name, nil, nil, func(sk, val []byte) error {
				key := sk[2:] // after the shard
				p, err := v.keys().open(v.id, name, key, val)
				if err != nil {
					return err
				}
				plain[name+"\x00"+string(key)] = p
				sealed[name+"\x00"+string(key)] = bytes.Clone(val)
				return nil
			}); err != nil {
				return err
			}
		}
		if err := w.Range(bucketAudit, nil, nil, func(key, val []byte) error {
			p, err := v.keys().open(v.id, bucketAudit, key, val)
			plain[bucketAudit+"\x00"+string(key)] = p
			sealed[bucketAudit+"\x00"+string(key)] = bytes.Clone(val)
			return err
		}); err != nil {
			return err
		}
		// The clear header and the head, so that the vault also reads.
		for _, kv := range [][2][]byte{{metaFormat, u64bytes(FormatVersion)}, {metaID, v.id}, {metaDataKey, []byte("not used")}, {metaKeyCheck, k.check}} {
			if err := w.Put(bucketMeta, kv[0], kv[1]); err != nil {
				return err
			}
		}
		_, err := tx.commit()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) < 8 {
		t.Fatalf("only %d sealed records", len(sealed))
	}
	return v, plain, sealed
}

// fixedSecret returns a well-formed secret whose random part is one
// character repeated, with its CRC32 checksum in base62.
func fixedSecret(t testing.TB, prefix string, c byte) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	body := prefix + "_" + string(bytes.Repeat([]byte{c}, apikey.RandomLen))
	sum := crc32.ChecksumIEEE([]byte(body))
	var out [apikey.ChecksumLen]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = alphabet[sum%62]
		sum /= 62
	}
	s := body + string(out[:])
	if _, err := apikey.Parse(s); err != nil {
		t.Fatalf("fixedSecret: %v", err)
	}
	return s
}

// FuzzOpenRecord hands arbitrary bytes, buckets and keys to the record
// opener. It must never panic, must fail with ErrCorrupt, and may succeed
// only for a value this vault sealed at exactly that bucket and key: the
// plaintext must then be that record's.
func FuzzOpenRecord(f *testing.F) {
	v, plain, sealed := fuzzVault(f)
	for bk, val := range sealed {
		bucket, key, _ := bytes.Cut([]byte(bk), []byte{0})
		b := string(bucket)
		f.Add(val, b, key)
		// Elsewhere: another key, another bucket.
		f.Add(val, b, append(bytes.Clone(key), 'x'))
		f.Add(val, b, key[:len(key)-1])
		f.Add(val, bucketUsage, key)
		f.Add(val, b+"\x00", key)
		// Damaged: flipped, cut short, extended, another version byte.
		for _, i := range []int{0, 1, 24, 25, len(val) / 2, len(val) - 1} {
			flipped := bytes.Clone(val)
			flipped[i] ^= 0x80
			f.Add(flipped, b, key)
		}
		f.Add(val[:len(val)-1], b, key)
		f.Add(val[:41], b, key)
		f.Add(val[:40], b, key)
		f.Add(append(bytes.Clone(val), 0), b, key)
		f.Add(append([]byte{2}, val[1:]...), b, key)
	}
	f.Add([]byte{}, bucketKeys, []byte{})
	f.Add([]byte{1}, bucketKeys, []byte("k"))
	f.Add(make([]byte, 41), bucketKeys, []byte("k"))
	f.Fuzz(func(t *testing.T, data []byte, bucket string, key []byte) {
		got, err := v.keys().open(v.id, bucket, key, data)
		id := bucket + "\x00" + string(key)
		if err == nil {
			want, known := plain[id]
			if !known || !bytes.Equal(got, want) {
				t.Fatalf("opened %x at %q/%x to %q: not the record sealed there", data, bucket, key, got)
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open = %v, want ErrCorrupt", err)
		}
		if want, ok := sealed[id]; ok && bytes.Equal(data, want) {
			t.Fatalf("the value sealed at %q/%x does not open: %v", bucket, key, err)
		}
	})
}
