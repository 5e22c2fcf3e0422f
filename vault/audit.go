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
	// Command is what made the change (Options.Command). Entries written
	// before it was recorded have none, and hash as they always did.
	Command string `json:"command,omitempty"`
	Prev    []byte `json:"prev"`
	Hash    []byte `json:"hash"`
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

// Audit appends an entry for a change made in this transaction. The head
// records the new end of the chain, so that no entry can be cut from it.
func (tx *Tx) Audit(action, id, detail string) error {
	if err := tx.writable(); err != nil {
		return err
	}
	h := tx.head
	if err := tx.checkAuditEnd(); err != nil {
		return err
	}
	seq, err := tx.w.NextSequence(bucketAudit)
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	if seq != h.AuditSeq+1 {
		return &TamperError{Bucket: bucketAudit, What: fmt.Sprintf("the log's sequence is at %d but the head ends it at entry %d", seq-1, h.AuditSeq)}
	}
	e := AuditEntry{Seq: seq, Time: tx.now, Action: action, ID: id, Detail: detail, Actor: tx.v.opts.Actor, Command: tx.v.opts.Command, Prev: h.AuditHash}
	if e.Hash, err = e.computeHash(); err != nil {
		return fmt.Errorf("hash audit entry: %w", err)
	}
	plain, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	sealed, err := tx.k.seal(tx.v.id, bucketAudit, seqKey(seq), plain)
	if err != nil {
		return err
	}
	if err := tx.w.Put(bucketAudit, seqKey(seq), sealed); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	h.AuditSeq, h.AuditHash = seq, e.Hash
	tx.wrote = true
	return nil
}

// checkAuditEnd checks that the log's last entry is the one the head names,
// so that no change is made on top of a log cut short or altered at its
// end (one read, one unseal).
func (tx *Tx) checkAuditEnd() error {
	h := tx.head
	if h.AuditSeq == 0 {
		return nil
	}
	sealed, err := tx.rd.Get(bucketAudit, seqKey(h.AuditSeq))
	if err != nil {
		return err
	}
	if sealed == nil {
		return &TamperError{Bucket: bucketAudit, What: fmt.Sprintf("entry %d, the last the head names, is missing", h.AuditSeq)}
	}
	var last AuditEntry
	if err := tx.openJSON(bucketAudit, seqKey(h.AuditSeq), sealed, &last); err != nil {
		return &TamperError{Bucket: bucketAudit, What: fmt.Sprintf("entry %d, the last the head names, fails authentication", h.AuditSeq)}
	}
	if sum, err := last.computeHash(); err != nil || !bytes.Equal(sum, h.AuditHash) || !bytes.Equal(last.Hash, h.AuditHash) {
		return &TamperError{Bucket: bucketAudit, What: fmt.Sprintf("entry %d is not the one the head names", h.AuditSeq)}
	}
	return nil
}

// AuditLog returns every entry in order and checks the chain: each entry's
// hash, each link to the one before, that sequence numbers have no gap, and
// that it ends where the head says.
// It returns the entries read so far along with ErrAuditChain.
func (tx *Tx) AuditLog() ([]AuditEntry, error) {
	out, err := tx.auditChain()
	var last []byte
	if len(out) > 0 {
		last = out[len(out)-1].Hash
	}
	if err == nil && (tx.head.AuditSeq != uint64(len(out)) || !bytes.Equal(tx.head.AuditHash, last)) {
		err = fmt.Errorf("%w: the log ends at entry %d but the head ends it at %d", ErrAuditChain, len(out), tx.head.AuditSeq)
	}
	return out, err
}

// auditChain reads the log and checks its links, not where it ends.
func (tx *Tx) auditChain() ([]AuditEntry, error) {
	var out []AuditEntry
	var prev []byte
	var want uint64 = 1
	err := tx.rd.Range(bucketAudit, nil, nil, func(k, sealed []byte) error {
		var e AuditEntry
		if err := tx.openJSON(bucketAudit, k, sealed, &e); err != nil {
			return err
		}
		h, err := e.computeHash()
		if err != nil {
			return err
		}
		switch {
		case len(k) != 8 || binary.BigEndian.Uint64(k) != e.Seq || e.Seq != want:
			return fmt.Errorf("%w: entry %d missing", ErrAuditChain, want)
		case !bytes.Equal(h, e.Hash):
			return fmt.Errorf("%w: entry %d altered", ErrAuditChain, e.Seq)
		case !bytes.Equal(prev, e.Prev):
			return fmt.Errorf("%w: entry %d does not follow entry %d", ErrAuditChain, e.Seq, e.Seq-1)
		}
		out = append(out, e)
		prev, want = e.Hash, want+1
		return nil
	})
	return out, err
}
