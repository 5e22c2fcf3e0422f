package vault

import (
	"fmt"
	"time"
)

// Migrations.
//
// Each step moves a vault from one format to the next. Open runs the steps
// a vault needs, all in one transaction: a crash or an error leaves the
// vault as it was, in its old format.

// migration is one step, from format from to from+1.
type migration struct {
	from uint64
	name string
	run  func(*migrator) error
}

var migrations = []migration{
	{from: 1, name: "format 2: the sharded hash tree and head, a stored index key, last use kept with usage", run: migrate1to2},
	{from: 2, name: "format 3: users, permission groups, grants, authorization codes and refresh tokens; expiry queues", run: migrate2to3},
}

// migrator is what a step works with: the vault's keys and the raw store.
type migrator struct {
	v *Vault
	w WriteTx
	// tx is the transaction the steps build on, once one has it: format 1
	// has no head to begin one from, so its step makes it.
	tx *Tx
}

// migrate brings the vault to FormatVersion in one transaction.
func (v *Vault) migrate() error {
	var committed State
	err := v.store.Update(func(w WriteTx) error {
		h, err := readHeader(w)
		if err != nil {
			return err
		}
		if h.format == FormatVersion {
			return nil // another process migrated it meanwhile
		}
		m := &migrator{v: v, w: w}
		from := h.format
		for _, step := range migrations {
			if step.from != h.format {
				continue
			}
			if err := step.run(m); err != nil {
				return fmt.Errorf("migrate the vault to %s: %w", step.name, err)
			}
			h.format++
		}
		if h.format != FormatVersion || m.tx == nil {
			return fmt.Errorf("no migration from vault format %d: %w", h.format, ErrNotVault)
		}
		if err := w.Put(bucketMeta, metaFormat, u64bytes(FormatVersion)); err != nil {
			return err
		}
		if err := m.tx.Audit("vault.migrate", "", fmt.Sprintf("format %d -> %d", from, FormatVersion)); err != nil {
			return err
		}
		committed, err = m.tx.commit()
		return err
	})
	if err != nil {
		return err
	}
	return v.guard.saw(committed, false)
}

// v1Buckets are the buckets of format 1 whose records format 2 shards.
var v1Buckets = []string{bucketIndex, bucketKeys, bucketClients, bucketSettings, bucketSigning, bucketRevoked, bucketUsage}

// v1LastUse is the one field format 1 kept in a key or client record that
// format 2 keeps with usage.
type v1LastUse struct {
	ID         string     `json:"id"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// migrate1to2: format 1 kept records under their plain keys, derived the
// index key from the data key, kept last use in the record, had no head,
// and counted generations in the clear. Every sealed value is checked and
// moved unchanged to its shard (its associated data names the record key,
// not the store key); the tree and head are built from what was moved.
func migrate1to2(m *migrator) error {
	v, w := m.v, m.w
	// The index key stays what format 1 derived, so that every secret
	// already issued still matches; from now on it is stored, and a new
	// data key will not change it.
	v.keys().indexKey = v.keys().legacyIndexKey
	sealedIndex, err := v.keys().seal(v.id, bucketMeta, metaIndexKey, v.keys().indexKey)
	if err != nil {
		return err
	}
	if err := w.Put(bucketMeta, metaIndexKey, sealedIndex); err != nil {
		return err
	}
	genBytes, err := w.Get(bucketMeta, []byte("generation"))
	if err != nil {
		return err
	}
	gen := u64(genBytes)
	if err := w.Delete(bucketMeta, []byte("generation")); err != nil {
		return err
	}

	// The audit chain is checked as format 1 did, its end taken from the
	// bucket's sequence, and becomes the head's.
	h := &head{Format: 2, Revision: gen, Generation: gen, Roots: map[string][]byte{}}
	tx := v.newTx(w, w, h)
	log, err := tx.auditChain()
	if err != nil {
		return err
	}
	seq, err := w.Sequence(bucketAudit)
	if err != nil {
		return err
	}
	if uint64(len(log)) != seq {
		return fmt.Errorf("%w: entries after %d missing", ErrAuditChain, len(log))
	}
	if len(log) > 0 {
		h.AuditSeq, h.AuditHash = log[len(log)-1].Seq, log[len(log)-1].Hash
	}

	type record struct{ key, sealed []byte }
	moved := map[string][]record{}
	for _, b := range v1Buckets {
		err := w.Range(b, nil, nil, func(k, sealed []byte) error {
			if _, err := v.keys().open(v.id, b, k, sealed); err != nil {
				return fmt.Errorf("%s record: %w", b, err)
			}
			moved[b] = append(moved[b], record{k, sealed})
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range moved[b] {
			if err := w.Delete(b, r.key); err != nil {
				return err
			}
		}
	}
	for _, b := range v1Buckets {
		for _, r := range moved[b] {
			if b != bucketKeys && b != bucketClients {
				if err := tx.putSealed(b, r.key, r.sealed); err != nil {
					return err
				}
				continue
			}
			// Re-sealed without last use, which moves to usage.
			var last v1LastUse
			var rec any = &Key{}
			if b == bucketClients {
				rec = &Client{}
			}
			if err := tx.openJSON(b, r.key, r.sealed, &last); err != nil {
				return err
			}
			if err := tx.openJSON(b, r.key, r.sealed, rec); err != nil {
				return err
			}
			if err := tx.putJSON(b, r.key, rec); err != nil {
				return err
			}
			if last.LastUsedAt != nil {
				if err := tx.putJSON(bucketUsage, lastUsedKey(last.ID), last.LastUsedAt.UTC()); err != nil {
					return err
				}
			}
		}
	}
	// Moving records is not a change of them: the generation stays.
	tx.changed, tx.changes = false, nil
	tx.wrote = true
	m.tx = tx
	return nil
}

// migrate2to3: format 3 adds buckets (users, groups, grants, grant index,
// codes, refresh, families, expiry) that start empty, and so have no root
// in the head until their first record; and it enters every revocation in
// the revocations' expiry queue, so that pruning them no longer reads the
// whole bucket. Client records gain fields that are absent when unset, so
// format 2's decode unchanged. Nothing a server caches changes: the
// generation stays.
func migrate2to3(m *migrator) error {
	tx := m.tx
	if tx == nil {
		v := m.v
		hd, state, err := v.readHead(m.w, v.keys())
		if err != nil {
			return err
		}
		if hd.Format != 2 {
			return &TamperError{Bucket: bucketMeta, What: fmt.Sprintf("the format is 2 but the head says %d", hd.Format)}
		}
		// A migration commits a new head: it must not bless a rolled-back
		// file that a transaction would refuse.
		if !v.opts.AcceptRollback {
			if err := v.guard.check(state, v.guard.newest()); err != nil {
				return err
			}
		}
		tx = v.newTx(m.w, m.w, hd)
		tx.state = state
	}
	var revs []Revocation
	err := forEachJSON(tx, bucketRevoked, func(_ []byte, r *Revocation) error {
		revs = append(revs, *r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range revs {
		if r.JTI == "" {
			continue // never made by keymint; left to stand as it was
		}
		if err := tx.expiryPut(queueRevocations, expiryRevocation, []byte(r.JTI), r.ExpiresAt); err != nil {
			return err
		}
	}
	tx.head.Format = 3
	tx.wrote = true
	m.tx = tx
	return nil
}
