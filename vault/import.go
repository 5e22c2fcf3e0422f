package vault

import (
	"errors"
	"fmt"
)

// ErrLegacySecret refuses a secret an import cannot take: one not in
// keymint's format must be 8 to 512 bytes of printable ASCII.
var ErrLegacySecret = errors.New("a secret not in keymint's format must be 8 to 512 printable ASCII characters, without spaces")

// ErrSecretTaken refuses an imported secret that another credential
// already has (only imports can bring one in twice).
var ErrSecretTaken = errors.New("another credential already has this secret")

// ValidateLegacySecret accepts what an import may bring in as a legacy
// secret: 8 to 512 bytes of printable ASCII other than space. Its error
// never quotes the secret.
func ValidateLegacySecret(secret string) error {
	if len(secret) < 8 || len(secret) > 512 {
		return ErrLegacySecret
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c > '~' {
			return ErrLegacySecret
		}
	}
	return nil
}

// ImportKey stores an existing API key unchanged, as [Tx.CreateKey] does a
// new one, except that its secret need not be in keymint's format: one that
// is not ([ValidateLegacySecret]) is kept marked [SecretHash.Legacy]. A
// secret in keymint's format must pass its checksum. Only the secret's HMAC
// is kept; a secret another credential has is refused.
func (tx *Tx) ImportKey(k *Key, secret string) error {
	k.ID = ""
	if err := createRecord(tx, k, secret, true); err != nil {
		return fmt.Errorf("import key %s: %w", k.Name, err)
	}
	return nil
}

// ImportClient stores an existing confidential OAuth client, as
// [Tx.ImportKey] does a key. c.ID, if set, is kept as its client_id: a
// keymint one (cl_) or any other of 8 to 128 letters, digits, '.', '_',
// '~' and '-' (a 40-hex id, say) that no client has as its id or name;
// empty, keymint assigns one.
func (tx *Tx) ImportClient(c *Client, secret string) error {
	if c.Public {
		return fmt.Errorf("import client %s: %w", c.Name, ErrPublicClient)
	}
	if err := tx.resolveClientGroup(c); err != nil {
		return err
	}
	if err := createRecord(tx, c, secret, true); err != nil {
		return fmt.Errorf("import client %s: %w", c.Name, err)
	}
	return nil
}

// ValidClientID reports whether id may be an imported client's client_id
// (see [Tx.ImportClient]).
func ValidClientID(id string) bool { return isClientID(id) }
