package vault

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tx is one transaction on an open vault. It is valid only inside the
// function given to [Vault.Update] or [Vault.View]; records it returns are
// copies and stay valid after it.
type Tx struct {
	btx        *bolt.Tx
	v          *Vault
	now        time.Time
	generation uint64
	changed    bool
}

// Now is the transaction's clock reading, the same for every record it writes.
func (tx *Tx) Now() time.Time { return tx.now }

// Generation is the vault's change counter as this transaction began. Every
// committed change to a record increments it, so a reader holding records in
// memory can tell cheaply whether they are stale. Usage counters are the
// exception: a server reserving quota would otherwise reload its records on
// every reservation, and it does not cache counters anyway.
func (tx *Tx) Generation() uint64 { return tx.generation }

// Changed reports whether the transaction has written a change that
// advances the generation when it commits (a usage count does not).
func (tx *Tx) Changed() bool { return tx.changed }

// commit bumps the generation when anything changed.
func (tx *Tx) commit() error {
	if !tx.changed {
		return nil
	}
	return tx.btx.Bucket([]byte(bucketMeta)).Put(metaGeneration, u64bytes(tx.generation+1))
}

func (tx *Tx) bucket(name string) *bolt.Bucket {
	return tx.btx.Bucket([]byte(name))
}

// getJSON opens the sealed value at bucket/key into v. It reports false,
// without error, when there is no such key.
func (tx *Tx) getJSON(bucket string, key []byte, v any) (bool, error) {
	b := tx.bucket(bucket)
	if b == nil {
		return false, ErrNotVault
	}
	sealed := b.Get(key)
	if sealed == nil {
		return false, nil
	}
	return true, tx.openJSON(bucket, key, sealed, v)
}

// openJSON unseals the value sealed, read at bucket/key, into v.
func (tx *Tx) openJSON(bucket string, key, sealed []byte, v any) error {
	plain, err := tx.v.keys.open(tx.v.id, bucket, key, sealed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("decode %s record: %w", bucket, ErrCorrupt)
	}
	return nil
}

// markChanged notes a write for the generation, unless it is to a usage
// counter (see Generation).
func (tx *Tx) markChanged(bucket string) {
	if bucket != bucketUsage {
		tx.changed = true
	}
}

func (tx *Tx) putJSON(bucket string, key []byte, v any) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bucket, err)
	}
	sealed, err := tx.v.keys.seal(tx.v.id, bucket, key, plain)
	if err != nil {
		return err
	}
	tx.markChanged(bucket)
	if err := tx.bucket(bucket).Put(key, sealed); err != nil {
		return fmt.Errorf("write %s record: %w", bucket, err)
	}
	return nil
}

func (tx *Tx) delete(bucket string, key []byte) error {
	tx.markChanged(bucket)
	if err := tx.bucket(bucket).Delete(key); err != nil {
		return fmt.Errorf("delete %s record: %w", bucket, err)
	}
	return nil
}

// forEachJSON opens every record of a bucket in key order.
func forEachJSON[T any](tx *Tx, bucket string, fn func(key []byte, v *T) error) error {
	return tx.bucket(bucket).ForEach(func(k, sealed []byte) error {
		var v T
		if err := tx.openJSON(bucket, k, sealed, &v); err != nil {
			return err
		}
		return fn(k, &v)
	})
}

// indexEntry is what an HMAC index key points to.
type indexEntry struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

func (tx *Tx) indexGet(purpose, value string) (*indexEntry, error) {
	var e indexEntry
	ok, err := tx.getJSON(bucketIndex, tx.v.keys.mac(purpose, value), &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (tx *Tx) indexPut(purpose, value string, e indexEntry) error {
	return tx.putJSON(bucketIndex, tx.v.keys.mac(purpose, value), e)
}

func (tx *Tx) indexDelete(purpose, value string) error {
	return tx.delete(bucketIndex, tx.v.keys.mac(purpose, value))
}
