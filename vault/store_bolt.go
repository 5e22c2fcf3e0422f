package vault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// boltStore is a [Store] on one bbolt file. It does not keep the file open:
// every transaction opens the file, takes bbolt's file lock (shared to
// read, exclusive to write), runs and closes it, so many processes share
// the vault and none holds it for longer than one transaction. bbolt lets
// one writer in at a time across processes, so Update never conflicts.
type boltStore struct {
	// mu orders this process's own transactions. bbolt's file lock is per
	// open file, so two transactions of one process would otherwise contend
	// on it like two processes, and bbolt retries a taken lock only every
	// 50ms.
	mu      sync.RWMutex
	path    string
	timeout time.Duration
}

func openBoltStore(path string, lockTimeout time.Duration) *boltStore {
	return &boltStore{path: path, timeout: lockTimeout}
}

func (s *boltStore) View(fn func(ReadTx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return withDB(s.path, true, s.timeout, func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error { return fn(&boltTx{btx: btx}) })
	})
}

func (s *boltStore) Update(fn func(WriteTx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return withDB(s.path, false, s.timeout, func(db *bolt.DB) (err error) {
		// As db.Update, but with the commit, which reads and writes pages
		// (a damaged one included), under readingFile; fn is not, so that
		// a panic of the caller's keeps its stack.
		var btx *bolt.Tx
		if ferr := readingFile(func() { btx, err = db.Begin(true) }); ferr != nil {
			return ferr
		}
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer func() {
			if btx.DB() != nil { // not committed
				_ = readingFile(func() { _ = btx.Rollback() })
			}
		}()
		tx := &boltTx{btx: btx}
		if err := fn(tx); err != nil {
			return err
		}
		if !tx.wrote {
			// Nothing to commit: bbolt would still write a new meta page,
			// and a command that changed nothing must leave the file as
			// it was.
			return nil
		}
		if ferr := readingFile(func() { err = btx.Commit() }); ferr != nil {
			return ferr
		}
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// boltTx adapts a bbolt transaction. Every call into bbolt runs under
// [readingFile], so that a damaged page (a fault or one of bbolt's page
// assertions) becomes an error, while a panic in the caller's own code stays
// a panic. Keys and values are copied out of the mapped file.
type boltTx struct {
	btx *bolt.Tx
	// wrote is set by the first write, so that a transaction that wrote
	// nothing is rolled back rather than committed.
	wrote bool
}

func (t *boltTx) Get(bucket string, key []byte) (v []byte, err error) {
	err = readingFile(func() {
		if b := t.btx.Bucket([]byte(bucket)); b != nil {
			v = bytes.Clone(b.Get(key))
		}
	})
	return v, err
}

func (t *boltTx) Range(bucket string, from, to []byte, fn func(k, v []byte) error) error {
	var c *bolt.Cursor
	if err := readingFile(func() {
		if b := t.btx.Bucket([]byte(bucket)); b != nil {
			c = b.Cursor()
		}
	}); err != nil || c == nil {
		return err
	}
	// Pages are read in batches under one readingFile, and fn is called
	// outside it on the copies.
	type kv struct{ k, v []byte }
	batch := make([]kv, 0, rangeBatch)
	first, done := true, false
	for !done {
		batch = batch[:0]
		if err := readingFile(func() {
			for len(batch) < rangeBatch {
				var k, v []byte
				switch {
				case !first:
					k, v = c.Next()
				case from == nil:
					k, v = c.First()
				default:
					k, v = c.Seek(from)
				}
				first = false
				if k == nil || (to != nil && bytes.Compare(k, to) >= 0) {
					done = true
					return
				}
				batch = append(batch, kv{bytes.Clone(k), bytes.Clone(v)})
			}
		}); err != nil {
			return err
		}
		for _, e := range batch {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// rangeBatch is how many entries Range copies out of the file at a time.
const rangeBatch = 128

func (t *boltTx) Sequence(bucket string) (seq uint64, err error) {
	err = readingFile(func() {
		if b := t.btx.Bucket([]byte(bucket)); b != nil {
			seq = b.Sequence()
		}
	})
	return seq, err
}

func (t *boltTx) Put(bucket string, key, value []byte) error {
	t.wrote = true
	var err error
	if ferr := readingFile(func() {
		var b *bolt.Bucket
		if b, err = t.btx.CreateBucketIfNotExists([]byte(bucket)); err == nil {
			err = b.Put(key, value)
		}
	}); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", bucket, err)
	}
	return nil
}

func (t *boltTx) Delete(bucket string, key []byte) error {
	t.wrote = true
	var err error
	if ferr := readingFile(func() {
		if b := t.btx.Bucket([]byte(bucket)); b != nil {
			err = b.Delete(key)
		}
	}); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("delete from %s: %w", bucket, err)
	}
	return nil
}

func (t *boltTx) NextSequence(bucket string) (seq uint64, err error) {
	t.wrote = true
	if ferr := readingFile(func() {
		var b *bolt.Bucket
		if b, err = t.btx.CreateBucketIfNotExists([]byte(bucket)); err == nil {
			seq, err = b.NextSequence()
		}
	}); ferr != nil {
		return 0, ferr
	}
	return seq, err
}

func (t *boltTx) SetSequence(bucket string, seq uint64) (err error) {
	t.wrote = true
	if ferr := readingFile(func() {
		var b *bolt.Bucket
		if b, err = t.btx.CreateBucketIfNotExists([]byte(bucket)); err == nil {
			err = b.SetSequence(seq)
		}
	}); ferr != nil {
		return ferr
	}
	return err
}

// DamagedError reports a vault file that bbolt cannot read: truncated, or a
// page that is not what bbolt wrote. It wraps [ErrNotVault].
type DamagedError struct {
	Path string
	// Cause is the fault or bbolt's assertion. It never holds record
	// contents.
	Cause any
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: %v (%v)", e.Path, ErrNotVault, e.Cause)
}

func (e *DamagedError) Unwrap() error { return ErrNotVault }

// fileDamage carries a fault from [readingFile] up to withDB, which knows
// the path.
type fileDamage struct{ cause any }

func (d fileDamage) Error() string { return fmt.Sprintf("damaged page: %v", d.cause) }

// readingFile runs fn, which reads the mapped file through bbolt, and turns
// any panic it raises into an error: bbolt reads pages in place, so a
// damaged or short file shows up as a memory fault (made a panic by
// [debug.SetPanicOnFault] in withDB) or as one of bbolt's page assertions.
// Code outside fn is not covered: a bug of ours panics with its stack.
func readingFile(fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fileDamage{p}
		}
	}()
	fn()
	return nil
}

// withDB opens the bbolt file for one operation and closes it. It never
// creates a file: bbolt would initialise an empty database at a wrong path,
// or bring back a vault removed meanwhile as an empty one.
func withDB(path string, readOnly bool, timeout time.Duration, fn func(*bolt.DB) error) (err error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", path, ErrNoVault)
		}
		return fmt.Errorf("stat vault: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return fmt.Errorf("%s: %w", path, ErrNotVault)
	}
	// bbolt reads pages in place through mmap, so a truncated or damaged
	// file faults (SIGBUS, SIGSEGV), which kills the process unless faults
	// become panics. readingFile and the open below turn those into a
	// damaged-file error; any other panic goes on up with its stack.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		var d fileDamage
		if errors.As(err, &d) {
			err = &DamagedError{Path: path, Cause: d.cause}
		}
	}()
	if !readOnly {
		// A read-write open reads the freelist page before any check could
		// run: check that the file holds its pages under a read-only open.
		if err := withDB(path, true, timeout, func(*bolt.DB) error { return nil }); err != nil {
			return err
		}
	}
	var db *bolt.DB
	if ferr := readingFile(func() {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly, OpenFile: openExisting})
	}); ferr != nil {
		return ferr
	}
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s: %w", path, ErrNoVault)
		case errors.Is(err, berrors.ErrTimeout):
			return ErrBusy
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
			errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
			return fmt.Errorf("%s: %w", path, ErrNotVault)
		}
		return fmt.Errorf("open vault %s: %w (%w)", path, ErrNotVault, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close vault: %w", cerr)
		}
	}()
	// A truncated file would fault on the first page past its end.
	if err := db.View(func(btx *bolt.Tx) error {
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat vault: %w", err)
		}
		if btx.Size() > st.Size() {
			return fmt.Errorf("%s: %w", path, ErrNotVault)
		}
		return nil
	}); err != nil {
		return err
	}
	return fn(db)
}

// openExisting opens a file for bbolt as os.OpenFile does, but never creates
// it (see withDB).
func openExisting(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag&^os.O_CREATE, perm)
}

// CheckFile runs bbolt's own consistency check on the vault file: every
// page reachable once, none both used and free. [Vault.Verify] checks what
// the pages hold.
func CheckFile(path string, lockTimeout time.Duration) error {
	return withDB(path, true, lockTimeout, func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error {
			var errs []error
			if ferr := readingFile(func() {
				for e := range btx.Check() {
					errs = append(errs, e)
				}
			}); ferr != nil {
				return ferr
			}
			if len(errs) > 0 {
				return fmt.Errorf("%s: %w: %w", path, ErrNotVault, errors.Join(errs...))
			}
			return nil
		})
	})
}
