package vault

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// head is the sealed summary of the whole state that every commit
// rewrites: no write can skip it, and a reader checks everything it reads
// against it.
type head struct {
	// Format is the vault format, bound here so that the clear copy in
	// meta cannot be changed to make a vault migrate again.
	Format uint64 `json:"format"`
	// Revision counts commits: every one advances it, usage counts
	// included. A state with a lower revision than one already seen is a
	// rollback.
	Revision uint64 `json:"revision"`
	// Generation counts commits that changed records (not usage), so that a
	// process holding records in memory reloads only when they changed.
	Generation uint64 `json:"generation"`
	// Roots are the hash-tree roots of the sharded buckets; a bucket with
	// no records has none.
	Roots map[string][]byte `json:"roots"`
	// AuditSeq and AuditHash are the last audit entry's number and hash, so
	// that the end of the log cannot be cut away.
	AuditSeq  uint64 `json:"audit_seq"`
	AuditHash []byte `json:"audit_hash,omitempty"`
}

// State identifies one committed state of a vault, as this machine
// remembers it (rollback.go).
type State struct {
	Revision   uint64 `json:"revision"`
	Generation uint64 `json:"generation"`
	// Digest is the SHA-256 of the head's plaintext: two states with one
	// revision but different digests are a fork.
	Digest []byte `json:"digest"`
}

func (v *Vault) readHead(st ReadTx, k *keys) (*head, State, error) {
	sealed, err := st.Get(bucketMeta, metaHead)
	if err != nil {
		return nil, State{}, err
	}
	return v.openHead(k, sealed)
}

// openHead unseals and decodes the head's sealed value (nil if missing)
// under k.
func (v *Vault) openHead(k *keys, sealed []byte) (*head, State, error) {
	if sealed == nil {
		return nil, State{}, &TamperError{Bucket: bucketMeta, What: "the head is missing"}
	}
	plain, err := k.open(v.id, bucketMeta, metaHead, sealed)
	if err != nil {
		return nil, State{}, &TamperError{Bucket: bucketMeta, What: "the head failed authentication"}
	}
	var h head
	if err := json.Unmarshal(plain, &h); err != nil {
		return nil, State{}, &TamperError{Bucket: bucketMeta, What: "the head cannot be decoded"}
	}
	if h.Roots == nil {
		h.Roots = map[string][]byte{}
	}
	return &h, h.state(plain), nil
}

func (h *head) state(plain []byte) State {
	sum := sha256.Sum256(plain)
	return State{Revision: h.Revision, Generation: h.Generation, Digest: sum[:]}
}

func (v *Vault) writeHead(w WriteTx, k *keys, h *head) (State, error) {
	plain, err := json.Marshal(h)
	if err != nil {
		return State{}, fmt.Errorf("encode head: %w", err)
	}
	sealed, err := k.seal(v.id, bucketMeta, metaHead, plain)
	if err != nil {
		return State{}, err
	}
	if err := w.Put(bucketMeta, metaHead, sealed); err != nil {
		return State{}, err
	}
	return h.state(plain), nil
}
