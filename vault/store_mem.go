package vault

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// MemStore is a [Store] in memory, for tests. Its write transactions are
// optimistic, as an etcd store's would be: each works on the state it began
// from plus its own writes, and commits only if no other transaction
// committed meanwhile; otherwise it returns [ErrConflict]. That is stricter
// than needed (a commit to an unrelated key also conflicts) but exactly as
// isolated, and it exercises the vault's retries.
type MemStore struct {
	mu    sync.Mutex
	state *memState
	// conflicts counts the commits refused, so that a test can tell that
	// it exercised them.
	conflicts atomic.Int64
}

// Conflicts returns how many commits were refused with ErrConflict.
func (s *MemStore) Conflicts() int64 { return s.conflicts.Load() }

// memState is one committed state. It is never modified once committed: a
// commit makes a new one, copying only the buckets it changed.
type memState struct {
	buckets map[string]*memBucket
}

type memBucket struct {
	keys []string          // sorted
	vals map[string][]byte // by key
	seq  uint64
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{state: &memState{buckets: map[string]*memBucket{}}}
}

func (s *MemStore) current() *memState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// View runs fn on the state committed when it begins.
func (s *MemStore) View(fn func(ReadTx) error) error {
	return fn(&memTx{base: s.current()})
}

// Update runs fn and commits its writes if no transaction committed since
// it began.
func (s *MemStore) Update(fn func(WriteTx) error) error {
	tx := &memTx{base: s.current(), writes: map[string]*memBucket{}}
	if err := fn(tx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != tx.base {
		s.conflicts.Add(1)
		return fmt.Errorf("memory store: %w", ErrConflict)
	}
	if len(tx.writes) == 0 {
		return nil
	}
	next := &memState{buckets: make(map[string]*memBucket, len(s.state.buckets)+len(tx.writes))}
	for name, b := range s.state.buckets {
		next.buckets[name] = b
	}
	for name, b := range tx.writes {
		next.buckets[name] = b
	}
	s.state = next
	return nil
}

// memTx reads base, or the bucket copies it has written to.
type memTx struct {
	base   *memState
	writes map[string]*memBucket // nil in a read-only transaction
}

func (t *memTx) bucket(name string) *memBucket {
	if b, ok := t.writes[name]; ok {
		return b
	}
	return t.base.buckets[name]
}

// writable returns this transaction's own copy of a bucket.
func (t *memTx) writable(name string) *memBucket {
	if b, ok := t.writes[name]; ok {
		return b
	}
	b := &memBucket{vals: map[string][]byte{}}
	if old := t.base.buckets[name]; old != nil {
		b.keys = slices.Clone(old.keys)
		for k, v := range old.vals {
			b.vals[k] = v
		}
		b.seq = old.seq
	}
	t.writes[name] = b
	return b
}

func (t *memTx) Get(bucket string, key []byte) ([]byte, error) {
	if b := t.bucket(bucket); b != nil {
		return bytes.Clone(b.vals[string(key)]), nil
	}
	return nil, nil
}

func (t *memTx) Range(bucket string, from, to []byte, fn func(k, v []byte) error) error {
	b := t.bucket(bucket)
	if b == nil {
		return nil
	}
	i, _ := slices.BinarySearch(b.keys, string(from))
	// A snapshot of the keys: fn may not write, but a caller's bug must not
	// make this loop run forever.
	keys := b.keys[i:]
	for _, k := range keys {
		if to != nil && k >= string(to) {
			return nil
		}
		if err := fn([]byte(k), bytes.Clone(b.vals[k])); err != nil {
			return err
		}
	}
	return nil
}

func (t *memTx) Sequence(bucket string) (uint64, error) {
	if b := t.bucket(bucket); b != nil {
		return b.seq, nil
	}
	return 0, nil
}

func (t *memTx) Put(bucket string, key, value []byte) error {
	if t.writes == nil {
		return fmt.Errorf("memory store: put in a read-only transaction")
	}
	b := t.writable(bucket)
	k := string(key)
	if _, ok := b.vals[k]; !ok {
		i, _ := slices.BinarySearch(b.keys, k)
		b.keys = slices.Insert(b.keys, i, k)
	}
	b.vals[k] = bytes.Clone(value)
	return nil
}

func (t *memTx) Delete(bucket string, key []byte) error {
	if t.writes == nil {
		return fmt.Errorf("memory store: delete in a read-only transaction")
	}
	if t.bucket(bucket) == nil {
		return nil
	}
	b := t.writable(bucket)
	k := string(key)
	if _, ok := b.vals[k]; ok {
		delete(b.vals, k)
		i, _ := slices.BinarySearch(b.keys, k)
		b.keys = slices.Delete(b.keys, i, i+1)
	}
	return nil
}

func (t *memTx) SetSequence(bucket string, seq uint64) error {
	if t.writes == nil {
		return fmt.Errorf("memory store: sequence in a read-only transaction")
	}
	t.writable(bucket).seq = seq
	return nil
}

func (t *memTx) NextSequence(bucket string) (uint64, error) {
	if t.writes == nil {
		return 0, fmt.Errorf("memory store: sequence in a read-only transaction")
	}
	b := t.writable(bucket)
	b.seq++
	return b.seq, nil
}
