package vault

import "errors"

// Store is where a vault's bytes live: ordered buckets of byte keys and
// values. Everything in this package above the store (sealing, the index,
// records, the audit log, usage counters and the authentication of the
// whole state) goes through this interface alone, and so does every package
// above vault. Three stores are built: the bbolt file ([openBoltStore], the
// embedded default), etcd ([OpenEtcdStore], shared by replicas on several
// machines) and an in-memory one ([NewMemStore], for tests); nothing above
// this interface knows which it runs on.
//
// What a store must guarantee:
//
//   - Buckets are named by a string and hold keys in byte order. A bucket
//     exists once something is put in it; reading a bucket that does not
//     exist reads nothing.
//   - View runs a read-only transaction that sees one committed state, the
//     same for all of its reads.
//   - Update runs a read-write transaction that is serializable: it commits
//     only if no other transaction committed in between anything it read or
//     wrote, and then all of its writes become visible at once; otherwise it
//     writes nothing and returns an error wrapping [ErrConflict]. A store
//     with one writer at a time (bbolt's file lock) never conflicts; an
//     optimistic one (compare revisions, as etcd's transactions do) may, and
//     the vault then runs the whole transaction again. If fn returns an
//     error, nothing is written.
//   - A committed Update is durable when Update returns.
//   - Values and keys handed to fn stay valid after the call that returned
//     them (a store copies them out of its pages if it must) and are not
//     modified by the store.
//   - A sequence per bucket starts at 0 and NextSequence adds one; it is
//     part of the transaction like any write.
//
// Quota exactness rests on this isolation alone: a credential's counter is
// read and written in one Update, so two processes or replicas can never
// both spend the same remaining use.
type Store interface {
	View(fn func(ReadTx) error) error
	Update(fn func(WriteTx) error) error
}

// ReadTx reads one consistent state of a [Store].
type ReadTx interface {
	// Get returns the value at key, or nil if there is none.
	Get(bucket string, key []byte) ([]byte, error)
	// Range calls fn for every key of bucket in [from, to), in byte order.
	// A nil from starts at the first key, a nil to runs to the last. fn
	// must not write to the transaction.
	Range(bucket string, from, to []byte, fn func(key, value []byte) error) error
	// Sequence returns bucket's sequence.
	Sequence(bucket string) (uint64, error)
}

// WriteTx is a read-write transaction of a [Store]. It reads its own writes.
type WriteTx interface {
	ReadTx
	Put(bucket string, key, value []byte) error
	Delete(bucket string, key []byte) error
	// NextSequence increments bucket's sequence and returns the new value.
	NextSequence(bucket string) (uint64, error)
	// SetSequence sets bucket's sequence: for a copy of a whole store
	// (copy.go), which must carry the audit log's sequence over.
	SetSequence(bucket string, seq uint64) error
}

// ErrConflict reports that a write transaction lost to a concurrent one and
// wrote nothing. [Vault.Update] retries it.
var ErrConflict = errors.New("transaction conflict")

// prefixEnd returns the first key after every key that starts with prefix,
// or nil if there is none (a prefix of 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
