package vault

import "time"

// CreateKey stores a new API key under k.Name with the given secret (only its
// HMAC is kept). It assigns k.ID and k.CreatedAt.
func (tx *Tx) CreateKey(k *Key, secret string) error { return create(tx, k, secret) }

// Key returns the key with this id or name.
func (tx *Tx) Key(ref string) (*Key, error) { return get[Key](tx, ref) }

// EachKey calls fn for every key, in no order, without last use (see
// [Credential.LastUsedAt]): for a server loading the whole vault.
func (tx *Tx) EachKey(fn func(*Key) error) error { return each[Key](tx, fn) }

// Keys returns every key, ordered by name.
func (tx *Tx) Keys() ([]*Key, error) { return list[Key](tx) }

// SaveKey rewrites a key's fields other than its name and secrets.
func (tx *Tx) SaveKey(k *Key) error {
	if err := update(tx, k); err != nil {
		return err
	}
	return tx.Audit("key.update", k.ID, k.Name)
}

// DeleteKeys removes the named keys, or none if one is missing.
func (tx *Tx) DeleteKeys(refs ...string) ([]*Key, error) { return remove[Key](tx, refs) }

// RenameKey gives a key a new name.
func (tx *Tx) RenameKey(ref, newName string) (*Key, error) { return rename[Key](tx, ref, newName) }

// RotateKey adds a new secret; the old ones keep working for grace.
func (tx *Tx) RotateKey(ref, secret string, grace time.Duration) (*Key, error) {
	return rotate[Key](tx, ref, secret, grace)
}

// KeyBySecret returns the key a secret belongs to if it may be used now
// ([Usable]): ErrNotFound for an unknown or retired secret, an
// [ExpiredError] for an expired key, a [DisabledError] for a disabled one.
func (tx *Tx) KeyBySecret(secret string) (*Key, error) { return authenticate[Key](tx, secret) }

// TouchKey sets a key's last_used_at to the transaction's time.
func (tx *Tx) TouchKey(id string) error { return touch[Key](tx, id) }
