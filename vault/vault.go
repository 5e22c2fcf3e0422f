package vault

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
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
	// Command names what makes them, such as "keymint key rm" or "keymint
	// serve"; the audit log records it beside the actor.
	Command string
	// StateDir is where this machine remembers the newest state seen of
	// each vault, to refuse a rolled-back file (rollback.go). Empty
	// remembers in memory only, for this Vault's life.
	StateDir string
	// AcceptRollback trusts the vault's state as it is now, even if older
	// than one seen before: the explicit step after a deliberate restore.
	AcceptRollback bool
	// DataKey opens the vault with its data key itself rather than with
	// Identities: what keymint's agent holds ([Unlock] returns it). It is
	// checked against the vault's key check as a decrypted one is.
	DataKey []byte
	// FollowRekey keeps Identities after opening, so that when another
	// process rekeys the vault this Vault decrypts the new data key and
	// goes on instead of failing with [ErrRekeyed] (follow.go): for a
	// server, which should outlive a rekey. For a passphrase that keeps
	// its scrypt identity, the passphrase, in memory.
	FollowRekey bool
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

// Vault is an unlocked vault. It holds the keys derived from the data key in
// memory, not the store's resources: with the bbolt file, every transaction
// opens and closes the file. A Vault is safe for concurrent use by
// goroutines of one process.
type Vault struct {
	store Store
	path  string
	id    []byte
	// current are the keys of the data key: replaced only when the vault
	// follows a rekey made elsewhere (follow.go). A transaction loads them
	// once, at its begin.
	current atomic.Pointer[keys]
	opts    Options
	guard   *rollbackGuard
	batch   batcher // see Batch
	// following serializes following a rekey: one decryption, not one
	// per goroutine that saw it.
	following sync.Mutex
	// closer is what Close releases: the connection of a store opened for
	// this Vault (OpenAt), or nil.
	closer io.Closer
}

func newVault(store Store, path string, id []byte, k *keys, opts Options, guard *rollbackGuard) *Vault {
	v := &Vault{store: store, path: path, id: id, opts: opts, guard: guard}
	v.current.Store(k)
	return v
}

// keys returns the keys transactions begin under now.
func (v *Vault) keys() *keys { return v.current.Load() }

// maxConflictRetries bounds how often Update runs a transaction again after
// losing to a concurrent one.
const maxConflictRetries = 64

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
func Create(path string, co CreateOptions) error {
	if len(co.Recipients) == 0 {
		return errors.New("no recipients to encrypt the vault to")
	}
	var v *Vault
	if err := buildFile(path, co.lockTimeout(), func(store Store, tmpPath string) error {
		var err error
		if v, err = CreateIn(store, tmpPath, co); err != nil {
			return fmt.Errorf("build vault: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	// Remember the new vault's first state, so that a copy of an older
	// vault with the same id can never pass for it.
	g, err := newRollbackGuard(path, co.StateDir, v.id)
	if err != nil {
		return err
	}
	return g.saw(v.guard.newest(), true)
}

// CreateIn makes a new vault in an empty store, in one transaction, and
// returns it unlocked. name says where the store is, in messages.
func CreateIn(store Store, name string, co CreateOptions) (*Vault, error) {
	if len(co.Recipients) == 0 {
		return nil, errors.New("no recipients to encrypt the vault to")
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("generate data key: %w", err)
	}
	sealedKey, err := encryptDataKey(dataKey, co.Recipients)
	if err != nil {
		return nil, err
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, err
	}
	k.indexKey = make([]byte, 32)
	id := make([]byte, 16)
	for _, b := range [][]byte{k.indexKey, id} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate vault keys: %w", err)
		}
	}
	guard, _ := newRollbackGuard(name, "", id) // in memory: never fails
	v := newVault(store, name, id, k, co.Options, guard)
	v.opts.Identities = nil
	var st State
	err = store.Update(func(w WriteTx) error {
		if existing, err := w.Get(bucketMeta, metaFormat); err != nil || existing != nil {
			return cmp.Or(err, fmt.Errorf("%s: %w", name, ErrExists))
		}
		sealedIndex, err := k.seal(id, bucketMeta, metaIndexKey, k.indexKey)
		if err != nil {
			return err
		}
		for _, kv := range []struct{ key, val []byte }{
			{metaFormat, u64bytes(FormatVersion)},
			{metaID, id},
			{metaDataKey, sealedKey},
			{metaKeyCheck, k.check},
			{metaIndexKey, sealedIndex},
		} {
			if err := w.Put(bucketMeta, kv.key, kv.val); err != nil {
				return err
			}
		}
		tx := v.newTx(w, w, &head{Format: FormatVersion, Roots: map[string][]byte{}})
		settings := co.Settings
		settings.Recipients = co.RecipientNames
		if err := tx.putJSON(bucketSettings, []byte(settingsKey), settings); err != nil {
			return err
		}
		if err := tx.Audit("vault.init", "", ""); err != nil {
			return err
		}
		if co.Setup != nil {
			if err := co.Setup(tx); err != nil {
				return err
			}
		}
		st, err = tx.commit()
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := v.guard.saw(st, true); err != nil {
		return nil, err
	}
	return v, nil
}

// ErrMixedRecipients reports post-quantum and classic recipients given
// together, which age refuses: the data key would be only as safe as the
// classic ones against a quantum computer.
var ErrMixedRecipients = errors.New("post-quantum and classic recipients cannot be mixed; give only post-quantum recipients (age1pq1...) or only classic ones (age1..., ssh-...)")

// checkRecipientMix refuses the mix age would refuse, before age does:
// age's own error is untyped, and keymint decides nothing by an error's
// text.
func checkRecipientMix(recipients []age.Recipient) error {
	var pq, classic bool
	for _, r := range recipients {
		switch r.(type) {
		case *age.HybridRecipient:
			pq = true
		case *age.X25519Recipient, *agessh.Ed25519Recipient, *agessh.RSARecipient:
			classic = true
		}
	}
	if pq && classic {
		return ErrMixedRecipients
	}
	return nil
}

func encryptDataKey(dataKey []byte, recipients []age.Recipient) ([]byte, error) {
	if err := checkRecipientMix(recipients); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
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
	format   uint64
	id       []byte
	dataKey  []byte
	keyCheck []byte
}

func readHeader(st ReadTx) (*header, error) {
	var h header
	for _, f := range []struct {
		key []byte
		dst *[]byte
	}{{metaID, &h.id}, {metaDataKey, &h.dataKey}, {metaKeyCheck, &h.keyCheck}} {
		v, err := st.Get(bucketMeta, f.key)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	format, err := st.Get(bucketMeta, metaFormat)
	if err != nil {
		return nil, err
	}
	h.format = u64(format)
	if h.format == 0 || len(h.id) != 16 || len(h.dataKey) == 0 || len(h.keyCheck) != 32 {
		return nil, ErrNotVault
	}
	if h.format > FormatVersion {
		return nil, fmt.Errorf("%w (format %d, this keymint reads up to %d)", ErrNewerFormat, h.format, FormatVersion)
	}
	return &h, nil
}

// Open unlocks the vault file at path, migrating it in place from an older
// format. It refuses a vault or directory others can write to, and a state
// older than one this machine has seen (see Options).
func Open(path string, opts Options) (*Vault, error) {
	if len(opts.Identities) == 0 && opts.DataKey == nil {
		return nil, ErrNoIdentity
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoVault)
	}
	if err := CheckPrivateFile(path, "vault"); err != nil {
		return nil, err
	}
	return OpenStore(openBoltStore(path, opts.lockTimeout()), path, opts)
}

// OpenStore unlocks the vault in store, migrating it from an older format
// in one transaction. name says where the store is, in messages and in the
// remembered state.
func OpenStore(store Store, name string, opts Options) (*Vault, error) {
	if len(opts.Identities) == 0 && opts.DataKey == nil {
		return nil, ErrNoIdentity
	}
	// The header, and the sealed index key and head with it, are read in
	// one short transaction and the data key decrypted with none held,
	// since a passphrase costs about a second. Only a migration reads
	// again.
	var h *header
	var sealedIndex, sealedHead []byte
	if err := store.View(func(st ReadTx) error {
		var err error
		if h, err = readHeader(st); err != nil {
			return err
		}
		if sealedIndex, err = st.Get(bucketMeta, metaIndexKey); err != nil {
			return err
		}
		sealedHead, err = st.Get(bucketMeta, metaHead)
		return err
	}); err != nil {
		return nil, err
	}
	k, err := unlockKeys(h, opts)
	if err != nil {
		return nil, err
	}
	guard, err := newRollbackGuard(name, opts.StateDir, h.id)
	if err != nil {
		return nil, err
	}
	// The identities (for a passphrase, the passphrase itself) are needed
	// no more, unless to follow a rekey: the Vault keeps only the keys
	// derived from the data key.
	if !opts.FollowRekey {
		opts.Identities = nil
	}
	opts.DataKey = nil
	v := newVault(store, name, h.id, k, opts, guard)
	if h.format < FormatVersion {
		// Format 1 derived its index key and had no head: its migration
		// stores the one and writes the other. Either may have been done
		// by another process meanwhile, so both are read again after.
		if err := v.migrate(); err != nil {
			return nil, err
		}
		if err := v.store.View(func(st ReadTx) error {
			var err error
			if sealedIndex, err = st.Get(bucketMeta, metaIndexKey); err != nil {
				return err
			}
			sealedHead, err = st.Get(bucketMeta, metaHead)
			return err
		}); err != nil {
			return nil, err
		}
	}
	if err := v.loadIndexKey(sealedIndex); err != nil {
		return nil, err
	}
	// Refuse now a state older than one seen, or a head that fails, rather
	// than at the first transaction; or, after a deliberate restore, take
	// it as the newest.
	if err := v.checkHeadAtOpen(sealedHead, opts.AcceptRollback); err != nil {
		return nil, err
	}
	return v, nil
}

// loadIndexKey unseals the index key, so that a vault whose key is missing
// or altered is refused at open.
func (v *Vault) loadIndexKey(sealed []byte) error {
	if sealed == nil {
		return &TamperError{Bucket: bucketMeta, What: "the index key is missing"}
	}
	ik, err := v.keys().open(v.id, bucketMeta, metaIndexKey, sealed)
	if err != nil || len(ik) != 32 {
		return &TamperError{Bucket: bucketMeta, What: "the index key failed authentication"}
	}
	v.keys().indexKey = ik
	return nil
}

// checkHeadAtOpen checks the head read at open as a transaction's begin
// would (see begin), and remembers its state; accept takes it as the
// newest whatever was seen before.
func (v *Vault) checkHeadAtOpen(sealedHead []byte, accept bool) error {
	hd, state, err := v.openHead(v.keys(), sealedHead)
	if err != nil {
		return err
	}
	// The clear format is FormatVersion by now: older ones were migrated,
	// newer ones refused.
	if hd.Format != FormatVersion {
		return &TamperError{Bucket: bucketMeta, What: fmt.Sprintf("the format is %d but the head says %d", FormatVersion, hd.Format)}
	}
	if !accept && v.guard.check(state, v.guard.newest()) != nil {
		// The head was read before this machine's remembered state, and
		// another process may have committed and remembered a newer one
		// meanwhile: only a fresh read of the head can tell a rollback.
		return v.View(func(*Tx) error { return nil })
	}
	return v.guard.saw(state, accept)
}

// Path returns where the vault is: the file's path for a vault file.
func (v *Vault) Path() string { return v.path }

// Update runs fn in one read-write transaction. If fn returns an error
// nothing is changed, with one exception: a reused authorization code or
// refresh token ([CodeReusedError], [RefreshReusedError]) revokes what was
// issued with it in the transaction that detected the reuse, and that
// transaction commits whatever fn returns (and Update returns fn's error),
// so that a replay cannot undo its own revocation by making the request
// fail. Nothing can be written after the reuse; what fn wrote before it
// commits too, so present a code or refresh token before writing anything
// else. If the store reports a conflict with a concurrent transaction, fn
// runs again on the new state: it must not keep effects of an earlier run
// outside the transaction.
func (v *Vault) Update(fn func(*Tx) error) error {
	for attempt := 0; ; attempt++ {
		var committed State
		var kept error
		floor := v.guard.newest()
		seen := v.keys()
		err := v.store.Update(func(w WriteTx) error {
			kept = nil
			tx, err := v.begin(w, w, floor)
			if err != nil {
				return err
			}
			if err := fn(tx); err != nil {
				if tx.kept == nil {
					return err
				}
				kept = err
			}
			committed, err = tx.commit()
			return err
		})
		if errors.Is(err, ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		if errors.Is(err, errKeyChanged) && v.canFollow() && attempt < maxConflictRetries {
			if err := v.follow(seen); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if committed.Revision != 0 {
			if err := v.guard.saw(committed, false); err != nil {
				return err
			}
		}
		return kept
	}
}

// View runs fn in one read-only transaction.
func (v *Vault) View(fn func(*Tx) error) error {
	for attempt := 0; ; attempt++ {
		var seen State
		floor := v.guard.newest()
		under := v.keys()
		err := v.store.View(func(st ReadTx) error {
			tx, err := v.begin(st, nil, floor)
			if err != nil {
				return err
			}
			seen = tx.state
			return fn(tx)
		})
		if errors.Is(err, errKeyChanged) && v.canFollow() && attempt < maxConflictRetries {
			if err := v.follow(under); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		return v.guard.saw(seen, false)
	}
}

// begin starts a transaction on the state st reads, after checking it is
// not older than floor (see rollbackGuard.check).
func (v *Vault) begin(st ReadTx, w WriteTx, floor State) (*Tx, error) {
	h, err := readHeader(st)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(h.id, v.id) {
		return nil, fmt.Errorf("a different vault is now at %s: %w", v.path, ErrRekeyed)
	}
	k := v.keys()
	if subtle.ConstantTimeCompare(h.keyCheck, k.check) != 1 {
		return nil, errKeyChanged
	}
	if h.format != FormatVersion {
		return nil, fmt.Errorf("%s changed to format %d while open: %w", v.path, h.format, ErrRekeyed)
	}
	hd, state, err := v.readHead(st, k)
	if err != nil {
		return nil, err
	}
	if hd.Format != h.format {
		return nil, &TamperError{Bucket: bucketMeta, What: fmt.Sprintf("the format is %d but the head says %d", h.format, hd.Format)}
	}
	if err := v.guard.check(state, floor); err != nil {
		return nil, err
	}
	tx := v.newTxUnder(st, w, hd, k)
	tx.state = state
	return tx, nil
}

func (v *Vault) newTx(st ReadTx, w WriteTx, h *head) *Tx {
	return v.newTxUnder(st, w, h, v.keys())
}

func (v *Vault) newTxUnder(st ReadTx, w WriteTx, h *head, k *keys) *Tx {
	return &Tx{rd: st, w: w, v: v, k: k, now: v.opts.now(), head: h, auth: newAuth(st, k, h.Roots)}
}

// Generation reads the vault's change counter: a server polls it to learn,
// cheaply, that another process changed the vault's records.
func (v *Vault) Generation() (uint64, error) {
	var gen uint64
	err := v.View(func(tx *Tx) error {
		gen = tx.Generation()
		return nil
	})
	return gen, err
}
