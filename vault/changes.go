package vault

import "fmt"

// The change log.
//
// Every commit that changes records writes, under its new generation, the
// list of records it changed, so that a process holding records in memory
// (keymint serve) catches up by reading only those, at a cost that does not
// grow with the vault. The log keeps the last changeLogLength generations;
// a reader further behind reads everything again.

// changeLogLength is how many generations the change log keeps.
const changeLogLength = 1024

// ChangeKind says what kind of record changed.
type ChangeKind string

// The kinds of change a reader of the log acts on.
const (
	ChangeKey        ChangeKind = "key"        // Key is the key id
	ChangeClient     ChangeKind = "client"     // Key is the client id
	ChangeSigningKey ChangeKind = "signing"    // Key is the kid
	ChangeRevocation ChangeKind = "revocation" // Key is the jti
	ChangeSettings   ChangeKind = "settings"   // Key is the setting's name
	// Format 3. Authorization codes, refresh tokens and a grant's last
	// access are usage data, never in the log.
	ChangeUser            ChangeKind = "user"             // Key is the user id
	ChangePermissionGroup ChangeKind = "permission_group" // Key is the group id
	ChangeGrant           ChangeKind = "grant"            // Key is the grant id
)

var changeKinds = map[string]ChangeKind{
	bucketKeys:     ChangeKey,
	bucketClients:  ChangeClient,
	bucketSigning:  ChangeSigningKey,
	bucketRevoked:  ChangeRevocation,
	bucketSettings: ChangeSettings,
	bucketUsers:    ChangeUser,
	bucketGroups:   ChangePermissionGroup,
	bucketGrants:   ChangeGrant,
}

// Change names one record written or removed.
type Change struct {
	Kind ChangeKind `json:"kind"`
	Key  string     `json:"key"`
}

func (tx *Tx) logChanges(gen uint64) error {
	var list []Change
	seen := map[Change]bool{}
	for _, c := range tx.changes {
		if !seen[c] {
			seen[c] = true
			list = append(list, c)
		}
	}
	if err := tx.putJSON(bucketChanges, u64bytes(gen), list); err != nil {
		return err
	}
	if gen > changeLogLength {
		return tx.delete(bucketChanges, u64bytes(gen-changeLogLength))
	}
	return nil
}

// ChangesSince returns the records changed after generation since, up to
// this transaction's, each once. ok is false when the log no longer reaches
// back that far (or since is ahead of the vault): the caller must then read
// everything.
func (tx *Tx) ChangesSince(since uint64) (changes []Change, ok bool, err error) {
	gen := tx.head.Generation
	if since > gen || gen-since > changeLogLength-1 {
		return nil, false, nil
	}
	seen := map[Change]bool{}
	for g := since + 1; g <= gen; g++ {
		var list []Change
		found, err := tx.getJSON(bucketChanges, u64bytes(g), &list)
		if err != nil {
			return nil, false, fmt.Errorf("read change log: %w", err)
		}
		if !found {
			return nil, false, nil
		}
		for _, c := range list {
			if !seen[c] {
				seen[c] = true
				changes = append(changes, c)
			}
		}
	}
	return changes, true, nil
}
