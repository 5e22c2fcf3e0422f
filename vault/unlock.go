package vault

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Unlocking: from identities, from a data key held elsewhere (keymint's
// agent), and again after another process rekeyed the vault.

// Lock is what a vault shows in the clear of the data key that opens it:
// the vault's random id and the key check (HKDF of the data key, which
// identifies it without revealing it). An agent holding a data key answers
// only for the Lock it was given, so it never answers for another vault, nor
// for this one once rekeyed.
type Lock struct {
	ID       []byte
	KeyCheck []byte
}

// Matches reports whether l and o are the same vault under the same data
// key.
func (l Lock) Matches(o Lock) bool {
	return bytes.Equal(l.ID, o.ID) && subtle.ConstantTimeCompare(l.KeyCheck, o.KeyCheck) == 1
}

// Unlocked is a vault's data key with the Lock it opens.
type Unlocked struct {
	Lock
	DataKey []byte
}

// PeekLock reads the Lock of the vault at l without unlocking it.
func PeekLock(l Location, opts Options) (Lock, error) {
	var lock Lock
	err := l.withStore(opts, func(s Store) (err error) {
		lock, err = PeekStoreLock(s)
		return err
	})
	return lock, err
}

// PeekStoreLock reads the Lock of the vault in store.
func PeekStoreLock(store Store) (Lock, error) {
	var l Lock
	err := store.View(func(st ReadTx) error {
		h, err := readHeader(st)
		if err != nil {
			return err
		}
		l = Lock{ID: h.id, KeyCheck: h.keyCheck}
		return nil
	})
	return l, err
}

// Unlock decrypts the data key of the vault at l with opts.Identities and
// returns it with its Lock, without opening the vault: for an agent, which
// holds it for later commands. Open the vault with [Options.DataKey] to
// check the rest.
func Unlock(l Location, opts Options) (*Unlocked, error) {
	if len(opts.Identities) == 0 {
		return nil, ErrNoIdentity
	}
	var h *header
	if err := l.withStore(opts, func(s Store) error {
		return s.View(func(st ReadTx) (err error) {
			h, err = readHeader(st)
			return err
		})
	}); err != nil {
		return nil, err
	}
	dataKey, err := openDataKey(h.dataKey, opts.Identities)
	if err != nil {
		return nil, err
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.check, h.keyCheck) != 1 {
		return nil, fmt.Errorf("data key does not match: %w", ErrCorrupt)
	}
	return &Unlocked{Lock: Lock{ID: h.id, KeyCheck: h.keyCheck}, DataKey: dataKey}, nil
}

// openDataKey decrypts a sealed data key with ids.
func openDataKey(sealed []byte, ids []Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, ErrNoIdentity
	}
	r, err := age.Decrypt(bytes.NewReader(sealed), ids...)
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
	return dataKey, nil
}

// unlockKeys derives the keys of the vault whose header is h from
// opts.DataKey or, if unset, from the data key opts.Identities decrypt, and
// checks them against the header's key check. A data key given that does
// not match is a wrong identity: it is not this vault's key (any more).
func unlockKeys(h *header, opts Options) (*keys, error) {
	dataKey := opts.DataKey
	if dataKey == nil {
		var err error
		if dataKey, err = openDataKey(h.dataKey, opts.Identities); err != nil {
			return nil, err
		}
		defer clear(dataKey)
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.check, h.keyCheck) != 1 {
		if opts.DataKey != nil {
			return nil, fmt.Errorf("the data key given is not this vault's: %w", ErrWrongIdentity)
		}
		return nil, fmt.Errorf("data key does not match: %w", ErrCorrupt)
	}
	return k, nil
}

// errKeyChanged is the [ErrRekeyed] of a transaction that found the same
// vault under a new data key: the one case a Vault following rekeys acts on.
var errKeyChanged error = keyChanged{}

type keyChanged struct{}

func (keyChanged) Error() string { return ErrRekeyed.Error() }
func (keyChanged) Unwrap() error { return ErrRekeyed }

// canFollow reports whether v follows a rekey (see [Options.FollowRekey]).
func (v *Vault) canFollow() bool {
	return v.opts.FollowRekey && len(v.opts.Identities) > 0
}

// follow unlocks the vault's new data key with the identities kept, after
// a transaction begun under seen found the key changed. Transactions then
// begin under the new keys; one running under seen fails as before and is
// run again. The index key must be the one seen: a rekey keeps it (so every
// secret's HMAC holds), and a different one is not a rekey but another
// vault, or tampering.
func (v *Vault) follow(seen *keys) error {
	v.following.Lock()
	defer v.following.Unlock()
	if v.keys() != seen {
		return nil // another goroutine followed already
	}
	var h *header
	var sealedIndex []byte
	if err := v.store.View(func(st ReadTx) (err error) {
		if h, err = readHeader(st); err != nil {
			return err
		}
		sealedIndex, err = st.Get(bucketMeta, metaIndexKey)
		return err
	}); err != nil {
		return err
	}
	if !bytes.Equal(h.id, v.id) {
		return fmt.Errorf("a different vault is now at %s: %w", v.path, ErrRekeyed)
	}
	k, err := unlockKeys(h, Options{Identities: v.opts.Identities})
	if errors.Is(err, ErrWrongIdentity) {
		return fmt.Errorf("%s was rekeyed and this process's identity no longer opens it: %w", v.path, err)
	}
	if err != nil {
		return err
	}
	ik, err := k.open(v.id, bucketMeta, metaIndexKey, sealedIndex)
	if err != nil || subtle.ConstantTimeCompare(ik, seen.indexKey) != 1 {
		return &TamperError{Bucket: bucketMeta, What: "the index key changed with the data key"}
	}
	k.indexKey = ik
	v.current.Store(k)
	return nil
}
