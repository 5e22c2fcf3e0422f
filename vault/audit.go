package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEntry is one change to the vault. Entries form a hash chain: each
// carries the hash of the one before, so removing or altering an entry
// breaks every later link.
type AuditEntry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	ID     string    `json:"credential,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	Prev   []byte    `json:"prev"`
	Hash   []byte    `json:"hash"`
}

func (e *AuditEntry) computeHash() ([]byte, error) {
	c := *e
	c.Hash = nil
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Audit appends an entry for a change made in this transaction.
func (tx *Tx) Audit(action, id, detail string) error {
	b := tx.bucket(bucketAudit)
	var prev []byte
	if k, _ := b.Cursor().Last(); k != nil {
		var last AuditEntry
		if _, err := tx.getJSON(bucketAudit, k, &last); err != nil {
			return fmt.Errorf("read last audit entry: %w", err)
		}
		prev = last.Hash
	}
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	e := AuditEntry{Seq: seq, Time: tx.now, Action: action, ID: id, Detail: detail, Actor: tx.v.opts.Actor, Prev: prev}
	if e.Hash, err = e.computeHash(); err != nil {
		return fmt.Errorf("hash audit entry: %w", err)
	}
	return tx.putJSON(bucketAudit, seqKey(seq), e)
}

// AuditLog returns every entry in order and checks the chain: each entry's
// hash, each link to the one before, that sequence numbers have no gap, and
// that none is missing at the end.
// It returns the entries read so far along with ErrAuditChain.
func (tx *Tx) AuditLog() ([]AuditEntry, error) {
	var out []AuditEntry
	var prev []byte
	var want uint64 = 1
	err := forEachJSON(tx, bucketAudit, func(k []byte, e *AuditEntry) error {
		h, err := e.computeHash()
		if err != nil {
			return err
		}
		switch {
		case binary.BigEndian.Uint64(k) != e.Seq || e.Seq != want:
			return fmt.Errorf("%w: entry %d missing", ErrAuditChain, want)
		case !bytes.Equal(h, e.Hash):
			return fmt.Errorf("%w: entry %d altered", ErrAuditChain, e.Seq)
		case !bytes.Equal(prev, e.Prev):
			return fmt.Errorf("%w: entry %d does not follow entry %d", ErrAuditChain, e.Seq, e.Seq-1)
		}
		out = append(out, *e)
		prev, want = e.Hash, want+1
		return nil
	})
	// The chain cannot tell that its last entries were removed; the
	// bucket's sequence, which only Audit advances, can.
	if err == nil && tx.bucket(bucketAudit).Sequence() != want-1 {
		err = fmt.Errorf("%w: entries after %d missing", ErrAuditChain, want-1)
	}
	return out, err
}
