package vault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Copying a vault between stores (keymint vault copy: a file into etcd and
// back).
//
// A copy is byte for byte: every sealed value is bound to the vault's id,
// its bucket and its key, not to the store, so the copy opens with the same
// identities, verifies against the same head and counts on from the same
// revision, and every secret keeps working. What one read transaction of
// the source sees is written into a store that holds no vault, in as many
// commits as the destination needs (etcd bounds a transaction's size), the
// meta bucket last: until its last commit the destination holds no vault
// (its format is unset), so no reader ever sees half a copy. The copy is
// then opened under the same keys and verified as a whole before it is
// reported done. A failed copy removes what it wrote.

// txnLimiter is a store that bounds one commit: EtcdStore.
type txnLimiter interface {
	Limits() (ops, bytes int)
}

// CopyReport is what a copy wrote.
type CopyReport struct {
	// Verified is the copy's state, verified as a whole.
	Verified Report `json:"verified"`
	// Values is how many keys were written, Bytes their size, Commits in
	// how many transactions.
	Values  int `json:"values"`
	Bytes   int `json:"bytes"`
	Commits int `json:"commits"`
}

// copyBuckets are every bucket of a vault, meta last.
var copyBuckets = append(append([]string{bucketAudit, bucketTree}, shardedBuckets...), bucketMeta)

type copyValue struct {
	bucket     string
	key, value []byte
}

// CopyToStore copies the vault into dst, which must hold no vault
// ([ErrExists] if it does), and returns the copy opened under the same
// keys. name says where dst is, in messages.
func (v *Vault) CopyToStore(dst Store, name string) (*Vault, *CopyReport, error) {
	if has, err := storeHasVault(dst); err != nil || has {
		return nil, nil, cmpErr(err, fmt.Errorf("%s: %w", name, ErrExists))
	}
	var values []copyValue
	seqs := map[string]uint64{}
	if err := v.View(func(tx *Tx) error {
		for _, b := range copyBuckets {
			if err := tx.rd.Range(b, nil, nil, func(k, val []byte) error {
				values = append(values, copyValue{b, k, val})
				return nil
			}); err != nil {
				return err
			}
			seq, err := tx.rd.Sequence(b)
			if err != nil {
				return err
			}
			if seq != 0 {
				seqs[b] = seq
			}
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	rep := &CopyReport{Values: len(values)}
	if err := writeCopy(dst, values, seqs, rep); err != nil {
		return nil, nil, err
	}
	guard, _ := newRollbackGuard(name, "", v.id) // in memory: never fails
	cv := newVault(dst, name, v.id, v.keys(), v.opts, guard)
	cv.opts.Identities = nil
	report, err := cv.Verify()
	if err != nil {
		return nil, nil, fmt.Errorf("the copy at %s fails verification: %w", name, err)
	}
	rep.Verified = *report
	return cv, rep, nil
}

// cmpErr returns err if set, else otherwise.
func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// writeCopy writes values (meta last) and the sequences into dst in
// commits within its limits, and removes what it wrote if one fails.
func writeCopy(dst Store, values []copyValue, seqs map[string]uint64, rep *CopyReport) error {
	maxOps, maxBytes := len(values)+len(seqs)+1, 1<<62
	if l, ok := dst.(txnLimiter); ok {
		maxOps, maxBytes = l.Limits()
	}
	// The meta bucket goes in the last commit, alone: it is what makes
	// the copy a vault.
	i := slices.IndexFunc(values, func(c copyValue) bool { return c.bucket == bucketMeta })
	body, meta := values[:i], values[i:]
	var written []copyValue
	undo := func(cause error) error {
		for chunk := range chunks(written, maxOps, maxBytes) {
			_ = dst.Update(func(w WriteTx) error {
				for _, c := range chunk {
					if err := w.Delete(c.bucket, c.key); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return fmt.Errorf("copy: %w (what was copied was removed)", cause)
	}
	for chunk := range chunks(body, maxOps, maxBytes) {
		if err := dst.Update(func(w WriteTx) error { return putAll(w, chunk) }); err != nil {
			return undo(err)
		}
		written = append(written, chunk...)
		rep.Commits++
	}
	if len(seqs)+len(meta) > maxOps {
		return undo(errors.New("the meta bucket and the sequences do not fit in one commit"))
	}
	if err := dst.Update(func(w WriteTx) error {
		for _, b := range slices.Sorted(mapKeys(seqs)) {
			if err := w.SetSequence(b, seqs[b]); err != nil {
				return err
			}
		}
		return putAll(w, meta)
	}); err != nil {
		return undo(err)
	}
	rep.Commits++
	for _, c := range values {
		rep.Bytes += len(c.key) + len(c.value)
	}
	return nil
}

func putAll(w WriteTx, values []copyValue) error {
	for _, c := range values {
		if err := w.Put(c.bucket, c.key, c.value); err != nil {
			return err
		}
	}
	return nil
}

// copyOverhead is what a value costs a commit beyond its key and value
// (the store's own key prefix and framing), generously.
const copyOverhead = 96

// chunks splits values into runs of at most maxOps values and about
// maxBytes bytes.
func chunks(values []copyValue, maxOps, maxBytes int) func(func([]copyValue) bool) {
	return func(yield func([]copyValue) bool) {
		start, size := 0, 0
		for i, c := range values {
			n := len(c.key) + len(c.value) + copyOverhead
			if i > start && (i-start >= maxOps || size+n > maxBytes) {
				if !yield(values[start:i]) {
					return
				}
				start, size = i, 0
			}
			size += n
		}
		if start < len(values) {
			yield(values[start:])
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// CopyTo copies the vault to the location l, which must hold no vault: a
// new file (built beside its path and linked into place whole, as [Create]
// does), or an etcd prefix. The copy is verified before CopyTo returns.
func (v *Vault) CopyTo(l Location) (*CopyReport, error) {
	if l.Etcd != nil {
		var rep *CopyReport
		err := l.withEtcd(func(s *EtcdStore) (bool, error) {
			_, r, err := v.CopyToStore(s, l.String())
			rep = r
			return false, err
		})
		return rep, err
	}
	var rep *CopyReport
	err := buildFile(l.File, v.opts.lockTimeout(), func(store Store, tmp string) error {
		_, r, err := v.CopyToStore(store, tmp)
		rep = r
		return err
	})
	return rep, err
}

// buildFile makes a new vault file at path: fn fills an empty bbolt
// database in a temporary file beside it, which is then linked into place,
// so that a crash never leaves half a vault and nothing is replaced.
func buildFile(path string, lockTimeout time.Duration, fn func(store Store, tmpPath string) error) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create vault directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keymint-init-*")
	if err != nil {
		return fmt.Errorf("create temporary vault: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer func() {
		if err != nil {
			os.Remove(tmpPath)
		}
	}()
	// os.CreateTemp made it empty and 0600; bbolt initialises an empty file
	// as a new database.
	db, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("open temporary vault: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close temporary vault: %w", err)
	}
	if err := fn(openBoltStore(tmpPath, lockTimeout), tmpPath); err != nil {
		return err
	}
	// Link, unlike rename, fails if path appeared meanwhile: never clobber.
	if err := os.Link(tmpPath, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		return fmt.Errorf("move vault into place: %w", err)
	}
	os.Remove(tmpPath)
	return syncDir(dir)
}
