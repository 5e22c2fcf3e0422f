package vault

import (
	"fmt"
	"slices"
	"time"
)

// SigningKey is a JWT signing key as stored. The private key is sealed like
// every other record; package token gives it meaning.
type SigningKey struct {
	ID         string     `json:"kid"`
	Alg        string     `json:"alg"`
	PrivateKey []byte     `json:"private_key"` // PKCS #8 DER
	CreatedAt  time.Time  `json:"created_at"`
	RetiredAt  *time.Time `json:"retired_at,omitempty"`
	// PublishUntil keeps a retired key's public half in JWKS until the last
	// token it signed has expired.
	PublishUntil *time.Time `json:"publish_until,omitempty"`
}

// Active reports whether the key signs new tokens.
func (k *SigningKey) Active() bool { return k.RetiredAt == nil }

// Published reports whether the key's public half belongs in JWKS at now.
func (k *SigningKey) Published(now time.Time) bool {
	return k.RetiredAt == nil || k.PublishUntil == nil || now.Before(*k.PublishUntil)
}

// AddSigningKey stores a new signing key. If it is to be the active key,
// every active key is retired and published until now+maxTokenTTL, so
// tokens they signed keep verifying until they expire.
func (tx *Tx) AddSigningKey(k *SigningKey, maxTokenTTL time.Duration) error {
	keys, err := tx.SigningKeys()
	if err != nil {
		return err
	}
	for _, old := range keys {
		if !old.Active() {
			continue
		}
		now := tx.now
		until := now.Add(maxTokenTTL)
		old.RetiredAt, old.PublishUntil = &now, &until
		if err := tx.putJSON(bucketSigning, []byte(old.ID), old); err != nil {
			return err
		}
		if err := tx.Audit("signing-key.retire", old.ID, old.Alg); err != nil {
			return err
		}
	}
	k.CreatedAt = tx.now
	k.RetiredAt, k.PublishUntil = nil, nil
	if err := tx.putJSON(bucketSigning, []byte(k.ID), k); err != nil {
		return err
	}
	return tx.Audit("signing-key.create", k.ID, k.Alg)
}

// SigningKeys returns every signing key, newest first.
func (tx *Tx) SigningKeys() ([]*SigningKey, error) {
	var out []*SigningKey
	err := forEachJSON(tx, bucketSigning, func(_ []byte, k *SigningKey) error {
		out = append(out, k)
		return nil
	})
	slices.SortFunc(out, func(a, b *SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, err
}

// SigningKeyHint is what every message about a missing active signing key
// tells the user to do: one command, rotate (new is its alias).
const SigningKeyHint = "create one with `keymint signing-key rotate`"

// ActiveSigningKey returns the key that signs new tokens.
func (tx *Tx) ActiveSigningKey() (*SigningKey, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Active() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("active signing key: %w; %s", ErrNotFound, SigningKeyHint)
}

// PruneSigningKeys deletes retired keys no longer published at now.
func (tx *Tx) PruneSigningKeys() error {
	keys, err := tx.SigningKeys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !k.Published(tx.now) {
			if err := tx.delete(bucketSigning, []byte(k.ID)); err != nil {
				return err
			}
			if err := tx.Audit("signing-key.delete", k.ID, k.Alg); err != nil {
				return err
			}
		}
	}
	return nil
}
