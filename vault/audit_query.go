package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// VerifyAuditLog is [Tx.AuditLog] (the chain check [Vault.Verify] runs)
// with every failure an [ErrAuditChain] that names the entry: an entry
// that fails to open under its own sequence number (altered on disk, or
// moved there from another place in the log) is named too, where the
// chain check alone reports only a corrupt record. It returns the entries
// read before the failure.
func (tx *Tx) VerifyAuditLog() ([]AuditEntry, error) {
	out, err := tx.AuditLog()
	if err == nil || errors.Is(err, ErrAuditChain) {
		return out, err
	}
	if !errors.Is(err, ErrCorrupt) {
		return out, err
	}
	// The first record after the last good entry is the one that failed.
	seq := uint64(len(out)) + 1
	_ = tx.rd.Range(bucketAudit, seqKey(seq), nil, func(k, _ []byte) error {
		if len(k) == 8 {
			seq = binary.BigEndian.Uint64(k)
		}
		return errStopRange
	})
	return out, fmt.Errorf("%w: entry %d fails authentication (altered, or moved from another place in the log)", ErrAuditChain, seq)
}
