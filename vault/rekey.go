package vault

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// Rekey.
//
// A rekey replaces the data key: every sealed value (records, the audit
// log, the index key, the head) is opened under the old key and sealed
// under a new random one, every record moves to its shard under the new
// shard key, and the hash tree is built again under the new tree key. The
// index key is carried over unchanged (sealed under the new data key), so
// the HMAC of every API key, client secret and refresh token still
// matches, and the keys derived from it ([Vault.DerivedKey]) too.
//
// It is one store transaction, like a migration: a crash or an error
// leaves the vault as it was, under its old data key, and the new key is
// never seen with half the records. The state is checked whole before
// anything is re-sealed, so a rekey never blesses a tampered record.
//
// What it protects against: someone who had the old data key (a removed
// recipient, a leaked key) and reads this file afterwards. It cannot help
// with copies of the file taken before it: they stay sealed under the old
// key.

// ErrPassphraseNeeded reports a rekey of a passphrase vault without its
// passphrase: the new data key is encrypted to it.
var ErrPassphraseNeeded = errors.New("this vault is locked with a passphrase: the new data key needs it to be encrypted to")

// RekeyOptions configure [Vault.Rekey].
type RekeyOptions struct {
	// Passphrase is a passphrase vault's passphrase, which the new data key
	// is encrypted to. A vault with recipients encrypts it to them (its
	// settings name them) and must leave this empty.
	Passphrase string
	// UI serves plugin recipients.
	UI *PluginUI
	// Progress, if set, is called as records are re-sealed, with how many
	// are done and how many there are, from the caller's goroutine.
	Progress func(done, total int)
}

// RekeyReport is what a rekey did.
type RekeyReport struct {
	// Records is how many records were re-sealed, AuditEntries how many
	// audit entries (the rekey's own included).
	Records      int `json:"records"`
	AuditEntries int `json:"audit_entries"`
	// Recipients is how many recipients the new data key is encrypted to;
	// zero for a passphrase.
	Recipients int `json:"recipients"`
}

// Rekey seals the whole vault under a new data key, in one transaction.
// It returns the vault unlocked with the new key: v itself can make no
// more transactions (they fail with [ErrRekeyed]), nor can any other
// process that had the vault open; they open it again.
func (v *Vault) Rekey(o RekeyOptions) (*Vault, *RekeyReport, error) {
	for attempt := 0; ; attempt++ {
		nv, rep, err := v.rekeyOnce(o)
		if errors.Is(err, ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		return nv, rep, err
	}
}

func (v *Vault) rekeyOnce(o RekeyOptions) (*Vault, *RekeyReport, error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, fmt.Errorf("generate data key: %w", err)
	}
	defer clear(dataKey)
	nk, err := deriveKeys(dataKey)
	if err != nil {
		return nil, nil, err
	}
	nk.indexKey = bytes.Clone(v.keys().indexKey)
	nv := newVault(v.store, v.path, v.id, nk, v.opts, v.guard)
	rep := &RekeyReport{}
	var committed State
	floor := v.guard.newest()
	err = v.store.Update(func(w WriteTx) error {
		tx, err := v.begin(w, w, floor)
		if err != nil {
			return err
		}
		recipients, err := rekeyRecipients(tx, o)
		if err != nil {
			return err
		}
		if o.Passphrase == "" {
			rep.Recipients = len(recipients)
		}
		// Check everything under the old key first: the tree of every
		// bucket and the audit chain to its end. Every seal is checked
		// as it is opened below.
		total := 0
		for _, b := range shardedBuckets {
			if err := tx.auth.checkBucket(b); err != nil {
				return err
			}
			if err := w.Range(b, nil, nil, func(_, _ []byte) error { total++; return nil }); err != nil {
				return err
			}
		}
		log, err := tx.AuditLog()
		if err != nil {
			return err
		}
		sealedKey, err := encryptDataKey(dataKey, recipients)
		if err != nil {
			return err
		}

		// The new transaction builds the tree from nothing: the old
		// nodes go, and every record is put again under the new keys.
		nh := &head{Format: tx.head.Format, Revision: tx.head.Revision, Generation: tx.head.Generation,
			Roots: map[string][]byte{}, AuditSeq: tx.head.AuditSeq, AuditHash: tx.head.AuditHash}
		ntx := nv.newTx(w, w, nh)
		ntx.state = tx.state
		if err := deleteAll(w, bucketTree); err != nil {
			return err
		}
		done := 0
		for _, b := range shardedBuckets {
			n, err := v.resealBucket(w, tx.k, ntx, b, func(n int) {
				if o.Progress != nil {
					o.Progress(done+n, total)
				}
			})
			if err != nil {
				return err
			}
			done += n
		}
		rep.Records = done

		// The audit log keeps its keys and its chain (hashes of the
		// entries' plaintext); only the seals change.
		for _, e := range log {
			k := seqKey(e.Seq)
			sealed, err := w.Get(bucketAudit, k)
			if err != nil {
				return err
			}
			plain, err := tx.k.open(v.id, bucketAudit, k, sealed)
			if err != nil {
				return err
			}
			resealed, err := nk.seal(v.id, bucketAudit, k, plain)
			clear(plain)
			if err != nil {
				return err
			}
			if err := w.Put(bucketAudit, k, resealed); err != nil {
				return err
			}
		}

		sealedIndex, err := nk.seal(v.id, bucketMeta, metaIndexKey, nk.indexKey)
		if err != nil {
			return err
		}
		for _, kv := range []struct{ key, val []byte }{
			{metaDataKey, sealedKey},
			{metaKeyCheck, nk.check},
			{metaIndexKey, sealedIndex},
		} {
			if err := w.Put(bucketMeta, kv.key, kv.val); err != nil {
				return err
			}
		}
		if err := ntx.Audit("vault.rekey", "", fmt.Sprintf("%d records re-sealed under a new data key", done)); err != nil {
			return err
		}
		rep.AuditEntries = len(log) + 1
		// Moving records is not a change of them: the generation stays,
		// and no change is logged (a server that had the vault open must
		// open it again anyway: the old key opens nothing).
		ntx.changed, ntx.changes = false, nil
		ntx.wrote = true
		committed, err = ntx.commit()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if err := v.guard.saw(committed, false); err != nil {
		return nil, nil, err
	}
	return nv, rep, nil
}

// rekeyRecipients returns what the new data key is encrypted to: the
// passphrase of a passphrase vault, the recipients of any other.
func rekeyRecipients(tx *Tx, o RekeyOptions) ([]Recipient, error) {
	pass, err := tx.passphraseLocked()
	if err != nil {
		return nil, err
	}
	if pass {
		if o.Passphrase == "" {
			return nil, ErrPassphraseNeeded
		}
		r, _, err := Passphrase(o.Passphrase)
		if err != nil {
			return nil, err
		}
		return []Recipient{r}, nil
	}
	if o.Passphrase != "" {
		return nil, errors.New("this vault is encrypted to recipients, not a passphrase")
	}
	s, err := tx.Settings()
	if err != nil {
		return nil, err
	}
	if len(s.Recipients) == 0 {
		return nil, ErrRecipientsUnknown
	}
	out := make([]Recipient, 0, len(s.Recipients))
	for _, n := range s.Recipients {
		r, err := ParseRecipient(n, o.UI)
		if err != nil {
			return nil, fmt.Errorf("recipient %s: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// resealBucket opens every record of bucket under the old keys and puts it
// again through ntx (under the new keys, in its new shard), after removing
// them all from their old shards. It returns how many there were.
func (v *Vault) resealBucket(w WriteTx, old *keys, ntx *Tx, bucket string, progress func(int)) (int, error) {
	type record struct {
		storeKey, key, sealed []byte
		shard                 uint16
	}
	var recs []record
	err := w.Range(bucket, nil, nil, func(k, sealed []byte) error {
		recs = append(recs, record{storeKey: k, key: k[2:], sealed: sealed})
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Open and seal on every core, as forEachJSON opens.
	if err := parallel(len(recs), func(i int) error {
		r := &recs[i]
		plain, err := old.open(v.id, bucket, r.key, r.sealed)
		if err != nil {
			return err
		}
		r.sealed, err = ntx.k.seal(v.id, bucket, r.key, plain)
		clear(plain)
		r.shard = ntx.shard(bucket, r.key)
		return err
	}); err != nil {
		return 0, err
	}
	for _, r := range recs {
		if err := w.Delete(bucket, r.storeKey); err != nil {
			return 0, err
		}
	}
	// The bucket is empty now and its tree is gone (deleted before the
	// first bucket): every shard is known to hold nothing, with no need to
	// read one before its first write (which, among a B+tree's freshly
	// emptied pages, costs more than the rest of the rekey).
	ntx.auth.wholeBuckets[bucket] = true
	// In store-key order, which a B+tree takes best.
	slices.SortFunc(recs, func(a, b record) int {
		return cmp.Or(cmp.Compare(a.shard, b.shard), bytes.Compare(a.key, b.key))
	})
	for i, r := range recs {
		if err := ntx.putSealed(bucket, r.key, r.sealed); err != nil {
			return 0, err
		}
		if (i+1)%1024 == 0 || i == len(recs)-1 {
			progress(i + 1)
		}
	}
	return len(recs), nil
}

// deleteAll removes every key of bucket.
func deleteAll(w WriteTx, bucket string) error {
	var keys [][]byte
	if err := w.Range(bucket, nil, nil, func(k, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := w.Delete(bucket, k); err != nil {
			return err
		}
	}
	return nil
}

// parallel calls fn(i) for i in [0, n) on GOMAXPROCS goroutines and returns
// the first error.
func parallel(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), max(n/64, 1))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
