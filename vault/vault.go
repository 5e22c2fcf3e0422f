package vault

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure how a vault is opened.
type Options struct {
	// Identities unlock the data key: age identities, SSH keys, or a
	// passphrase's scrypt identity.
	Identities []age.Identity
	// LockTimeout bounds the wait for another process's lock. Zero waits 10s.
	LockTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Actor names who makes changes in the audit log, such as "alice@host".
	Actor string
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o *Options) lockTimeout() time.Duration {
	if o.LockTimeout > 0 {
		return o.LockTimeout
	}
	return 10 * time.Second
}

// Vault is an unlocked vault. It holds the derived keys in memory, not the
// file: every transaction opens and closes the file. A Vault is safe for
// concurrent use by goroutines of one process.
type Vault struct {
	// mu orders this process's own transactions. bbolt's file lock is per
	// open file, so two transactions of one process would otherwise contend
	// on it like two processes, and bbolt retries a taken lock only every
	// 50ms.
	mu   sync.RWMutex
	path string
	id   []byte
	keys *keys
	opts Options
}

// CreateOptions configure a new vault.
type CreateOptions struct {
	// Recipients the data key is encrypted to. A passphrase's scrypt
	// recipient must be the only one.
	Recipients []age.Recipient
	// RecipientNames are the recipients' public strings, kept sealed in the
	// settings for a later listing of recipients. A passphrase has none.
	RecipientNames []string
	// Settings are written sealed into the new vault.
	Settings Settings
	// Setup runs inside the creating transaction, before the file is
	// renamed into place, so a vault is never seen half set up.
	Setup func(*Tx) error
	Options
}

// Create makes a new vault at path. It builds the vault in a temporary file in
// the same directory and links it into place only when complete, so a crash
// never leaves half a vault, and it never replaces an existing file.
func Create(path string, co CreateOptions) (err error) {
	if len(co.Recipients) == 0 {
		return errors.New("no recipients to encrypt the vault to")
	}
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

	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return fmt.Errorf("generate data key: %w", err)
	}
	sealedKey, err := encryptDataKey(dataKey, co.Recipients)
	if err != nil {
		return err
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("generate vault id: %w", err)
	}
	v := &Vault{path: tmpPath, id: id, keys: k, opts: co.Options}

	db, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: v.opts.lockTimeout()})
	if err != nil {
		return fmt.Errorf("open temporary vault: %w", err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := btx.CreateBucket([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := btx.Bucket([]byte(bucketMeta))
		for key, val := range map[string][]byte{
			string(metaFormat):     u64bytes(FormatVersion),
			string(metaID):         id,
			string(metaDataKey):    sealedKey,
			string(metaKeyCheck):   k.check,
			string(metaGeneration): u64bytes(1),
		} {
			if err := meta.Put([]byte(key), val); err != nil {
				return err
			}
		}
		tx := &Tx{btx: btx, v: v, now: v.opts.now()}
		settings := co.Settings
		settings.Recipients = co.RecipientNames
		if err := tx.putJSON(bucketSettings, []byte(settingsKey), settings); err != nil {
			return err
		}
		if err := tx.Audit("vault.init", "", ""); err != nil {
			return err
		}
		if co.Setup != nil {
			return co.Setup(tx)
		}
		return nil
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close temporary vault: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("build vault: %w", err)
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

func encryptDataKey(dataKey []byte, recipients []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		// age has no sentinel for this; its message names the clash but
		// not the way out.
		if strings.Contains(err.Error(), "incompatible recipients") {
			return nil, fmt.Errorf("encrypt data key: %w; give only post-quantum recipients (age1pq1...) or only classic ones (age1..., ssh-...)", err)
		}
		return nil, fmt.Errorf("encrypt data key: %w", err)
	}
	if _, err := w.Write(dataKey); err != nil {
		return nil, fmt.Errorf("encrypt data key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt data key: %w", err)
	}
	return buf.Bytes(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync vault directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync vault directory: %w", err)
	}
	return nil
}

// header is the clear part of the meta bucket.
type header struct {
	format     uint64
	id         []byte
	dataKey    []byte
	keyCheck   []byte
	generation uint64
}

func readHeader(btx *bolt.Tx) (*header, error) {
	meta := btx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return nil, ErrNotVault
	}
	h := &header{
		format:     u64(meta.Get(metaFormat)),
		id:         bytes.Clone(meta.Get(metaID)),
		dataKey:    bytes.Clone(meta.Get(metaDataKey)),
		keyCheck:   bytes.Clone(meta.Get(metaKeyCheck)),
		generation: u64(meta.Get(metaGeneration)),
	}
	if h.format == 0 || len(h.id) != 16 || len(h.dataKey) == 0 || len(h.keyCheck) != 32 {
		return nil, ErrNotVault
	}
	if h.format > FormatVersion {
		return nil, fmt.Errorf("%w (format %d, this keymint reads up to %d)", ErrNewerFormat, h.format, FormatVersion)
	}
	return h, nil
}

// Open unlocks the vault at path. It reads the header under a shared lock,
// then decrypts the data key with no lock held, since a passphrase costs
// about a second.
func Open(path string, opts Options) (*Vault, error) {
	if len(opts.Identities) == 0 {
		return nil, ErrNoIdentity
	}
	var h *header
	err := withDB(path, true, opts.lockTimeout(), func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error {
			var err error
			h, err = readHeader(btx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(h.dataKey), opts.Identities...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrWrongIdentity
		}
		return nil, fmt.Errorf("%w: %v", ErrWrongIdentity, err)
	}
	dataKey, err := io.ReadAll(io.LimitReader(r, 64))
	if err != nil || len(dataKey) != 32 {
		return nil, fmt.Errorf("decrypt data key: %w", ErrCorrupt)
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.check, h.keyCheck) != 1 {
		return nil, fmt.Errorf("data key does not match: %w", ErrCorrupt)
	}
	// The identities (for a passphrase, the passphrase itself) are needed
	// no more: the Vault keeps only the keys derived from the data key.
	opts.Identities = nil
	return &Vault{path: path, id: h.id, keys: k, opts: opts}, nil
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
	// become panics. Report either as a damaged file rather than crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			// The panic value (a fault address, a bbolt page assertion, or a
			// bug of ours) goes into the message so a bug is not mistaken
			// for damage; none of these carry record contents.
			err = fmt.Errorf("%s: %w (%v)", path, ErrNotVault, p)
		}
	}()
	if !readOnly {
		// A read-write open reads the freelist page before any check could
		// run: check that the file holds its pages under a read-only open.
		if err := withDB(path, true, timeout, func(*bolt.DB) error { return nil }); err != nil {
			return err
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly, OpenFile: openExisting})
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

// Path returns the vault file's path.
func (v *Vault) Path() string { return v.path }

// Update runs fn in one read-write transaction: the file is opened, locked,
// changed and closed. If fn returns an error nothing is changed.
func (v *Vault) Update(fn func(*Tx) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return withDB(v.path, false, v.opts.lockTimeout(), func(db *bolt.DB) error {
		return db.Update(func(btx *bolt.Tx) error {
			tx, err := v.begin(btx)
			if err != nil {
				return err
			}
			if err := fn(tx); err != nil {
				return err
			}
			return tx.commit()
		})
	})
}

// View runs fn in one read-only transaction under a shared lock.
func (v *Vault) View(fn func(*Tx) error) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return withDB(v.path, true, v.opts.lockTimeout(), func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error {
			tx, err := v.begin(btx)
			if err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

func (v *Vault) begin(btx *bolt.Tx) (*Tx, error) {
	h, err := readHeader(btx)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(h.id, v.id) {
		return nil, fmt.Errorf("a different vault is now at %s: %w", v.path, ErrRekeyed)
	}
	if subtle.ConstantTimeCompare(h.keyCheck, v.keys.check) != 1 {
		return nil, ErrRekeyed
	}
	return &Tx{btx: btx, v: v, now: v.opts.now(), generation: h.generation}, nil
}

// Generation reads the vault's change counter without unlocking records: a
// server polls it to learn, cheaply, that another process changed the vault.
func (v *Vault) Generation() (uint64, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var gen uint64
	err := withDB(v.path, true, v.opts.lockTimeout(), func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error {
			tx, err := v.begin(btx)
			if err != nil {
				return err
			}
			gen = tx.generation
			return nil
		})
	})
	return gen, err
}

// openExisting opens a file for bbolt as os.OpenFile does, but never creates
// it (see withDB).
func openExisting(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag&^os.O_CREATE, perm)
}
