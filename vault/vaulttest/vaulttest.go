// Package vaulttest changes a vault file as keymint never would, for tests
// of the packages above vault: hold its lock as another process mid-
// transaction does, damage or remove a sealed record, poke the clear meta
// bucket as a newer keymint would, or make a bbolt file that is not a vault.
//
// It is the one place outside package vault that opens the file with bbolt,
// so that those packages, and their tests, import neither bbolt nor age. It
// is for tests only: nothing in a keymint binary imports it.
//
// Every function opens the file for its own work and closes it again, and
// none creates a file it was not asked to (bbolt would initialise an empty
// database at a mistyped path), except [MakeForeignDB].
package vaulttest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// lockTimeout bounds the wait for another holder of the file's lock.
const lockTimeout = 10 * time.Second

// open opens an existing bbolt file; it never creates one.
func open(path string, readOnly bool) (*bolt.DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, fmt.Errorf("%s is not a bbolt file", path)
	}
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  lockTimeout,
		ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			return os.OpenFile(name, flag&^os.O_CREATE, perm)
		},
	})
}

// update runs fn in one read-write bbolt transaction on the file at path.
func update(path string, fn func(*bolt.Tx) error) (err error) {
	db, err := open(path, false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return db.Update(fn)
}

// view runs fn in one read-only bbolt transaction on the file at path.
func view(path string, fn func(*bolt.Tx) error) (err error) {
	db, err := open(path, true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return db.View(fn)
}

// HoldLock opens the vault file read-write, so that it holds the file's
// exclusive lock as another keymint in the middle of a transaction would,
// until release is called. It waits up to 10 seconds for the lock.
func HoldLock(path string) (release func() error, err error) {
	db, err := open(path, false)
	if err != nil {
		return nil, fmt.Errorf("hold the lock of %s: %w", path, err)
	}
	return db.Close, nil
}

// MakeForeignDB makes a new bbolt database at path that is not a keymint
// vault: one bucket "widgets" with one value. It fails if path exists.
func MakeForeignDB(path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// bbolt initialises the empty file as a new database.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("name"), []byte("sprocket"))
	})
}

// SetMeta writes value under key in the vault's meta bucket, bypassing
// keymint: the clear fields there (format, vault_id, data_key, key_check)
// are what a newer or a foreign keymint would change.
func SetMeta(path, key string, value []byte) error {
	return update(path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		if b == nil {
			return fmt.Errorf("no meta bucket in %s", path)
		}
		return b.Put([]byte(key), value)
	})
}

// SetFormat writes format version n into the vault's meta bucket, as a
// keymint of format n would have written it.
func SetFormat(path string, n uint64) error {
	return SetMeta(path, "format", binary.BigEndian.AppendUint64(nil, n))
}

// record returns the first (or last) key and value of bucket, by the order
// of their keys in the file. For a sharded bucket, the key starts with the
// record's 2-byte shard.
func record(tx *bolt.Tx, path, bucket string, last bool) (k, v []byte, err error) {
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil, nil, fmt.Errorf("no bucket %s in %s", bucket, path)
	}
	c := b.Cursor()
	if last {
		k, v = c.Last()
	} else {
		k, v = c.First()
	}
	if k == nil {
		return nil, nil, fmt.Errorf("bucket %s of %s is empty", bucket, path)
	}
	if v == nil {
		return nil, nil, fmt.Errorf("the first record of bucket %s of %s is a bucket", bucket, path)
	}
	return bytes.Clone(k), bytes.Clone(v), nil
}

// FlipRecord flips one bit in the middle of the first (or, with last, the
// last) sealed value of bucket: a record damaged on disk without bbolt
// noticing. bbolt writes copy-on-write, so stale copies of the value may
// linger on free pages; the bit is flipped in every copy found in the file,
// the live one among them, and copies says how many there were.
func FlipRecord(path, bucket string, last bool) (copies int, err error) {
	var value []byte
	if err := view(path, func(tx *bolt.Tx) error {
		_, value, err = record(tx, path, bucket, last)
		return err
	}); err != nil {
		return 0, err
	}
	// Short values (a clear field, an empty one) may occur in the file by
	// chance; a sealed value has a nonce and a tag of 40 bytes.
	if len(value) < 40 {
		return 0, fmt.Errorf("the value in bucket %s of %s is not sealed (%d bytes)", bucket, path, len(value))
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for i := 0; ; {
		j := bytes.Index(data[i:], value)
		if j < 0 {
			break
		}
		data[i+j+len(value)/2] ^= 0x01
		i, copies = i+j+len(value), copies+1
	}
	if copies == 0 {
		return 0, fmt.Errorf("the value in bucket %s is not stored whole in %s (it spans pages?)", bucket, path)
	}
	return copies, os.WriteFile(path, data, st.Mode().Perm())
}

// DeleteRecord removes the first (or, with last, the last) record of bucket
// with bbolt, as someone who can write the file could: the sealed values
// left are all authentic, only the set of records is not the vault's. For
// the audit bucket, last cuts the log's newest entry.
func DeleteRecord(path, bucket string, last bool) error {
	return update(path, func(tx *bolt.Tx) error {
		k, _, err := record(tx, path, bucket, last)
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucket)).Delete(k)
	})
}

// UsedSize returns how much of the file bbolt uses, in bytes: the pages up
// to the highest one in use. The rest of the file is room to grow.
func UsedSize(path string) (n int64, err error) {
	err = view(path, func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}
