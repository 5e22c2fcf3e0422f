package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
)

// The generic operations behind the typed Tx methods for keys and clients.

func create[T any, R record[T]](tx *Tx, r R, secret string) error {
	return createRecord(tx, r, secret, false)
}

// createRecord is create; imported allows what an import brings in: a
// legacy secret, and for a client an id of its own ([isClientID]).
func createRecord[T any, R record[T]](tx *Tx, r R, secret string, imported bool) error {
	kind := kindOf[T]()
	c := r.credential()
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if err := tx.checkNameFree(kind, c.Name); err != nil {
		return err
	}
	switch {
	case c.ID == "":
		id, err := newID(kind)
		if err != nil {
			return err
		}
		c.ID = id
	case imported && kind == KindClient && isClientID(c.ID):
		// An imported client keeps its client_id; it must name no record
		// by id or by name, so that a lookup by either stays unambiguous.
		taken, err := tx.exists(kind.bucket(), []byte(c.ID))
		if err != nil {
			return err
		}
		if e, err := tx.indexGet(namePurpose(kind), c.ID); err != nil {
			return err
		} else if taken || e != nil {
			return fmt.Errorf("%s id %q: %w", kind, c.ID, ErrNameTaken)
		}
	case !strings.HasPrefix(c.ID, kind.idPrefix()) || !idPattern().MatchString(c.ID):
		return fmt.Errorf("%s id %q: %w", kind, c.ID, ErrInvalidName)
	default:
		// A given id (kept from an import, say) must not overwrite a record.
		taken, err := tx.exists(kind.bucket(), []byte(c.ID))
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%s id %q: %w", kind, c.ID, ErrNameTaken)
		}
	}
	c.CreatedAt = tx.now
	c.Secrets = nil
	if !isPublic(r) {
		if err := tx.addSecretAs(kind, c, secret, imported); err != nil {
			return err
		}
	}
	if err := tx.indexPut(namePurpose(kind), c.Name, indexEntry{Kind: kind, ID: c.ID}); err != nil {
		return err
	}
	if err := tx.putJSON(kind.bucket(), []byte(c.ID), r); err != nil {
		return err
	}
	return tx.Audit(string(kind)+".create", c.ID, c.Name)
}

func (tx *Tx) checkNameFree(kind Kind, name string) error {
	e, err := tx.indexGet(namePurpose(kind), name)
	if err != nil {
		return err
	}
	if e == nil && kind == KindClient && !idPattern().MatchString(name) && importedIDPattern().MatchString(name) {
		// An imported client's id is looked up as a name too (see get).
		taken, err := tx.exists(kind.bucket(), []byte(name))
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%s %q: %w: it is an imported client's id", kind, name, ErrNameTaken)
		}
	}
	if e != nil {
		return fmt.Errorf("%s %q: %w; pick another name or remove the existing one", kind, name, ErrNameTaken)
	}
	return nil
}

func (tx *Tx) addSecret(kind Kind, c *Credential, secret string) error {
	return tx.addSecretAs(kind, c, secret, false)
}

// addSecretAs adds a secret; legacyOK accepts one not in keymint's
// format ([ValidateLegacySecret]), marked [SecretHash.Legacy].
func (tx *Tx) addSecretAs(kind Kind, c *Credential, secret string, legacyOK bool) error {
	legacy := false
	if _, err := apikey.Parse(secret); err != nil {
		if !legacyOK || !errors.Is(err, apikey.ErrMalformed) {
			return fmt.Errorf("new secret: %w", err)
		}
		if err := ValidateLegacySecret(secret); err != nil {
			return err
		}
		legacy = true
	}
	mac := tx.k.mac(secretPurpose, secret)
	taken, err := tx.exists(bucketIndex, mac)
	if err != nil {
		return err
	}
	if taken {
		// Generated secrets never collide; an imported one may be reused.
		return fmt.Errorf("new secret: %w", ErrSecretTaken)
	}
	c.Secrets = append(c.Secrets, SecretHash{MAC: mac, CreatedAt: tx.now, Legacy: legacy})
	return tx.putJSON(bucketIndex, mac, indexEntry{Kind: kind, ID: c.ID})
}

// get finds a record by id, or else by name.
func get[T any, R record[T]](tx *Tx, ref string) (R, error) {
	kind := kindOf[T]()
	r := R(new(T))
	if idPattern().MatchString(ref) {
		ok, err := tx.getJSON(kind.bucket(), []byte(ref), r)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, tx.fillLastUsed(r.credential())
		}
	}
	e, err := tx.indexGet(namePurpose(kind), ref)
	if err != nil {
		return nil, err
	}
	if e == nil && kind == KindClient && !idPattern().MatchString(ref) && isClientID(ref) {
		// An imported client's own id (names cannot take one: checkNameFree).
		ok, err := tx.getJSON(kind.bucket(), []byte(ref), r)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, tx.fillLastUsed(r.credential())
		}
	}
	if e == nil {
		return nil, fmt.Errorf("%s %q: %w", kind, ref, ErrNotFound)
	}
	ok, err := tx.getJSON(kind.bucket(), []byte(e.ID), r)
	if err != nil {
		return nil, err
	}
	if !ok || r.credential().Name != ref {
		// The index points at a record that does not claim the name back.
		return nil, fmt.Errorf("%s %q: name index: %w", kind, ref, ErrCorrupt)
	}
	return r, tx.fillLastUsed(r.credential())
}

// list returns every record, ordered by name, with its last use.
func list[T any, R record[T]](tx *Tx) ([]R, error) {
	var out []R
	err := forEachJSON(tx, kindOf[T]().bucket(), func(_ []byte, r *T) error {
		out = append(out, R(r))
		return nil
	})
	if err != nil {
		return nil, err
	}
	creds := make([]*Credential, len(out))
	for i, r := range out {
		creds[i] = r.credential()
	}
	if err := tx.fillLastUsedAll(creds); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b R) int { return strings.Compare(a.credential().Name, b.credential().Name) })
	return out, nil
}

// each calls fn for every record, in no particular order, without its last
// use: what a server loading every record needs, at half the reads.
func each[T any, R record[T]](tx *Tx, fn func(R) error) error {
	return forEachJSON(tx, kindOf[T]().bucket(), func(_ []byte, r *T) error { return fn(R(r)) })
}

// save rewrites an existing record; its name and secrets are unchanged.
func save[T any, R record[T]](tx *Tx, r R) error {
	return tx.putJSON(kindOf[T]().bucket(), []byte(r.credential().ID), r)
}

// update rewrites an existing record's fields other than its name, secrets
// and creation time, which it takes from the stored record: only create,
// rename and rotate change those, with the index kept in step.
func update[T any, R record[T]](tx *Tx, r R) error {
	kind := kindOf[T]()
	c := r.credential()
	stored := R(new(T))
	ok, err := tx.getJSON(kind.bucket(), []byte(c.ID), stored)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s %q: %w", kind, c.ID, ErrNotFound)
	}
	s := stored.credential()
	c.Name, c.Secrets, c.CreatedAt = s.Name, s.Secrets, s.CreatedAt
	if isPublic(r) != isPublic(stored) {
		return fmt.Errorf("client %s: %w", c.Name, ErrClientType)
	}
	return save[T, R](tx, r)
}

// isPublic reports whether r is a public client, which has no secrets.
func isPublic(r any) bool {
	c, ok := r.(*Client)
	return ok && c.Public
}

// remove deletes the records refs name, all or none: the first missing one
// fails the call, and the caller's transaction then rolls back.
func remove[T any, R record[T]](tx *Tx, refs []string) ([]R, error) {
	kind := kindOf[T]()
	// Resolve every ref before deleting any, so that one credential named
	// twice (by name and by id, say) is removed once rather than not found.
	var removed []R
	seen := map[string]bool{}
	for _, ref := range refs {
		r, err := get[T, R](tx, ref)
		if err != nil {
			return nil, err
		}
		if !seen[r.credential().ID] {
			seen[r.credential().ID] = true
			removed = append(removed, r)
		}
	}
	for _, r := range removed {
		c := r.credential()
		for _, s := range c.Secrets {
			if err := tx.delete(bucketIndex, s.MAC); err != nil {
				return nil, err
			}
		}
		if err := tx.indexDelete(namePurpose(kind), c.Name); err != nil {
			return nil, err
		}
		if err := tx.delete(kind.bucket(), []byte(c.ID)); err != nil {
			return nil, err
		}
		if err := tx.deleteUsage(c.ID); err != nil {
			return nil, err
		}
		if err := tx.Audit(string(kind)+".delete", c.ID, c.Name); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

func rename[T any, R record[T]](tx *Tx, ref, newName string) (R, error) {
	kind := kindOf[T]()
	if err := ValidateName(newName); err != nil {
		return nil, err
	}
	r, err := get[T, R](tx, ref)
	if err != nil {
		return nil, err
	}
	c := r.credential()
	if c.Name == newName {
		return r, nil
	}
	if err := tx.checkNameFree(kind, newName); err != nil {
		return nil, err
	}
	old := c.Name
	if err := tx.indexDelete(namePurpose(kind), old); err != nil {
		return nil, err
	}
	c.Name = newName
	if err := tx.indexPut(namePurpose(kind), newName, indexEntry{Kind: kind, ID: c.ID}); err != nil {
		return nil, err
	}
	if err := save[T, R](tx, r); err != nil {
		return nil, err
	}
	return r, tx.Audit(string(kind)+".rename", c.ID, old+" -> "+newName)
}

// rotate adds a new secret; secrets already there retire at now+grace (at
// once for a zero grace) and are dropped when their grace has passed. An
// expired credential is refused with an [ExpiredError], and left as it was:
// its new secret would not work, and its old one's grace would mean nothing.
// A disabled one is rotated (see [Usable]), and stays disabled.
func rotate[T any, R record[T]](tx *Tx, ref, secret string, grace time.Duration) (R, error) {
	kind := kindOf[T]()
	r, err := get[T, R](tx, ref)
	if err != nil {
		return nil, err
	}
	c := r.credential()
	if isPublic(r) {
		return nil, fmt.Errorf("client %s: %w", c.Name, ErrPublicClient)
	}
	// A disabled credential may be rotated: disable, rotate, enable is
	// how a leaked secret is dealt with without a window.
	if err := Usable(kind, c, nil, tx.now); err != nil && !errors.Is(err, ErrDisabled) {
		return nil, err
	}
	retire := tx.now.Add(grace)
	var kept []SecretHash
	for _, s := range c.Secrets {
		if s.RetiresAt == nil || s.RetiresAt.After(retire) {
			s.RetiresAt = &retire
		}
		if !s.RetiresAt.After(tx.now) {
			if err := tx.delete(bucketIndex, s.MAC); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, s)
	}
	c.Secrets = kept
	if err := tx.addSecret(kind, c, secret); err != nil {
		return nil, err
	}
	if err := save[T, R](tx, r); err != nil {
		return nil, err
	}
	return r, tx.Audit(string(kind)+".rotate", c.ID, c.Name)
}

// authenticate finds the record a secret belongs to, if it may be used now
// ([Usable]). It returns an error wrapping ErrNotFound for an unknown,
// retired or malformed secret (and [ErrSecretRetired] for a retired one),
// an [ExpiredError] for the right secret of an expired credential, and a
// [DisabledError] for that of a disabled one.
func authenticate[T any, R record[T]](tx *Tx, secret string) (R, error) {
	kind := kindOf[T]()
	if _, err := apikey.Parse(secret); err != nil && ValidateLegacySecret(secret) != nil {
		// Not keymint's format, nor one an import could have brought in.
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	mac := tx.k.mac(secretPurpose, secret)
	var e indexEntry
	ok, err := tx.getJSON(bucketIndex, mac, &e)
	if err != nil {
		return nil, err
	}
	if !ok || e.Kind != kind {
		return nil, fmt.Errorf("%s secret: %w", kind, ErrNotFound)
	}
	r := R(new(T))
	ok, err = tx.getJSON(kind.bucket(), []byte(e.ID), r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s secret: %w", kind, ErrNotFound)
	}
	switch err := Usable(kind, r.credential(), mac, tx.now); {
	case errors.Is(err, ErrWrongSecret), errors.Is(err, ErrSecretRetired):
		// Found by the secret's index entry, so retired (or an index
		// entry left behind): to a lookup by secret, none.
		return nil, fmt.Errorf("%s secret: %w (%w)", kind, ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	return r, nil
}

// MAC returns the HMAC under which a secret is indexed. A server that holds
// records in memory uses it to authenticate without a transaction.
func (v *Vault) MAC(secret string) []byte {
	return v.keys().mac(secretPurpose, secret)
}

// touch records a use at now on an existing record. Last use is usage, not
// a record change: it does not advance the generation.
func touch[T any, R record[T]](tx *Tx, ref string) error {
	r, err := get[T, R](tx, ref)
	if err != nil {
		return err
	}
	return tx.putJSON(bucketUsage, lastUsedKey(r.credential().ID), tx.now)
}
