package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Tx is one transaction on an open vault. It is valid only inside the
// function given to [Vault.Update] or [Vault.View]; records it returns are
// copies and stay valid after it. Every read that returns a record has
// checked it against the head (tree.go), so a replayed, removed or added
// record is reported as [ErrTampered] rather than used.
type Tx struct {
	rd ReadTx
	w  WriteTx // nil in a read-only transaction
	v  *Vault
	// k are the keys of the data key the transaction began under: fixed
	// for its life, whatever a rekey followed meanwhile does (follow.go).
	k    *keys
	now  time.Time
	head *head
	// state is the state the transaction began from.
	state State
	auth  *auth
	// wrote is set by any write (it advances the revision), changed by a
	// write to a record (it also advances the generation).
	wrote, changed bool
	changes        []Change
	// kept is the error of a reuse of a code or refresh token, whose
	// revocations this transaction has written: it commits them whatever
	// the caller's function returns, and writes nothing more (see
	// [Vault.Update]).
	kept error
	// pruned are the expiry queues this transaction has pruned: once a
	// transaction, however many records it adds (expiry.go).
	pruned map[expiryQueue]bool
}

// Now is the transaction's clock reading, the same for every record it writes.
func (tx *Tx) Now() time.Time { return tx.now }

// Generation is the vault's change counter as this transaction began. Every
// committed change to a record increments it, so a reader holding records in
// memory can tell cheaply whether they are stale. Usage (counters and last
// use) is the exception: a server reserving quota would otherwise reload its
// records on every reservation, and it does not cache usage anyway.
func (tx *Tx) Generation() uint64 { return tx.head.Generation }

// Changed reports whether the transaction has written a change that
// advances the generation when it commits (usage does not).
func (tx *Tx) Changed() bool { return tx.changed }

// shardKey is the part of a record key that chooses its shard, so that
// records read together as a range share one: a usage counter's credential
// id (a credential's counters); in the families and grant index buckets,
// the id before the first 0 byte (a family's tokens, a grant's families, a
// user's or a client's grants); in the expiry bucket, the queue and the
// slot or day (expiry.go). The whole key elsewhere.
func shardKey(bucket string, key []byte) []byte {
	switch bucket {
	case bucketUsage, bucketFamilies, bucketGrantIndex:
		if i := bytes.IndexByte(key, 0); i >= 0 {
			return key[:i]
		}
	case bucketExpiry:
		return expiryShardKey(key)
	}
	return key
}

func (tx *Tx) shard(bucket string, key []byte) uint16 {
	return tx.k.shardOf(bucket, shardKey(bucket, key))
}

// getSealed returns the sealed value at bucket/key, or nil, after checking
// its shard.
func (tx *Tx) getSealed(bucket string, key []byte) ([]byte, error) {
	s := tx.shard(bucket, key)
	if err := tx.auth.checkShard(bucket, s); err != nil {
		return nil, err
	}
	return tx.rd.Get(bucket, storeKey(s, key))
}

// getJSON opens the sealed value at bucket/key into v. It reports false,
// without error, when there is no such key.
func (tx *Tx) getJSON(bucket string, key []byte, v any) (bool, error) {
	sealed, err := tx.getSealed(bucket, key)
	if err != nil || sealed == nil {
		return false, err
	}
	return true, tx.openJSON(bucket, key, sealed, v)
}

// openJSON unseals the value sealed, read at bucket/key, into v.
func (tx *Tx) openJSON(bucket string, key, sealed []byte, v any) error {
	plain, err := tx.k.open(tx.v.id, bucket, key, sealed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("decode %s record: %w", bucket, ErrCorrupt)
	}
	return nil
}

// markChanged notes a write for the generation and the change log, unless
// it is usage data (see usageBuckets and Generation).
func (tx *Tx) markChanged(bucket string, key []byte) {
	tx.wrote = true
	if usageBuckets[bucket] {
		return
	}
	tx.changed = true
	// The index changes only with the records it points at; a reader
	// acts on those.
	if kind, ok := changeKinds[bucket]; ok {
		tx.changes = append(tx.changes, Change{Kind: kind, Key: string(key)})
	}
}

func (tx *Tx) putJSON(bucket string, key []byte, v any) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bucket, err)
	}
	sealed, err := tx.k.seal(tx.v.id, bucket, key, plain)
	if err != nil {
		return err
	}
	return tx.putSealed(bucket, key, sealed)
}

func (tx *Tx) putSealed(bucket string, key, sealed []byte) error {
	if err := tx.writable(); err != nil {
		return err
	}
	s := tx.shard(bucket, key)
	if err := tx.auth.willWrite(bucket, s); err != nil {
		return err
	}
	tx.markChanged(bucket, key)
	if err := tx.w.Put(bucket, storeKey(s, key), sealed); err != nil {
		return fmt.Errorf("write %s record: %w", bucket, err)
	}
	return nil
}

func (tx *Tx) delete(bucket string, key []byte) error {
	if err := tx.writable(); err != nil {
		return err
	}
	s := tx.shard(bucket, key)
	if err := tx.auth.willWrite(bucket, s); err != nil {
		return err
	}
	tx.markChanged(bucket, key)
	if err := tx.w.Delete(bucket, storeKey(s, key)); err != nil {
		return fmt.Errorf("delete %s record: %w", bucket, err)
	}
	return nil
}

// errReadOnly is a write attempted in [Vault.View].
var errReadOnly = errors.New("vault: a write in a read-only transaction; use Update")

// writable refuses a write in a read-only transaction, and any write after
// a reuse was detected (see kept): what the transaction commits then is
// the revocation, and nothing a caller goes on to do.
func (tx *Tx) writable() error {
	if tx.w == nil {
		return errReadOnly
	}
	return tx.kept
}

// keep makes err, the report of a reused code or refresh token whose
// revocations tx has just written, the transaction's last word.
func (tx *Tx) keep(err error) error {
	tx.kept = err
	return err
}

// forEachJSON opens every record of a bucket in key order (by shard, then
// key), after checking the whole bucket. Records are opened and decoded in
// chunks on every core, since a server's start-up reads the whole vault;
// fn is called in order, on the caller's goroutine.
func forEachJSON[T any](tx *Tx, bucket string, fn func(key []byte, v *T) error) error {
	if err := tx.auth.checkBucket(bucket); err != nil {
		return err
	}
	var chunk []sealedRecord
	flush := func() error {
		decoded, err := openChunk[T](tx, bucket, chunk)
		if err != nil {
			return err
		}
		for i, r := range chunk {
			if err := fn(r.key, decoded[i]); err != nil {
				return err
			}
		}
		chunk = chunk[:0]
		return nil
	}
	err := tx.rd.Range(bucket, nil, nil, func(k, sealed []byte) error {
		chunk = append(chunk, sealedRecord{key: k[2:], sealed: sealed})
		if len(chunk) < decodeChunk {
			return nil
		}
		return flush()
	})
	if err != nil {
		return err
	}
	return flush()
}

// decodeChunk is how many records forEachJSON holds sealed at once.
const decodeChunk = 2048

type sealedRecord struct{ key, sealed []byte }

// openChunk opens and decodes records on GOMAXPROCS goroutines. Sealing is
// safe for concurrent use; the store is not touched.
func openChunk[T any](tx *Tx, bucket string, recs []sealedRecord) ([]*T, error) {
	out := make([]*T, len(recs))
	workers := min(runtime.GOMAXPROCS(0), max(len(recs)/64, 1))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				v := new(T)
				if err := tx.openJSON(bucket, recs[i].key, recs[i].sealed, v); err != nil {
					errs[w] = err
					return
				}
				out[i] = v
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rangeShard calls fn for the records of one shard whose keys lie in
// [from, to), after checking the shard. from and to must share the shard
// key.
func (tx *Tx) rangeShard(bucket string, from, to []byte, fn func(key, sealed []byte) error) error {
	s := tx.shard(bucket, from)
	if err := tx.auth.checkShard(bucket, s); err != nil {
		return err
	}
	return tx.rd.Range(bucket, storeKey(s, from), storeKey(s, to), func(k, sealed []byte) error {
		return fn(k[2:], sealed)
	})
}

// commit writes the change log, the tree and the head, and returns the new
// state. A transaction that wrote nothing commits nothing.
func (tx *Tx) commit() (State, error) {
	if !tx.wrote {
		return State{}, nil
	}
	tx.kept = nil // the commit's own writes (the change log) go through
	h := tx.head
	if tx.changed {
		h.Generation++
		if err := tx.logChanges(h.Generation); err != nil {
			return State{}, err
		}
	}
	if err := tx.auth.commit(tx.w); err != nil {
		return State{}, err
	}
	h.Roots = tx.auth.roots
	h.Revision++
	return tx.v.writeHead(tx.w, tx.k, h)
}

// indexEntry is what an HMAC index key points to.
type indexEntry struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

func (tx *Tx) indexGet(purpose, value string) (*indexEntry, error) {
	var e indexEntry
	ok, err := tx.getJSON(bucketIndex, tx.k.mac(purpose, value), &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (tx *Tx) indexPut(purpose, value string, e indexEntry) error {
	return tx.putJSON(bucketIndex, tx.k.mac(purpose, value), e)
}

func (tx *Tx) indexDelete(purpose, value string) error {
	return tx.delete(bucketIndex, tx.k.mac(purpose, value))
}

// exists reports whether bucket holds key.
func (tx *Tx) exists(bucket string, key []byte) (bool, error) {
	sealed, err := tx.getSealed(bucket, key)
	return sealed != nil, err
}
